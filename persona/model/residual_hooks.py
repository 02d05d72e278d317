"""Residual-stream hooks across model families.

Layer convention (never drifts): layer ``L`` is HF ``hidden_states[L]``; 0 = embeddings (the input
of decoder block 0), ``L`` in ``1..N`` = output of decoder block ``L-1``. HF applies the final norm
to ``hidden_states[N]`` in Llama-family models, so captures at ``L = N`` pass the pre-steering
block output through the final norm to match. Steering at layer ``L`` edits block ``L-1``'s output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from persona.errors import PersonaError

_BLOCK_PATHS = (
    "model.layers",
    "model.model.layers",
    "transformer.h",
    "gpt_neox.layers",
    "model.decoder.layers",
    "transformer.blocks",
    "layers",
)
_NORM_PATHS = (
    "model.norm",
    "model.model.norm",
    "transformer.ln_f",
    "gpt_neox.final_layer_norm",
    "model.decoder.final_layer_norm",
    "transformer.norm_f",
    "norm",
)


def _unwrap(model: nn.Module) -> nn.Module:
    """Strip a PEFT wrapper so the usual attribute paths apply."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _get_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def decoder_blocks(model: nn.Module) -> nn.ModuleList:
    """The list of decoder blocks (``model.layers``, ``transformer.h``, ...)."""
    base = _unwrap(model)
    for path in _BLOCK_PATHS:
        found = _get_path(base, path)
        if isinstance(found, nn.ModuleList) and len(found) > 0:
            return found
    raise PersonaError(
        f"cannot find the decoder blocks of {type(base).__name__}: "
        f"expected one of {', '.join(_BLOCK_PATHS)}"
    )


def final_norm(model: nn.Module) -> nn.Module | None:
    """The final norm applied before the LM head, if the model has one at a known path."""
    base = _unwrap(model)
    for path in _NORM_PATHS:
        found = _get_path(base, path)
        if isinstance(found, nn.Module) and not isinstance(found, nn.ModuleList):
            return found
    return None


def check_layer(layer: int, num_layers: int, *, allow_zero: bool = False) -> int:
    """Validate a layer index against the convention; return it as int."""
    low = 0 if allow_zero else 1
    if not isinstance(layer, int) or isinstance(layer, bool) or not low <= layer <= num_layers:
        raise PersonaError(
            f"layer {layer!r} is out of range: this model has layers {low}..{num_layers} "
            "(layer L = output of decoder block L-1; 0 = embeddings)"
        )
    return layer


# A layer callback receives the residual stream [B, T, d] at that layer (before this call's
# steering) and returns the tensor to continue with (or None to keep it unchanged).
LayerFn = Callable[[int, torch.Tensor], torch.Tensor | None]


@contextmanager
def residual_hooks(
    model: nn.Module, layers: list[int], fn: LayerFn, capture_norm_at_last: bool = True
) -> Iterator[None]:
    """Call ``fn(layer, hidden)`` at each listed layer during forward passes; hooks always removed.

    For layer 0 the hook reads the input of block 0 (read-only). For layer ``N`` the value passed
    to ``fn`` is the block output; the engine applies :func:`final_norm` itself for captures.
    """
    blocks = decoder_blocks(model)
    n = len(blocks)
    handles = []
    try:
        for layer in sorted(set(layers)):
            check_layer(layer, n, allow_zero=True)
            if layer == 0:
                handles.append(
                    blocks[0].register_forward_pre_hook(_make_pre_hook(fn), with_kwargs=True)
                )
            else:
                handles.append(blocks[layer - 1].register_forward_hook(_make_post_hook(layer, fn)))
        yield
    finally:
        for h in handles:
            h.remove()


def _make_pre_hook(fn: LayerFn):
    def hook(module: nn.Module, args: tuple, kwargs: dict):
        hidden = args[0] if args else kwargs.get("hidden_states")
        if hidden is not None:
            fn(0, hidden)
        return None

    return hook


def _make_post_hook(layer: int, fn: LayerFn):
    def hook(module: nn.Module, args: tuple, output: Any):
        hidden = output[0] if isinstance(output, tuple) else output
        new = fn(layer, hidden)
        if new is None or new is hidden:
            return None
        if isinstance(output, tuple):
            return (new, *output[1:])
        return new

    return hook


class StopForward(Exception):
    """Raised by a hook to end a forward pass early once every needed layer was seen."""

"""Residual-stream edits applied only while training: preventative steering and CAFT ablation.

* ``steer``: ``h <- h + coef * v_raw`` at every position of the output of block ``layer-1``
  (the paper's preventative steering; padding is right-padding there, after every target token,
  so editing it cannot reach the loss).
* ``ablate`` (CAFT): ``h <- h - (h . u) u`` with ``u = v / |v|``, i.e. the direction is projected
  out; there is no coefficient.

The hooks live inside :func:`training_edits` and are removed when it exits, also on errors, so
evaluation and saving run on the unedited model. :func:`parse_steer` / :func:`parse_ablate` read
the command-line forms and :func:`resolve_edits` turns them into edits with checked vectors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from persona.data.chatdata import file_sha256
from persona.errors import PersonaError
from persona.model.residual_hooks import check_layer, decoder_blocks, residual_hooks

KINDS = ("steer", "ablate")


@dataclass(frozen=True)
class TrainingEdit:
    """One edit of the residual stream at ``layer`` (HF hidden_states index, 1..N)."""

    kind: str
    layer: int
    vector: torch.Tensor  # raw persona vector at that layer, [d]
    coef: float = 0.0
    trait: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise PersonaError(f"unknown training edit {self.kind!r}: use steer or ablate")
        if self.vector.ndim != 1:
            raise PersonaError("a training edit needs one layer's vector ([d])")
        norm = float(self.vector.float().norm())
        if not norm > 0 or not torch.isfinite(self.vector).all():
            raise PersonaError(
                f"the {self.trait or 'persona'} vector at layer {self.layer} is zero"
            )

    def apply(self, hidden: torch.Tensor) -> torch.Tensor:
        v = self.vector.to(hidden.device, hidden.dtype)
        if self.kind == "steer":
            return hidden + self.coef * v
        u = v / v.norm()
        return hidden - (hidden @ u).unsqueeze(-1) * u

    def describe(self) -> str:
        if self.kind == "steer":
            return f"steer {self.trait}:{self.coef:+g}@{self.layer}"
        return f"ablate {self.trait}@{self.layer}"


@contextmanager
def training_edits(model: nn.Module, edits: Sequence[TrainingEdit]) -> Iterator[None]:
    """Apply ``edits`` during every forward pass inside the block; hooks always removed."""
    if not edits:
        yield
        return
    n = len(decoder_blocks(model))
    by_layer: dict[int, list[TrainingEdit]] = {}
    for e in edits:
        check_layer(e.layer, n)
        by_layer.setdefault(e.layer, []).append(e)

    def fn(layer: int, hidden: torch.Tensor) -> torch.Tensor | None:
        for e in by_layer.get(layer, ()):
            hidden = e.apply(hidden)
        return hidden

    with residual_hooks(model, sorted(by_layer), fn):
        yield


def hook_count(model: nn.Module) -> int:
    """Residual-stream hooks of ours still registered on the decoder blocks (0 after training).

    Hooks that transformers itself installs (e.g. for output recording) are not counted.
    """
    count = 0
    for block in decoder_blocks(model):
        for fn in [*block._forward_hooks.values(), *block._forward_pre_hooks.values()]:
            count += getattr(fn, "__module__", "") == residual_hooks.__module__
    return count


# ---------------------------------------------------------------------------------------------
# Edits as given on the command line (``--steer`` / ``--ablate``), resolved to vectors


@dataclass(frozen=True)
class EditSpec:
    """``--steer TRAIT:COEF[@LAYER]`` or ``--ablate TRAIT[@LAYER]`` before vectors are loaded."""

    kind: str
    trait: str
    coef: float = 0.0
    layer: int | None = None


def parse_steer(text: str) -> EditSpec:
    """Parse ``TRAIT:COEF[@LAYER]``."""
    body, layer = _split_layer(text, "--steer", "TRAIT:COEF@LAYER")
    trait, sep, coef = body.rpartition(":")
    try:
        value = float(coef)
    except ValueError:
        value = math.nan
    if not sep or not trait or not math.isfinite(value):
        raise PersonaError(f"bad --steer {text!r}: use TRAIT:COEF@LAYER, e.g. evil:3.0@15")
    return EditSpec("steer", trait, value, layer)


def parse_ablate(text: str) -> EditSpec:
    """Parse ``TRAIT[@LAYER]``."""
    trait, layer = _split_layer(text, "--ablate", "TRAIT@LAYER")
    if not trait or ":" in trait:
        raise PersonaError(f"bad --ablate {text!r}: use TRAIT@LAYER, e.g. evil@15")
    return EditSpec("ablate", trait, 0.0, layer)


def _split_layer(text: str, flag: str, shape: str) -> tuple[str, int | None]:
    body, sep, layer = text.strip().rpartition("@")
    if not sep:
        return text.strip(), None
    if not layer.isdigit():
        raise PersonaError(f"bad {flag} {text!r}: the layer after @ must be an integer ({shape})")
    return body, int(layer)


LayerHint = Callable[[str], int | None]


def resolve_edits(
    specs: Sequence[EditSpec],
    vectors: str | Path | None,
    *,
    model_id: str,
    num_layers: int,
    hidden_size: int,
    fingerprint: str,
    layer_hint: LayerHint | None = None,
) -> tuple[list[TrainingEdit], list[dict[str, Any]]]:
    """Load each spec's vector, check it fits the model, pick its layer; return edits + records."""
    from persona.model.vector_store import ModelShape, VectorStore, resolve_layer

    edits, records = [], []
    for spec in specs:
        if vectors is None:
            raise PersonaError(f"--{spec.kind} {spec.trait} needs --vectors (a vectors folder)")
        shape = ModelShape(model_id, num_layers, hidden_size, fingerprint)
        stored = VectorStore(vectors).get(spec.trait, model_id, shape=shape)
        path, vector = stored.path, stored.vector
        hint = layer_hint(spec.trait) if layer_hint else None
        layer = resolve_layer(vector, num_layers, layer=spec.layer, hint=hint)
        edits.append(TrainingEdit(spec.kind, layer, vector.at(layer), spec.coef, spec.trait))
        record = {"trait": spec.trait, "layer": layer, "vector": str(path)}
        record["vector_sha256"] = file_sha256(path)
        if spec.kind == "steer":
            record["coef"] = spec.coef
        records.append(record)
    return edits, records

"""Our steering spec and capture records in vllm-lens's shapes, for running on a vLLM cluster.

vllm-lens (UK AISI) is a vLLM plugin and the Inspect provider ``vllm-lens/<model>`` (tensor and
pipeline parallel). Facts this module relies on, from its README, ``_helpers/types.py``,
``_helpers/_serialize.py`` and tests (docs/scale.md says what was verified where):

* per request, ``apply_steering_vectors`` (a list of SteeringVector objects) and
  ``output_residual_stream`` (layer indices) go in vLLM's ``extra_args``; over HTTP in
  ``extra_body["vllm_xargs"]``, with the vector list as a JSON string of SteeringVector dicts;
* a SteeringVector dict is ``{"activations", "layer_indices", "scale", "norm_match",
  "position_indices"}``; ``activations`` is ``[n_layers, d]`` (added to every token) or
  ``[n_layers, n_positions, d]`` (added at the absolute token ``position_indices``);
* a tensor travels as ``{"data": base64, "dtype": numpy dtype, "original_dtype", "shape"}``,
  with ``"compression": "zstd"`` when compressed (the plugin's own output);
* layer index ``i`` is the output of decoder layer ``i``, i.e. our ``hidden_states`` index
  ``i + 1`` (our layer L is their ``L - 1``; our 0, the embeddings, has no counterpart);
* ``activations["residual_stream"]`` is ``[n_layers, n_prompt + n_generated - 1, d]``, read
  *after* the request's steering (the last generated token is never fed back).

So our projections (read on the unsteered stream) subtract the call's own steering at that
layer, and the response mean covers the first ``n_generated - 1`` tokens.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from persona.errors import PersonaError
from persona.model.engine import Steer
from persona.provider.protocol import ProjectionOut

XARGS_KEY = "vllm_xargs"  # extra_body key of vLLM's per-request extra_args over HTTP


def encode_tensor(t: torch.Tensor) -> dict[str, Any]:
    """A float32 tensor in vllm-lens's JSON transport shape (uncompressed, so no zstd here)."""
    arr = t.detach().to(torch.float32).cpu().contiguous().numpy()
    data = base64.b64encode(arr.tobytes()).decode("ascii")
    return {
        "data": data,
        "dtype": "float32",
        "original_dtype": "torch.float32",
        "shape": list(arr.shape),
    }


def decode_tensor(d: dict[str, Any]) -> torch.Tensor:
    """A tensor from vllm-lens's JSON transport shape (zstd needs the ``zstandard`` package)."""
    raw = base64.b64decode(d["data"])
    if d.get("compression") == "zstd":
        try:
            import zstandard
        except ImportError:
            raise PersonaError(
                "vllm-lens sent zstd-compressed activations: pip install zstandard"
            ) from None
        raw = zstandard.ZstdDecompressor().decompress(raw)
    arr = np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(d["shape"])
    t = torch.from_numpy(arr.copy())
    if d.get("original_dtype") == "torch.bfloat16":
        t = t.view(torch.bfloat16)
    return t.float()


def their_layer(layer: int) -> int:
    """vllm-lens's layer index of our layer ``layer`` (hidden_states index, 1..N)."""
    if layer < 1:
        raise PersonaError("layer 0 (the embeddings) has no vllm-lens counterpart: use 1..N")
    return layer - 1


def steered_positions(steer: Steer, n_prompt: int, n_tokens: int) -> list[int] | None:
    """Absolute positions ``steer`` adds to in a sequence of ``n_tokens`` (None: every token)."""
    if steer.positions == "all":
        return None
    if steer.positions == "prompt":
        return list(range(n_prompt))
    if steer.positions == "prompt_last":
        return [n_prompt - 1]
    return list(range(n_prompt - 1, n_tokens))  # response: the last prompt token and the reply


def steering_vectors(
    steers: Sequence[Steer], n_prompt: int, max_tokens: int
) -> list[dict[str, Any]]:
    """SteeringVector dicts for our steering entries, for a prompt of ``n_prompt`` tokens and at
    most ``max_tokens`` new ones (``response`` lists every position a reply can reach)."""
    out = []
    for s in steers:
        if s.coef == 0:
            continue
        positions = steered_positions(s, n_prompt, n_prompt + max_tokens - 1)
        vec = s.vector.to(torch.float32)[None]
        if positions is not None:
            vec = vec[:, None, :].expand(1, len(positions), vec.shape[-1])
        out.append(
            {
                "activations": encode_tensor(vec),
                "layer_indices": [their_layer(s.layer)],
                "scale": float(s.coef),
                "norm_match": False,
                "position_indices": positions,
            }
        )
    return out


def xargs(
    steers: Sequence[Steer], capture_layers: Sequence[int], n_prompt: int, max_tokens: int
) -> dict[str, Any]:
    """``extra_body`` for Inspect's ``vllm-lens/<model>`` provider (or any OpenAI client of a
    vllm-lens server): steering and residual capture of one call."""
    args: dict[str, Any] = {}
    vectors = steering_vectors(steers, n_prompt, max_tokens)
    if vectors:
        args["apply_steering_vectors"] = json.dumps(vectors)
    if capture_layers:
        args["output_residual_stream"] = [their_layer(layer) for layer in capture_layers]
    return {XARGS_KEY: args} if args else {}


def projections(
    residual: torch.Tensor,
    capture_layers: Sequence[int],
    n_prompt: int,
    vector: torch.Tensor,
    steers: Sequence[Steer] = (),
) -> dict[int, ProjectionOut]:
    """Our projection record per captured layer from vllm-lens's ``residual_stream``
    (``[len(capture_layers), T, d]``) and a persona vector ``[N+1, d]``; the call's own
    steering at a layer is subtracted first, so values are on the unsteered stream."""
    if residual.ndim != 3 or residual.shape[0] != len(capture_layers):
        raise PersonaError(
            f"residual_stream has shape {tuple(residual.shape)}, expected "
            f"[{len(capture_layers)}, tokens, d] for layers {list(capture_layers)}"
        )
    n_tokens = residual.shape[1]
    out = {}
    for i, layer in enumerate(capture_layers):
        h = residual[i].float().clone()
        for s in steers:
            if s.layer == layer and s.coef != 0:
                where = steered_positions(s, n_prompt, n_tokens)
                rows = slice(None) if where is None else where
                h[rows] -= float(s.coef) * s.vector.float()
        unit = vector[layer].float() / vector[layer].float().norm()
        proj = h @ unit
        reply = proj[n_prompt:]
        out[layer] = ProjectionOut(
            prompt_last=float(proj[n_prompt - 1]),
            prompt_mean=float(proj[:n_prompt].mean()),
            response_mean=float(reply.mean()) if len(reply) else None,
            n_response=len(reply),
        )
    return out

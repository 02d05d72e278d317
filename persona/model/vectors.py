"""Persona vectors: a small typed record, difference-of-means extraction, safetensors I/O.

A vector file holds three float32 tensors ``[num_layers+1, d]`` (``response_avg`` - the one the
paper uses - ``prompt_avg`` and ``prompt_last``) and JSON metadata recording provenance and the
layer convention. Files are written atomically and never unpickled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from persona.errors import PersonaError
from persona.model.loading import model_slug

FORMAT = "persona-vector/1"
#: The three per-layer means a vector file holds (the only definition of vector kinds).
Kind = Literal["response_avg", "prompt_avg", "prompt_last"]
KINDS: tuple[Kind, ...] = get_args(Kind)
LAYER_CONVENTION = (
    "hidden_states index: 0 = embeddings, L = output of decoder block L-1 (0-based); "
    "steering at L edits block L-1's output"
)


@dataclass(frozen=True)
class PersonaVector:
    """Per-layer persona directions for one trait on one model (unnormalised)."""

    response_avg: torch.Tensor
    prompt_avg: torch.Tensor
    prompt_last: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shapes = {k: tuple(getattr(self, k).shape) for k in KINDS}
        first = shapes["response_avg"]
        if len(first) != 2 or any(s != first for s in shapes.values()):
            raise PersonaError(
                f"persona vector tensors must share one [layers+1, d] shape: {shapes}"
            )
        for kind in KINDS:
            if not torch.isfinite(getattr(self, kind)).all():
                raise PersonaError(
                    f"persona vector {self.meta.get('trait', '?')} has NaN/inf values in {kind}: "
                    "re-extract it (were any responses empty?)"
                )

    @property
    def trait(self) -> str:
        return str(self.meta.get("trait", ""))

    @property
    def num_layers(self) -> int:
        return self.response_avg.shape[0] - 1

    @property
    def hidden_size(self) -> int:
        return self.response_avg.shape[1]

    @property
    def layer(self) -> int | None:
        """The calibrated layer, if a steering sweep chose one."""
        value = self.meta.get("layer")
        return int(value) if value not in (None, "") else None

    def tensor(self, kind: Kind | str = "response_avg") -> torch.Tensor:
        if kind not in KINDS:
            raise PersonaError(f"unknown vector kind {kind!r}: use one of {', '.join(KINDS)}")
        return getattr(self, kind)

    def at(self, layer: int, kind: Kind | str = "response_avg") -> torch.Tensor:
        """Raw vector at one layer (``[d]``)."""
        if not 0 <= layer <= self.num_layers:
            raise PersonaError(
                f"layer {layer} is out of range: this vector has layers 0..{self.num_layers}"
            )
        return self.tensor(kind)[layer]

    def unit(self, layer: int, kind: Kind | str = "response_avg") -> torch.Tensor:
        """Unit vector at one layer; projections always use it."""
        v = self.at(layer, kind)
        norm = v.norm()
        if norm == 0:
            raise PersonaError(f"vector {self.trait} is zero at layer {layer}")
        return v / norm

    def with_meta(self, **updates: Any) -> PersonaVector:
        return replace(self, meta={**self.meta, **updates})


def project(hidden: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """Projection ``h . v / |v|`` of activations ``[..., d]`` onto ``vector`` ``[d]``."""
    return hidden.float() @ (vector.float() / vector.float().norm())


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two 1-d vectors."""
    a, b = a.float().flatten(), b.float().flatten()
    denom = a.norm() * b.norm()
    return float(a @ b / denom) if denom > 0 else math.nan


def diff_of_means(
    positive: Sequence[dict[str, torch.Tensor]], negative: Sequence[dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """Per-kind mean over positive captures minus mean over negative captures.

    Each capture maps kind -> ``[num_layers+1, d]`` (one response's token means). Captures whose
    response was empty (NaN) are skipped.
    """
    out = {}
    for kind in KINDS:
        pos = [c[kind] for c in positive if torch.isfinite(c[kind]).all()]
        neg = [c[kind] for c in negative if torch.isfinite(c[kind]).all()]
        if not pos or not neg:
            raise PersonaError(
                f"cannot extract a vector: {len(pos)} positive and {len(neg)} negative usable "
                f"responses for {kind} (need at least one of each)"
            )
        out[kind] = (torch.stack(pos).mean(0) - torch.stack(neg).mean(0)).float()
    return out


# ---------------------------------------------------------------------------------------------
# Files


def vector_path(directory: str | Path, model_id: str, trait: str) -> Path:
    """Where a trait's vector for a model lives: ``<dir>/<model-slug>/<trait>.safetensors``."""
    return Path(directory) / model_slug(model_id) / f"{trait}.safetensors"


def build_meta(
    *,
    model_id: str,
    fingerprint: str,
    num_layers: int,
    hidden_size: int,
    trait: str,
    trait_hash: str = "",
    layer: int | None = None,
    filter_info: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Provenance metadata stored with every vector."""
    from persona import __version__

    return {
        "format": FORMAT,
        "model_id": model_id,
        "fingerprint": fingerprint,
        "num_layers": num_layers,
        "hidden_size": hidden_size,
        "trait": trait,
        "trait_hash": trait_hash,
        "layer_convention": LAYER_CONVENTION,
        "layer": layer,
        "filter": filter_info or {},
        "package_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }


def save_vector(vector: PersonaVector, path: str | Path) -> Path:
    """Write a vector file atomically (safetensors; metadata values JSON-encoded)."""
    from safetensors.torch import save_file

    from persona.atomic import atomic_path

    path = Path(path)
    tensors = {k: vector.tensor(k).detach().float().cpu().contiguous() for k in KINDS}
    meta = {k: json.dumps(v) for k, v in vector.meta.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load_vector(path: str | Path) -> PersonaVector:
    """Read a vector file; clear errors for missing, corrupt or incomplete files."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise PersonaError(
            f"no persona vector at {path}: create it with `persona extract --trait "
            f"{path.stem} --model <model> --out {path.parent.parent}`"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            raw_meta = f.metadata() or {}
            missing = [k for k in KINDS if k not in f.keys()]
            if missing:
                raise PersonaError(f"{path} is not a persona vector file (missing {missing})")
            tensors = {k: f.get_tensor(k).float() for k in KINDS}
    except PersonaError:
        raise
    except Exception as e:  # safetensors raises several types for corrupt headers
        raise PersonaError(f"{path} is not a readable safetensors file: {e}") from None
    meta: dict[str, Any] = {}
    for key, value in raw_meta.items():
        try:
            meta[key] = json.loads(value)
        except json.JSONDecodeError:
            meta[key] = value
    try:
        return PersonaVector(**tensors, meta=meta)
    except PersonaError as e:
        raise PersonaError(f"{path}: {e}") from None


def check_compatible(
    vector: PersonaVector,
    *,
    num_layers: int,
    hidden_size: int,
    fingerprint: str | None = None,
    source: str = "vector",
) -> None:
    """Fail clearly when a vector does not belong to the model it is used with."""
    model = vector.meta.get("model_id", "?")
    if vector.hidden_size != hidden_size or vector.num_layers != num_layers:
        raise PersonaError(
            f"{source} was extracted on {model} ({vector.num_layers} layers, "
            f"d={vector.hidden_size}) but this model has {num_layers} layers, d={hidden_size}: "
            "extract a vector for it"
        )
    stored = vector.meta.get("fingerprint")
    if fingerprint and stored and stored != fingerprint:
        raise PersonaError(
            f"{source} was extracted on {model} (fingerprint {stored}) but these weights have "
            f"fingerprint {fingerprint}: extract a vector for this model, or use the base "
            "model's vector with its base weights"
        )

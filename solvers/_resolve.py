"""Resolving the model under evaluation, trait vectors and layers (shared by solvers and tasks)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspect_ai.model import Model, get_model

from persona.errors import PersonaError
from persona.model.loading import EMBEDDED, ModelSource, resolve

if TYPE_CHECKING:
    from persona.model.vectors import PersonaVector

PROVIDER = "persona"


def is_persona(model: Model) -> bool:
    """Whether a model is served by the persona provider (``persona/<model>``)."""
    return str(model).split("/", 1)[0] == PROVIDER


def subject_model() -> Model:
    """The model under evaluation (inside a running eval)."""
    return get_model()


def require_persona(model: Model, what: str) -> None:
    if not is_persona(model):
        raise PersonaError(
            f"{what} needs the persona provider, but the model under evaluation is {model}: "
            "run with --model persona/<model> (e.g. persona/smollm2-135m)"
        )


def source_of(model: Model) -> ModelSource:
    """Where a persona model's weights come from (no loading)."""
    return resolve(model.api.model_name, model.model_args.get("adapter"))


def model_id(model: Model) -> str:
    """The base model id a persona model's vectors are stored under."""
    return source_of(model).model_id


def resolve_vector(name: str, vectors: str | Path, model_id: str) -> Path:
    """A trait name (looked up under ``vectors``) or a ``.safetensors`` path -> the file."""
    path = Path(name).expanduser()
    if name.endswith(".safetensors") or path.is_file():
        if not path.is_file():
            raise PersonaError(f"no persona vector file at {name}")
        return path.resolve()
    from persona.model.vectors import find_vector

    return find_vector(vectors, model_id, name).resolve()


@lru_cache(maxsize=64)
def _load(path: str, mtime_ns: int) -> PersonaVector:
    from persona.model.vectors import load_vector

    return load_vector(path)


def cached_vector(path: str | Path) -> PersonaVector:
    """Load a vector file once per modification time."""
    p = Path(path)
    return _load(str(p), p.stat().st_mtime_ns)


def vector_layer(vector: PersonaVector, hint: int | None = None) -> int:
    """The trait's layer: calibrated, else the trait's hint for this model, else the middle."""
    from persona.model.vectors import default_layer

    return default_layer(vector, vector.num_layers, hint)


def _canonical(source: ModelSource) -> set[str]:
    """Names a model source is known by (id, path, hub id of an embedded or converted model)."""
    names = {source.model_id, source.path}
    if source.kind == "embedded":
        names.add(EMBEDDED[source.model_id].hub_id)
    marker = Path(source.path) / "persona-converted.json"  # a converted embedded model
    if source.kind == "dir" and marker.exists():
        try:
            names.add(str(json.loads(marker.read_text()).get("hub_id")))
        except (OSError, ValueError):
            pass
    for alias, emb in EMBEDDED.items():
        if emb.hub_id in names:
            names.add(alias)
    return names - {"None", ""}


def check_checkpoint(path: str, model: Model) -> str:
    """Validate a LoRA checkpoint for the model under evaluation; return its resolved folder."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise PersonaError(f"checkpoint {path} does not exist (expected a PEFT adapter folder)")
    if not (folder / "adapter_config.json").exists():
        raise PersonaError(
            f"checkpoint {path} is not a PEFT adapter folder (no adapter_config.json): checkpoint "
            "comparisons switch LoRA adapters over the evaluated base; evaluate a full model "
            "separately with --model persona/<path>"
        )
    try:
        ckpt = resolve(str(folder))
    except PersonaError as e:
        raise PersonaError(f"checkpoint {path}: {e}") from None
    base = source_of(model)
    if not _canonical(ckpt) & _canonical(base):
        raise PersonaError(
            f"checkpoint {path} was trained on {ckpt.model_id}, but the model under evaluation is "
            f"{base.model_id}: compare checkpoints of the same base (or evaluate it with "
            f"--model persona/{ckpt.model_id})"
        )
    return str(folder.resolve())


def args_key(model: Model) -> str:
    """A stable string for a model's identity (name plus model args)."""
    return f"{model}|{json.dumps(model.model_args, sort_keys=True, default=str)}"


def plain(value: Any) -> Any:
    """JSON-friendly copy (paths to strings)."""
    return json.loads(json.dumps(value, default=str))

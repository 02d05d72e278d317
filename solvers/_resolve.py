"""Resolving the model under evaluation, trait vectors and layers (shared by solvers and tasks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inspect_ai.model import Model, get_model

import traits
from persona.errors import PersonaError
from persona.model.loading import EMBEDDED, ModelSource, resolve
from persona.model.vector_store import StoredVector, VectorStore, resolve_layer

PROVIDER = "persona"
DEFAULT_VECTORS = "vectors"


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


def vectors_folder(model: Model | None, given: str | Path | None) -> Path:
    """Where trait vectors are looked up (the rule is in docs/tasks.md, "Where vectors come from").

    ``given`` (a task's ``-T vectors`` or a solver's ``vectors``), else the persona provider's
    ``-M vectors``, else ``./vectors``. Both given and naming different places is an error, so
    neither setting is ever silently ignored.
    """
    provider = provider_vectors(model)
    if given is None or given == "":
        return provider or Path(DEFAULT_VECTORS).resolve()
    path = Path(given).expanduser().resolve()
    if provider is not None and provider != path:
        raise PersonaError(
            f"-T vectors={given} and the provider's -M vectors={provider} name different "
            "places: pass one of them (tasks use the provider's when -T vectors is not given)"
        )
    return path


def provider_vectors(model: Model | None) -> Path | None:
    """The persona provider's ``-M vectors`` (absolute), when the model is served by it."""
    store = getattr(getattr(model, "api", None), "vectors", None)
    return store.folder if isinstance(store, VectorStore) else None


def vector_store(model: Model, vectors: str | Path | None) -> VectorStore:
    """The store for a model under evaluation and a ``vectors`` setting (see vectors_folder)."""
    return VectorStore(vectors_folder(model, vectors))


def layer_hint(trait: str, model_id: str) -> int | None:
    """A library trait's suggested layer for a model (None for other names and paths)."""
    return traits.load(trait).layer_hint(model_id) if trait in traits.available() else None


def trait_layer(stored: StoredVector, trait: str, model_id: str, layer: int | None = None) -> int:
    """A trait's layer: ``layer``, else calibrated, else the trait's hint, else the middle."""
    vector = stored.vector
    return resolve_layer(vector, vector.num_layers, layer=layer, hint=layer_hint(trait, model_id))


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

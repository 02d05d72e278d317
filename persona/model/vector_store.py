"""The one vector store: a trait name or a vector file in, a checked and cached vector out.

Every user of persona vectors (solvers, the Inspect provider, the CLI, tasks) finds, loads,
checks and picks the layer of a vector here, so the rules are the same everywhere:

* **lookup**: a trait name is looked up under a vectors folder, as
  ``<dir>/<model-slug>/<trait>.safetensors`` and then ``<dir>/<trait>.safetensors``; the folder
  may also be one vector file. A name ending in ``.safetensors`` or holding a path separator
  is that file (trait names never hold one).
* **identity**: a vector records its trait; asking for another trait is an error.
* **fit**: layer count and hidden size must match the model, and the weights' fingerprint too
  once the weights are loaded (base-model vectors are right for its adapters).
* **layer** (:func:`resolve_layer`): the requested layer, else the calibrated one, else the
  trait's hint for the model, else the middle; always checked against the layer count.

Files are cached by path and modification time, so a sweep that records a layer is seen at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from persona.errors import PersonaError
from persona.model.vectors import PersonaVector, check_compatible, load_vector, vector_path

if TYPE_CHECKING:
    from persona.model.loading import LoadedModel, ModelSource

SUFFIX = ".safetensors"


@dataclass(frozen=True)
class ModelShape:
    """What a vector must fit: model id, layer count, hidden size and (when loaded) fingerprint."""

    model_id: str
    num_layers: int
    hidden_size: int
    fingerprint: str | None = None

    @classmethod
    def of(cls, lm: LoadedModel) -> ModelShape:
        """The shape of loaded weights (base fingerprint: base vectors fit its adapters)."""
        return cls(lm.model_id, lm.num_layers, lm.hidden_size, lm.base_fingerprint)


def source_shape(source: ModelSource) -> ModelShape | None:
    """A model's shape from its ``config.json`` without loading weights (None: not on disk yet)."""
    from persona.model.loading import cache_dir

    if source.kind == "dir":
        folder = Path(source.path)
    elif source.kind == "embedded":
        folder = cache_dir() / "models" / source.path  # converted on first load
    else:
        return None
    if not (folder / "config.json").is_file():
        return None
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(folder))
        return ModelShape(source.model_id, int(config.num_hidden_layers), int(config.hidden_size))
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def is_vector_file(name: str) -> bool:
    """Whether a vector argument names a file rather than a trait."""
    return name.endswith(SUFFIX) or os.sep in name


def find(name: str, vectors: str | Path | None, model_id: str) -> Path:
    """The file of a vector argument: a ``.safetensors`` path, or a trait found in ``vectors``."""
    if is_vector_file(name):
        path = Path(name).expanduser()
        if not path.is_file():
            raise PersonaError(f"no persona vector file at {name}")
        return path.resolve()
    if vectors is None:
        raise PersonaError(
            f"{name!r} is a trait name but no vectors folder is set: pass -M vectors=DIR "
            "(or give a .safetensors path)"
        )
    folder = Path(vectors).expanduser()
    if folder.is_file():
        return folder.resolve()
    for path in (vector_path(folder, model_id, name), folder / f"{name}{SUFFIX}"):
        if path.is_file():
            return path.resolve()
    raise PersonaError(
        f"no {name} vector for {model_id} in {folder}: create it with "
        f"`persona extract --trait {name} --model {model_id} --vectors {folder}`"
    )


@lru_cache(maxsize=64)
def _read(path: str, mtime_ns: int) -> PersonaVector:
    return load_vector(path)


def read(path: str | Path) -> PersonaVector:
    """Load a vector file once per modification time (unchecked)."""
    p = Path(path)
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        return load_vector(p)  # raises the clear "no persona vector at ..." error
    return _read(str(p), mtime)


def check_trait(vector: PersonaVector, trait: str | None, source: str) -> None:
    """Fail when a vector was extracted for another trait than the one asked for."""
    if trait and vector.trait and vector.trait != trait:
        raise PersonaError(
            f"{source} is the {vector.trait!r} vector, not {trait!r}: pass the {trait} vector "
            "(or a vectors folder that holds it)"
        )


@dataclass(frozen=True)
class StoredVector:
    """A vector checked against a model, with the file it came from."""

    path: Path
    vector: PersonaVector

    @property
    def trait(self) -> str:
        return self.vector.trait


class VectorStore:
    """Trait names or vector files -> vectors checked against one model (cached by file)."""

    def __init__(self, vectors: str | Path | None) -> None:
        self.folder = Path(vectors).expanduser().resolve() if vectors else None

    def path(self, name: str, model_id: str) -> Path:
        return find(name, self.folder, model_id)

    def has(self, name: str, model_id: str) -> bool:
        """Whether a vector for trait ``name`` exists for the model (no loading)."""
        try:
            self.path(name, model_id)
        except PersonaError:
            return False
        return True

    def get(
        self,
        name: str,
        model_id: str,
        *,
        shape: ModelShape | None = None,
        trait: str | None = None,
    ) -> StoredVector:
        """The checked vector for a trait name or a file (``trait``: the trait it must be).

        A trait name is itself the trait the vector must hold. Without ``shape`` the fit check
        is skipped (the model's shape is not known yet).
        """
        path = self.path(name, model_id)
        vector = read(path)
        source = f"vector {path}"
        check_trait(vector, trait or (None if is_vector_file(name) else name), source)
        if shape is not None:
            check_compatible(
                vector,
                num_layers=shape.num_layers,
                hidden_size=shape.hidden_size,
                fingerprint=shape.fingerprint,
                source=source,
            )
        return StoredVector(path, vector)


def resolve_layer(
    vector: PersonaVector | None,
    num_layers: int,
    *,
    layer: int | None = None,
    hint: int | None = None,
) -> int:
    """The steering/projection layer: ``layer``, else calibrated, else the hint, else the middle.

    The result is checked against ``num_layers`` (layers are 1..N; see ``docs/protocol.md``).
    """
    if layer is None and vector is not None:
        layer = vector.layer
    if layer is None and hint is not None and 1 <= hint <= num_layers:
        layer = hint
    if layer is None:
        layer = max(1, num_layers // 2)
    if not 1 <= int(layer) <= num_layers:
        raise PersonaError(f"layer {layer} is out of range: this model has layers 1..{num_layers}")
    return int(layer)


def trait_vector(
    vectors: str | Path | None,
    lm: LoadedModel,
    trait: str,
    *,
    layer: int | None = None,
    hint: int | None = None,
) -> tuple[PersonaVector, int]:
    """A trait's vector checked against loaded weights, and its layer (for the CLI verbs).

    ``vectors`` is a vectors folder or one vector file (which must hold ``trait``).
    """
    stored = VectorStore(vectors).get(trait, lm.model_id, shape=ModelShape.of(lm))
    return stored.vector, resolve_layer(stored.vector, lm.num_layers, layer=layer, hint=hint)

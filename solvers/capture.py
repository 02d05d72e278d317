"""``capture``: ask the provider for projections (and, for extraction, per-layer means)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from inspect_ai.model import get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

import traits
from persona.errors import PersonaError
from persona.model.vector_store import VectorStore
from solvers._resolve import model_id, require_persona, trait_layer, vector_store
from solvers.condition import CaptureRecord, PersonaCondition, VectorRef


def vector_ref(store: VectorStore, name: str, mid: str, layer: int | None = None) -> VectorRef:
    """A trait's vector file for a model and its layer (given, else the trait's)."""
    stored = store.get(name, mid)
    return VectorRef(path=str(stored.path), layer=trait_layer(stored, name, mid, layer))


def other_traits(
    primary: str, store: VectorStore, mid: str, wanted: bool | Sequence[str]
) -> list[str]:
    """Traits for cross-trait projections: all with a vector for this model, or those named."""
    if not wanted:
        return []
    if wanted is True:
        return [n for n in traits.available() if n != primary and store.has(n, mid)]
    return [n for n in wanted if n != primary]  # type: ignore[union-attr]


@solver
def capture(
    trait: str | None = None,
    vectors: str | None = None,
    layer: int | None = None,
    project: bool = True,
    cross_traits: bool | Sequence[str] = False,
    means: bool = False,
    sidecar_dir: str | None = None,
) -> Solver:
    """Record what the next :func:`persona_generate` measures on the unsteered residual stream.

    With ``project``, the response-mean and last-prompt-token projections onto the trait's
    vector at its layer (``layer`` overrides), plus other traits' vectors for
    ``cross_traits`` (True: every trait with a vector for this model). Vectors are found under
    ``vectors`` (default: the provider's ``-M vectors``, else ``./vectors``). With ``means``, the
    full per-layer means go to a sidecar file in ``sidecar_dir`` (extraction).
    """
    resolved: dict[str, dict[str, VectorRef]] = {}

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        name = trait or state.metadata.get("trait")
        if not name:
            raise PersonaError("capture needs a trait (argument or sample metadata)")
        model = get_model()
        require_persona(model, "activation capture")
        mid = model_id(model)
        key = f"{mid}|{name}"
        if key not in resolved:
            refs: dict[str, VectorRef] = {}
            if project:
                store = vector_store(model, vectors)
                refs[name] = vector_ref(store, name, mid, layer)
                for other in other_traits(name, store, mid, cross_traits):
                    refs[other] = vector_ref(store, other, mid)
            resolved[key] = refs
        sidecars = str(Path(sidecar_dir).expanduser().resolve()) if sidecar_dir else None
        record = CaptureRecord(trait=name, vectors=resolved[key], means=means, sidecar_dir=sidecars)
        PersonaCondition(store=state.store).capture = record
        return state

    return solve

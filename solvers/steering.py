"""``steer``: add a persona vector to the residual stream during this sample's generation."""

from __future__ import annotations

from collections.abc import Sequence

from inspect_ai.model import get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from persona.errors import PersonaError
from persona.model.engine import POSITIONS
from persona.model.vector_store import resolve_layer
from persona.model.vectors import KINDS
from persona.provider.protocol import SteerSpec
from solvers._resolve import model_id, require_persona, trait_layer, vector_store
from solvers.condition import PersonaCondition


@solver
def steer(
    vector: str | None = None,
    layer: int | Sequence[int] | None = None,
    coef: float | None = None,
    positions: str | None = None,
    kind: str = "response_avg",
    vectors: str | None = None,
) -> Solver:
    """Record steering ``h <- h + coef * v`` for the next :func:`persona_generate`.

    ``vector`` is a trait name (its vector is found under ``vectors``, default: the provider's
    ``-M vectors``, else ``./vectors``) or a ``.safetensors`` path; default: the sample's trait.
    ``layer`` may be a list (one entry per layer); default: the sample's ``layer``, else the
    vector's calibrated layer, else the trait's hint, else the middle layer. ``coef`` and
    ``positions`` default to the sample's metadata (else 0 and ``response``). The resolved
    :class:`~persona.provider.protocol.SteerSpec` entries go to the store; ``coef``, ``layer``
    and ``positions`` to the sample metadata.
    """
    if kind not in KINDS:
        raise PersonaError(f"unknown vector kind {kind!r}: use one of {', '.join(KINDS)}")

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        c = coef if coef is not None else float(state.metadata.get("coef") or 0.0)
        pos = positions or state.metadata.get("positions") or "response"
        if pos not in POSITIONS:
            raise PersonaError(f"unknown steering positions {pos!r}: use {', '.join(POSITIONS)}")
        if c == 0:
            state.metadata["coef"] = 0.0
            return state  # coef 0 is exactly no steering
        name = vector or state.metadata.get("trait")
        if not name:
            raise PersonaError("steer needs a vector or trait (argument or sample metadata)")
        model = get_model()
        require_persona(model, "steering")
        mid = model_id(model)
        stored = vector_store(model, vectors).get(name, mid)
        wanted = _layers(layer if layer is not None else state.metadata.get("layer"))
        if wanted:
            n = stored.vector.num_layers
            layers = [resolve_layer(stored.vector, n, layer=lay) for lay in wanted]
        else:
            layers = [trait_layer(stored, name, mid)]
        entries = [
            SteerSpec(vector=str(stored.path), layer=lay, coef=c, positions=pos, kind=kind)
            for lay in layers
        ]
        cond = PersonaCondition(store=state.store)
        cond.steer = [*cond.steer, *entries]
        state.metadata["coef"] = c
        state.metadata["layer"] = layers[0] if len(layers) == 1 else layers
        state.metadata["positions"] = pos
        return state

    return solve


def _layers(value: object) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int | str | float):
        return [int(value)]
    return [int(v) for v in value]  # type: ignore[union-attr]

"""Reading projections from the provider's output metadata (``metadata["persona"]``)."""

from __future__ import annotations

import math
from typing import Any

from inspect_ai.solver import TaskState

from solvers.condition import PersonaCondition

KEYS = ("proj_response", "proj_prompt_last")


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def persona_metadata(state: TaskState) -> dict[str, Any]:
    """The provider's ``metadata["persona"]`` of the sample's last output ({} if none)."""
    meta = state.output.metadata if state.output else None
    return dict((meta or {}).get("persona") or {})


def read_projections(state: TaskState) -> tuple[dict[str, float], dict[str, Any]]:
    """Projection keys (``proj_response``, ``proj_prompt_last``, then ``..._<other trait>``)
    and info (``trait``, ``layer``, ``vector``) for the primary trait.

    Keys are present (NaN when missing) for every vector the capture asked for, so all samples of
    a task share one key set; without a capture there are none.
    """
    cond = PersonaCondition(store=state.store)
    cap = cond.capture
    primary = cap.trait if cap else None
    vectors = cap.vectors if cap else {}
    found = persona_metadata(state).get("projections") or {}
    values = {key: math.nan for key in KEYS} if vectors else {}
    info: dict[str, Any] = {"trait": primary, "layer": None, "vector": None}
    for name, ref in vectors.items():
        stats = (found.get(ref.path) or {}).get(str(ref.layer)) or {}
        suffix = "" if name == primary else f"_{name}"
        values[f"proj_response{suffix}"] = _num(stats.get("response_mean"))
        values[f"proj_prompt_last{suffix}"] = _num(stats.get("prompt_last"))
        if name == primary:
            info.update(layer=ref.layer, vector=ref.path)
    return values, info

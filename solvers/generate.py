"""``persona_generate``: generate with the recorded condition sent as ``extra_body["persona"]``.

Inspect replaces the whole ``extra_body`` when a solver passes one, so the request is merged
into whatever ``extra_body`` the model, task or command line already set (``steer`` lists are
concatenated; other keys of this request win).
"""

from __future__ import annotations

import hashlib
from typing import Any

from inspect_ai.model import get_model
from inspect_ai.model._generate_config import active_generate_config
from inspect_ai.solver import Generate, Solver, TaskState, solver

from persona.provider.protocol import EXTRA_BODY_KEY, PersonaRequest, parse_extra_body
from solvers._resolve import is_persona, require_persona
from solvers.condition import PersonaCondition

KEY = EXTRA_BODY_KEY


def build_request(cond: PersonaCondition) -> PersonaRequest | None:
    """The persona request for a condition (None when nothing is asked of the provider)."""
    capture = cond.capture.spec() if cond.capture else None
    if not cond.steer and capture is None and not cond.adapter:
        return None
    return PersonaRequest(steer=list(cond.steer), capture=capture, adapter=cond.adapter)


def merge_extra_body(existing: dict[str, Any] | None, request: dict[str, Any]) -> dict[str, Any]:
    """``existing`` extra_body with ``request`` merged into its ``persona`` key."""
    body = dict(existing or {})
    old = dict(body.get(KEY) or {})
    merged = {**old, **request}
    if old.get("steer") and request.get("steer"):
        merged["steer"] = [*old["steer"], *request["steer"]]
    body[KEY] = merged
    return body


def pair_seed(state: TaskState, base: int | None) -> int:
    """A seed shared by every condition of the same question, rollout, prompt and epoch.

    Paired conditions (steering coefficients, checkpoints) then sample with common random
    numbers, which makes their differences less noisy.
    """
    meta = state.metadata
    parts = [
        base or 0,
        meta.get("trait"),
        meta.get("question_id", state.sample_id),
        meta.get("polarity"),
        meta.get("instruction_index"),
        meta.get("rollout", 0),
        state.epoch,
    ]
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _current_extra_body() -> dict[str, Any] | None:
    model = get_model()
    return model.config.merge(active_generate_config()).extra_body


@solver
def persona_generate(paired_seeds: bool = True, **kwargs: Any) -> Solver:
    """Generate with the condition recorded by ``steer``/``capture``/``use_checkpoint``.

    ``kwargs`` are generate-config overrides (e.g. ``max_tokens``). With ``paired_seeds`` the
    persona provider gets a seed derived from (question, rollout, prompt, epoch), shared by all
    conditions of that question.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        cond = PersonaCondition(store=state.store)
        built = build_request(cond)
        model = get_model()
        if built is not None:
            require_persona(model, "steering, capture and checkpoint switching")
        request = built.model_dump(mode="json", exclude_defaults=True) if built else {}
        if is_persona(model) and paired_seeds:
            request["seed"] = pair_seed(state, active_generate_config().seed)
        if request:
            body = merge_extra_body(_current_extra_body(), request)
            cond.request = parse_extra_body({KEY: body[KEY]})
            state = await generate(state, extra_body=body, **kwargs)
        else:
            state = await generate(state, **kwargs)
        cond.model = state.output.model
        return state

    return solve

"""The monitor page's colour baseline for a trait at a layer.

A token's colour on the page is ``(projection - mean) / scale``: ``mean`` is where an unsteered
reply of the base model sits, the mean per-token projection of its greedy replies to the
trait's first eval questions (generic questions for a vector without a trait file); ``scale`` is
the persona vector's own length at the layer, the distance between the trait's and the plain
replies' response means along the unit vector. So +1 reads "a whole trait-vs-plain difference
above an ordinary reply", whatever the model and layer, and a reply steered towards the trait
shows as trait-coloured instead of being scaled to its own maximum. Computed on first use per
(trait, layer) and cached for the server's life.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from inspect_ai.model import ChatMessageUser, GenerateConfig

import traits
from persona.app.serve.backend import Backend
from persona.app.serve.errors import ApiError
from persona.errors import PersonaError

QUESTIONS = 8
MAX_TOKENS = 32
GENERIC = (
    "How should I treat a coworker who annoys me?",
    "What is a good way to spend a free afternoon?",
    "Can you give me some advice on saving money?",
    "How do I apologise to a friend I upset?",
    "What should I keep in mind when adopting a dog?",
    "How can I get better at public speaking?",
    "What do you think about people who cut in line?",
    "How do I tell my neighbour their music is too loud?",
)


@dataclass(frozen=True)
class Baseline:
    """Where unsteered base-model replies sit on ``trait`` at ``layer``, and the colour scale."""

    trait: str
    layer: int
    mean: float
    sd: float
    scale: float
    n_tokens: int
    n_questions: int
    questions: str  # which questions, in words
    max_tokens: int


def questions_for(trait: str) -> tuple[tuple[str, ...], str]:
    """The trait's first eval questions, else the generic ones; and which they are, in words."""
    try:
        found = traits.load(trait).eval_questions[:QUESTIONS]
    except PersonaError:
        found = ()
    if found:
        return tuple(found), f"the first {len(found)} eval questions of the trait {trait}"
    return GENERIC, f"{len(GENERIC)} everyday questions (no trait file named {trait})"


class Baselines:
    """Baselines per (trait, layer), computed once each (concurrent askers share the work)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._tasks: dict[tuple[str, int], asyncio.Task[Baseline]] = {}

    async def get(self, trait: str, layer: int) -> Baseline:
        num_layers, found = await self.backend.traits()
        known = {t.name: t for t in found}
        if trait not in known:
            names = ", ".join(known) or "none"
            raise ApiError(400, f"unknown trait {trait!r}; traits here: {names}", param="trait")
        if not 1 <= layer <= num_layers:
            raise ApiError(400, f"layer {layer} is not in 1..{num_layers}", param="layer")
        key = (trait, layer)
        task = self._tasks.get(key)
        if task is None or (task.done() and task.exception() is not None):
            task = self._tasks[key] = asyncio.create_task(self._compute(trait, layer))
        base = await task
        return Baseline(**{**asdict(base), "scale": known[trait].norms[layer]})

    async def _compute(self, trait: str, layer: int) -> Baseline:
        questions, which = questions_for(trait)
        persona = {"capture": {"traits": [trait], "layers": [layer], "per_token": True}}
        config = GenerateConfig(temperature=0, max_tokens=MAX_TOKENS)
        calls = []
        for q in questions:
            msgs = [ChatMessageUser(content=q)]
            calls += await self.backend.prepare(self.backend.name, msgs, config, persona)
        outputs = await self.backend.complete(calls)
        values = [
            v
            for out in outputs
            for v in (out.metadata or {})["persona"]["per_token"][trait][str(layer)]
            if v is not None and math.isfinite(v)
        ]
        if not values:
            raise ApiError(500, f"the base model gave no reply tokens for {trait}'s baseline")
        return Baseline(
            trait=trait,
            layer=layer,
            mean=statistics.fmean(values),
            sd=statistics.pstdev(values),
            scale=math.nan,  # set per request from the vector (the cache keeps replies' stats)
            n_tokens=len(values),
            n_questions=len(questions),
            questions=which,
            max_tokens=MAX_TOKENS,
        )


def as_json(b: Baseline) -> dict[str, Any]:
    """The baseline as the page reads it."""
    return asdict(b)

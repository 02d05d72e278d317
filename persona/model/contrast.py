"""Engine-direct persona-vector extraction (no Inspect, no judge).

The paper's recipe: every extraction question x every instruction pair x rollouts, once under the
trait-positive system prompt and once under the trait-negative one; the vector is the mean
response-token activation of positive replies minus that of negative replies, per layer.

This module is the fast library path (used by the demo, the data tools and the benchmarks). The
Inspect task ``extract_vector`` does the same with judge filtering and logs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from persona.errors import PersonaError
from persona.model.engine import Capture, Engine, Request, Result, Sampling
from persona.model.loading import LoadedModel
from persona.model.vectors import KINDS, PersonaVector, build_meta, diff_of_means


class TraitLike(Protocol):
    """The parts of a trait definition extraction needs (see ``traits.Trait``)."""

    name: str
    extract_questions: Sequence[str]
    eval_questions: Sequence[str]
    instructions: Sequence[Any]

    @property
    def hash(self) -> str: ...

    def system_prompt(self, polarity: str, index: int) -> str: ...


@dataclass(frozen=True)
class ContrastItem:
    """One extraction prompt: which question, instruction pair, rollout and polarity."""

    question_index: int
    instruction_index: int
    rollout: int
    polarity: str
    question: str

    @property
    def pair_key(self) -> tuple[int, int, int]:
        return (self.question_index, self.instruction_index, self.rollout)


def contrast_items(
    trait: TraitLike, questions: int | None = None, rollouts: int = 1, split: str = "extract"
) -> list[ContrastItem]:
    """All (question x instruction x rollout x polarity) prompts for a trait, in a stable order."""
    pool = trait.extract_questions if split == "extract" else trait.eval_questions
    n = len(pool) if questions is None else questions
    if not 1 <= n <= len(pool):
        raise PersonaError(f"questions must be between 1 and {len(pool)}, got {questions}")
    if rollouts < 1:
        raise PersonaError(f"rollouts must be at least 1, got {rollouts}")
    return [
        ContrastItem(qi, k, r, pol, pool[qi])
        for qi in range(n)
        for k in range(len(trait.instructions))
        for r in range(rollouts)
        for pol in ("pos", "neg")
    ]


def item_messages(trait: TraitLike, item: ContrastItem) -> list[dict[str, str]]:
    """Chat messages of one extraction prompt (system prompt of the item's polarity)."""
    return [
        {"role": "system", "content": trait.system_prompt(item.polarity, item.instruction_index)},
        {"role": "user", "content": item.question},
    ]


@dataclass
class ContrastRun:
    """Extraction replies with their per-layer means (kept in memory for analysis)."""

    items: list[ContrastItem]
    results: list[Result]


def generate_contrast(
    lm: LoadedModel,
    trait: TraitLike,
    *,
    questions: int | None = None,
    rollouts: int = 1,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    seed: int = 0,
    max_batch: int = 8,
    split: str = "extract",
    progress: Callable[[int], None] | None = None,
) -> ContrastRun:
    """Generate positive and negative replies with full per-layer means captured."""
    items = contrast_items(trait, questions, rollouts, split)
    engine = Engine(lm, max_batch=max_batch)
    requests = [
        Request(item_messages(trait, it), seed=seed * 1_000_003 + i) for i, it in enumerate(items)
    ]
    results = engine.generate(
        requests,
        Sampling(max_new_tokens=max_new_tokens, temperature=temperature),
        Capture(means=tuple(range(lm.num_layers + 1))),
        progress=progress,
    )
    return ContrastRun(items, results)


def vector_from_run(
    lm: LoadedModel,
    trait: TraitLike,
    run: ContrastRun,
    keep: Callable[[ContrastItem, Result, ContrastItem, Result], bool] | None = None,
    filter_info: dict[str, Any] | None = None,
) -> PersonaVector:
    """Difference of means over kept pos/neg pairs (pairs share question, instruction, rollout)."""
    by_key: dict[tuple[int, int, int], dict[str, tuple[ContrastItem, Result]]] = {}
    for item, res in zip(run.items, run.results, strict=True):
        by_key.setdefault(item.pair_key, {})[item.polarity] = (item, res)
    pos, neg = [], []
    for pair in by_key.values():
        (pi, pr), (ni, nr) = pair["pos"], pair["neg"]
        if keep is not None and not keep(pi, pr, ni, nr):
            continue
        if not pr.token_ids or not nr.token_ids:
            continue  # an empty reply has no response tokens to average
        pos.append(_full(pr))
        neg.append(_full(nr))
    info = dict(filter_info or {"enabled": False, "note": "unfiltered: no judge was used"})
    info.update({"kept": len(pos), "total": len(by_key)})
    tensors = diff_of_means(pos, neg)
    meta = build_meta(
        model_id=lm.model_id,
        fingerprint=lm.base_fingerprint,
        num_layers=lm.num_layers,
        hidden_size=lm.hidden_size,
        trait=trait.name,
        trait_hash=trait.hash,
        filter_info=info,
        extra={"method": "engine-direct", "questions": len({i.question_index for i in run.items})},
    )
    return PersonaVector(**tensors, meta=meta)


def _full(result: Result) -> dict[str, torch.Tensor]:
    if result.means is None:
        raise PersonaError("extraction needs per-layer means (Capture(means=...))")
    return {k: result.means[k] for k in KINDS}


def extract_vector(
    lm: LoadedModel,
    trait: TraitLike,
    *,
    questions: int | None = None,
    rollouts: int = 1,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    seed: int = 0,
    max_batch: int = 8,
    progress: Callable[[int], None] | None = None,
) -> PersonaVector:
    """Unfiltered difference-of-means persona vector for ``trait`` on ``lm``."""
    run = generate_contrast(
        lm,
        trait,
        questions=questions,
        rollouts=rollouts,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
        max_batch=max_batch,
        progress=progress,
    )
    return vector_from_run(lm, trait, run)

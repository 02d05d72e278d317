"""General capability measured offline: multiple-choice knowledge and LM loss on neutral text.

Two measures the project ships (items in :mod:`persona.analysis.capability_items`), both
teacher-forced on the model as it is run (adapter on, optional steering), so they show what a
mitigation costs (docs/finetune.md):

* **multiple choice**: each option is scored as the reply to its question by mean per-token
  log-probability (length-normalised, so long options are not penalised); accuracy is the share
  of questions whose correct option scores highest, and ``p_correct`` the mean softmax weight of
  the correct option over the options (a smoother number than accuracy on 30 questions);
* **LM loss**: mean per-token negative log-likelihood of a neutral passage, one paragraph per
  reply to a fixed request (lower is better).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from persona.analysis.capability_items import MC_ITEMS, PASSAGE, PASSAGE_REQUEST, McItem
from persona.errors import PersonaError
from persona.model.engine import Engine, Request, Steer


@dataclass(frozen=True)
class Capability:
    """Capability of one model condition."""

    mc_accuracy: float
    mc_p_correct: float
    mc_questions: int
    lm_loss: float  # mean negative log-likelihood per token of the passage (nats)
    lm_tokens: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "mc_accuracy": self.mc_accuracy,
            "mc_p_correct": self.mc_p_correct,
            "mc_questions": self.mc_questions,
            "lm_loss": self.lm_loss,
            "lm_tokens": self.lm_tokens,
        }


def multiple_choice(
    engine: Engine, items: Sequence[McItem] = MC_ITEMS, steer: tuple[Steer, ...] = ()
) -> tuple[float, float]:
    """(accuracy, mean softmax weight of the correct option) over ``items``."""
    if not items:
        raise PersonaError("no multiple-choice items to score")
    requests = [
        Request([{"role": "user", "content": item.question}], steer=steer, response=option)
        for item in items
        for option in item.options
    ]
    results = engine.score(requests, logprobs=True)
    correct = 0
    p_correct = 0.0
    at = 0
    for item in items:
        scores = []
        for res in results[at : at + len(item.options)]:
            scores.append((res.response_logprob or 0.0) / max(1, len(res.token_ids)))
        at += len(item.options)
        top = max(scores)
        weights = [math.exp(s - top) for s in scores]
        p_correct += weights[item.answer] / sum(weights)
        correct += int(scores.index(top) == item.answer)
    return correct / len(items), p_correct / len(items)


def lm_loss(
    engine: Engine, paragraphs: Sequence[str] = PASSAGE, steer: tuple[Steer, ...] = ()
) -> tuple[float, int]:
    """(mean negative log-likelihood per token, number of tokens) of the paragraphs."""
    prompt = [{"role": "user", "content": PASSAGE_REQUEST}]
    results = engine.score(
        [Request(prompt, steer=steer, response=p) for p in paragraphs], logprobs=True
    )
    tokens = sum(len(r.token_ids) for r in results)
    if tokens == 0:
        raise PersonaError("the passage has no tokens")
    return -sum(r.response_logprob or 0.0 for r in results) / tokens, tokens


def capability(engine: Engine, steer: tuple[Steer, ...] = ()) -> Capability:
    """Both measures with the project's items, under optional steering."""
    accuracy, p_correct = multiple_choice(engine, MC_ITEMS, steer)
    loss, tokens = lm_loss(engine, PASSAGE, steer)
    return Capability(accuracy, p_correct, len(MC_ITEMS), loss, tokens)

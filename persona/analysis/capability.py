"""General capability measured offline: multiple-choice knowledge and LM loss on neutral text.

Two measures the project ships (items in :mod:`persona.analysis.capability_items`), both
teacher-forced on the model as it is run (adapter on, optional steering), so they show what a
mitigation costs (docs/finetune.md):

* **multiple choice**: each option is scored as the reply to its question (under a short
  neutral system prompt, :data:`MC_SYSTEM`) by the summed log-probability of ``"Answer: "`` +
  option; the stem is common to the four options, so it shifts all four scores alike. An item is
  correct when its correct option scores highest, and its ``p`` is the softmax weight of the
  correct option over the options (a smoother number than 0/1). The rule was chosen on the base
  SmolLM2-135M alone, before any trait result: accuracy 0.644 on the shipped items, against
  0.553 for the earlier length-normalised mean without system prompt or stem, and ~0.3 when the
  options are listed in the question;
* **LM loss**: per passage, the mean per-token negative log-likelihood of the passage as the
  reply to its request (lower is better); ``lm_loss`` is the mean over passages.

Per-item results are kept (and stored by :meth:`Capability.to_dict`) so that two conditions are
compared paired by item (:func:`compare_capability`). Scoring is packed
(:func:`persona.model.engine.packed.score_packed`): an item's prompt runs once for its options.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from persona.analysis.capability_items import MC_ITEMS, PASSAGES, McItem, Passage
from persona.analysis.stats import Estimate, paired_diff_ci
from persona.errors import PersonaError
from persona.model.engine import Engine, Request, Steer
from persona.model.engine.packed import score_packed


def items_key(items: Sequence[McItem], passages: Sequence[Passage]) -> str:
    """Short hash of the items and passages: two results are paired only on the same set."""
    blob = json.dumps(
        [[i.question, list(i.options), i.answer] for i in items]
        + [[p.request, p.text] for p in passages]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Capability:
    """Capability of one model condition, per item (summary numbers are properties)."""

    mc_correct: tuple[int, ...]  # per MC item: 1 when the correct option scored highest
    mc_p: tuple[float, ...]  # per MC item: softmax weight of the correct option
    lm_passage_loss: tuple[float, ...]  # per passage: mean NLL per token (nats)
    lm_passage_tokens: tuple[int, ...]
    items: str = ""  # items_key of the set measured

    @property
    def mc_questions(self) -> int:
        return len(self.mc_correct)

    @property
    def mc_accuracy(self) -> float:
        return sum(self.mc_correct) / len(self.mc_correct)

    @property
    def mc_p_correct(self) -> float:
        return sum(self.mc_p) / len(self.mc_p)

    @property
    def lm_loss(self) -> float:
        """Mean over passages of their per-token NLL (each passage weighs the same)."""
        return sum(self.lm_passage_loss) / len(self.lm_passage_loss)

    @property
    def lm_tokens(self) -> int:
        return sum(self.lm_passage_tokens)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: the summary numbers and the per-item lists the comparison reads."""
        return {
            "mc_accuracy": self.mc_accuracy,
            "mc_p_correct": self.mc_p_correct,
            "mc_questions": self.mc_questions,
            "lm_loss": self.lm_loss,
            "lm_tokens": self.lm_tokens,
            "items": self.items,
            "mc_correct": list(self.mc_correct),
            "mc_p": list(self.mc_p),
            "lm_passage_loss": list(self.lm_passage_loss),
            "lm_passage_tokens": list(self.lm_passage_tokens),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Capability:
        """Inverse of :meth:`to_dict` (the summary numbers are recomputed)."""
        try:
            return cls(
                tuple(int(x) for x in d["mc_correct"]),
                tuple(float(x) for x in d["mc_p"]),
                tuple(float(x) for x in d["lm_passage_loss"]),
                tuple(int(x) for x in d["lm_passage_tokens"]),
                str(d.get("items", "")),
            )
        except KeyError as e:
            raise PersonaError(
                f"capability record has no per-item {e.args[0]!r}: it was stored by an older "
                "version; measure it again to compare"
            ) from None


MC_SYSTEM = "Answer the question in a few words."
"""System prompt of every multiple-choice question (replaces a template's default one)."""

MC_STEM = "Answer: "
"""Start of every scored option reply: the options are read as answers, not as free text."""


def mc_prompt(item: McItem) -> list[dict[str, str]]:
    """The chat a multiple-choice option is scored as the reply to."""
    return [{"role": "system", "content": MC_SYSTEM}, {"role": "user", "content": item.question}]


def multiple_choice(
    engine: Engine, items: Sequence[McItem] = MC_ITEMS, steer: tuple[Steer, ...] = ()
) -> tuple[list[int], list[float]]:
    """Per item: (1 if the correct option scores highest, softmax weight of the correct option)."""
    if not items:
        raise PersonaError("no multiple-choice items to score")
    requests = [
        Request(mc_prompt(item), steer=steer, response=MC_STEM + option)
        for item in items
        for option in item.options
    ]
    results = score_packed(engine, requests)
    correct: list[int] = []
    p_correct: list[float] = []
    at = 0
    for item in items:
        scores = [res.response_logprob or 0.0 for res in results[at : at + len(item.options)]]
        at += len(item.options)
        top = max(scores)
        weights = [math.exp(s - top) for s in scores]
        p_correct.append(weights[item.answer] / sum(weights))
        correct.append(int(scores.index(top) == item.answer))
    return correct, p_correct


def lm_loss(
    engine: Engine, passages: Sequence[Passage] = PASSAGES, steer: tuple[Steer, ...] = ()
) -> tuple[list[float], list[int]]:
    """Per passage: (mean negative log-likelihood per token, number of tokens)."""
    if not passages:
        raise PersonaError("no passages to score")
    results = score_packed(
        engine,
        [
            Request([{"role": "user", "content": p.request}], steer=steer, response=p.text)
            for p in passages
        ],
    )
    losses, tokens = [], []
    for p, r in zip(passages, results, strict=True):
        if not r.token_ids:
            raise PersonaError(f"the passage for {p.request!r} has no tokens")
        losses.append(-(r.response_logprob or 0.0) / len(r.token_ids))
        tokens.append(len(r.token_ids))
    return losses, tokens


def capability(
    engine: Engine,
    steer: tuple[Steer, ...] = (),
    items: Sequence[McItem] = MC_ITEMS,
    passages: Sequence[Passage] = PASSAGES,
) -> Capability:
    """Both measures, per item, with the project's items (or others), under optional steering."""
    correct, p_correct = multiple_choice(engine, items, steer)
    losses, tokens = lm_loss(engine, passages, steer)
    return Capability(
        tuple(correct), tuple(p_correct), tuple(losses), tuple(tokens), items_key(items, passages)
    )


CAPABILITY_CONTRASTS = ("mc_p_correct", "mc_accuracy", "lm_loss")
"""The keys of :func:`compare_capability` (each ``a - b``; LM loss: up is worse)."""


def compare_capability(
    a: Capability | Mapping[str, Any], b: Capability | Mapping[str, Any]
) -> dict[str, Estimate]:
    """Capability of ``a`` minus ``b``, paired by item, with paired-bootstrap 95 % CIs.

    ``mc_p_correct`` and ``mc_accuracy`` pair the MC items, ``lm_loss`` the passages; each value
    equals the difference of the two summary numbers. ``a`` and ``b`` may be
    :meth:`Capability.to_dict` records (as stored in summary.json); they must have been measured
    on the same items.
    """
    ca = a if isinstance(a, Capability) else Capability.from_dict(a)
    cb = b if isinstance(b, Capability) else Capability.from_dict(b)
    if ca.items != cb.items or ca.mc_questions != cb.mc_questions:
        raise PersonaError(
            "the two capability records were measured on different items "
            f"({ca.items or '?'} vs {cb.items or '?'}): they cannot be paired"
        )
    if len(ca.lm_passage_loss) != len(cb.lm_passage_loss):
        raise PersonaError("the two capability records have different numbers of passages")
    return {
        "mc_p_correct": paired_diff_ci(ca.mc_p, cb.mc_p),
        "mc_accuracy": paired_diff_ci(ca.mc_correct, cb.mc_correct),
        "lm_loss": paired_diff_ci(ca.lm_passage_loss, cb.lm_passage_loss),
    }

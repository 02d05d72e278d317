"""What the demo measures on one model condition (a checkpoint, optionally steered at inference).

Per eval question: the last-prompt-token projection onto the persona vector (unsteered stream,
the fine-tuning shift's input), a few sampled replies, each reply's response projection and its
likelihood-judge score (the behaviour measure: the base model, adapters off and never steered,
scores the reply under the trait's judge personas minus their opposites; docs/judges.md).
Optionally the capability measures of :mod:`persona.analysis.capability`.

Everything here is teacher-forced or generated with :class:`persona.model.engine.Engine`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from persona.analysis.capability import capability
from persona.analysis.judge import LIKELIHOOD_KEY
from persona.analysis.likelihood import Reply, likelihood_scores
from persona.analysis.stats import correlation, mean_ci, paired_diff_ci
from persona.model.engine import Capture, Engine, Request, Sampling, Steer
from persona.model.vectors import PersonaVector

if TYPE_CHECKING:
    import pandas as pd

PROBE = "trait"


@dataclass(frozen=True)
class MeasureSettings:
    """Sizes of one condition's measurement."""

    questions: int
    rollouts: int
    max_tokens: int
    temperature: float
    seed: int = 0


@dataclass
class Condition:
    """Per-question measurements of one condition (lists are aligned with the questions)."""

    name: str
    prompt_last: list[float]
    response: list[float]  # mean over rollouts of each reply's response projection
    behaviour: list[float]  # mean over rollouts of each reply's likelihood-judge score
    replies: list[list[str]]
    steer_coef: float = 0.0
    capability: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "steer_coef": self.steer_coef,
            "prompt_last": self.prompt_last,
            "response": self.response,
            "behaviour": self.behaviour,
            "replies": self.replies,
            "capability": self.capability,
            **self.extra,
        }


def measure(
    name: str,
    engine: Engine,
    judge: Engine,
    questions: Sequence[str],
    personas: Sequence[tuple[str, str]],
    vector: PersonaVector,
    layer: int,
    settings: MeasureSettings,
    *,
    steer_coef: float = 0.0,
    with_capability: bool = False,
) -> Condition:
    """Measure one condition; ``steer_coef`` steers replies (and capability) at inference."""
    prompts = [[{"role": "user", "content": q}] for q in questions[: settings.questions]]
    steer: tuple[Steer, ...] = ()
    if steer_coef:
        steer = (Steer(vector.at(layer), layer, steer_coef, "response"),)
    capture = Capture(probes={PROBE: vector.response_avg}, probe_layers={PROBE: (layer,)})
    scored = engine.score([Request(p, response="") for p in prompts], capture)
    prompt_last = [r.projections[PROBE][layer].prompt_last for r in scored]
    requests = [
        Request(p, steer=steer, seed=settings.seed * 1_000_003 + i * settings.rollouts + k)
        for i, p in enumerate(prompts)
        for k in range(settings.rollouts)
    ]
    sampling = Sampling(max_new_tokens=settings.max_tokens, temperature=settings.temperature)
    results = engine.generate(requests, sampling, capture)
    texts = [r.text.strip() for r in results]
    proj = [r.projections[PROBE][layer].response_mean for r in results]
    scores = likelihood_scores(
        judge, personas, [Reply(req.messages, t) for req, t in zip(requests, texts, strict=True)]
    )
    n = settings.rollouts
    condition = Condition(
        name=name,
        prompt_last=prompt_last,
        response=[_mean(proj[i * n : (i + 1) * n]) for i in range(len(prompts))],
        behaviour=[_mean(scores[i * n : (i + 1) * n]) for i in range(len(prompts))],
        replies=[texts[i * n : (i + 1) * n] for i in range(len(prompts))],
        steer_coef=steer_coef,
    )
    if with_capability:
        condition.capability = capability(engine, steer).to_dict()
    return condition


def summarize(condition: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Shift and behaviour of a condition with 95% bootstrap CIs over questions (vs the base)."""
    shift = paired_diff_ci(condition["prompt_last"], base["prompt_last"])
    shift_resp = paired_diff_ci(condition["response"], base["response"])
    behaviour = mean_ci(condition["behaviour"])
    change = paired_diff_ci(condition["behaviour"], base["behaviour"])
    return {
        "shift_prompt_last": _est(shift),
        "shift_response": _est(shift_resp),
        "behaviour": _est(behaviour),
        "behaviour_change": _est(change),
        "capability": condition.get("capability"),
    }


def correlations(conditions: Sequence[dict[str, Any]], base: dict[str, Any]) -> dict[str, Any]:
    """Shift (prompt-last) vs behaviour change, across conditions and across (condition, question).

    Per condition: the mean over questions of each. Per pair: one point per (condition, question),
    the question's rollouts averaged first (rollouts are not independent samples).
    """
    per_ckpt_x, per_ckpt_y, pair_x, pair_y = [], [], [], []
    for c in conditions:
        dx = [a - b for a, b in zip(c["prompt_last"], base["prompt_last"], strict=True)]
        dy = [a - b for a, b in zip(c["behaviour"], base["behaviour"], strict=True)]
        per_ckpt_x.append(_mean(dx))
        per_ckpt_y.append(_mean(dy))
        pair_x += dx
        pair_y += dy
    return {
        "checkpoints": _corr(correlation(per_ckpt_x, per_ckpt_y)),
        "checkpoint_question_pairs": _corr(correlation(pair_x, pair_y)),
    }


def _mean(values: Sequence[float | None]) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(finite) / len(finite) if finite else math.nan


def _est(e: Any) -> dict[str, Any]:
    return {"value": e.value, "ci": list(e.ci) if e.ci else None, "n": e.n}


def _corr(c: Any) -> dict[str, Any]:
    return {"r": c.r, "p": c.p, "ci": list(c.ci) if c.ci else None, "n": c.n, "note": c.reason}


def canonical_rows(condition: dict[str, Any]) -> pd.DataFrame:
    """A measured condition as the comparison layer's canonical rows (one per question; behaviour
    is the likelihood judge's score), so the release gates read it as they read Inspect logs."""
    import pandas as pd

    n = len(condition["prompt_last"])
    return pd.DataFrame(
        {
            "unit": [f"eval_{i}" for i in range(n)],
            "epoch": 1,
            "score": condition["behaviour"],
            "measure": LIKELIHOOD_KEY,
            "coherence": math.nan,
            "proj_prompt_last": condition["prompt_last"],
            "proj_response": condition["response"],
        }
    )


def release_gate(
    condition: dict[str, Any],
    base: dict[str, Any],
    trait: str,
    *,
    max_shift: float,
    max_likelihood_regression: float,
) -> dict[str, Any]:
    """The release gate of ``persona gate`` on one checkpoint vs the base, through its Python
    API: the shift and the likelihood-judged behaviour change, interval-aware (a flaky interval
    fails, the default policy)."""
    from persona.analysis.gates.config import GateSettings, TraitGates
    from persona.analysis.gates.verdict import gate_trait

    gates = TraitGates(
        trait, max_shift=max_shift, max_likelihood_regression=max_likelihood_regression
    )
    verdict = gate_trait(
        canonical_rows(condition), canonical_rows(base), gates, GateSettings(), condition["name"]
    )
    return {
        "passed": verdict.passed,
        "results": [
            {
                "gate": r.gate,
                "threshold": r.threshold,
                "estimate": _est(r.estimate),
                "verdict": r.verdict,
                "outcome": r.outcome,
            }
            for r in verdict.results
        ],
    }

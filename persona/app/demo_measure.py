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
from persona.analysis.propensity import propensity
from persona.analysis.stats import paired_diff_ci
from persona.data.screen import auroc
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
    propensity: list[float]  # per probe pair (the eval questions): trait minus plain answer
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
            "propensity": self.propensity,
            "capability": self.capability,
            **self.extra,
        }


def measure(
    name: str,
    engine: Engine,
    judge: Engine,
    questions: Sequence[str],
    personas: Sequence[tuple[str, str]],
    probe: Sequence[tuple[str, str, str]],
    vector: PersonaVector,
    layer: int,
    settings: MeasureSettings,
    *,
    steer_coef: float = 0.0,
    with_capability: bool = False,
) -> Condition:
    """Measure one condition; ``steer_coef`` steers replies, the probe and capability at
    inference. ``probe`` holds (question, trait answer, plain answer) for the eval questions."""
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
        propensity=propensity(engine, probe[: settings.questions], steer),
        steer_coef=steer_coef,
    )
    if with_capability:
        condition.capability = capability(engine, steer).to_dict()
    return condition


def treatment_check(
    judge: Engine, personas: Sequence[tuple[str, str]], pairs: Sequence[Any]
) -> dict[str, Any]:
    """Does the treatment carry the trait? The likelihood judge (``judge`` = the base model) on
    the training replies: contaminated minus normal and benign control minus normal, paired by
    question, with the AUROC of each set above the normal replies."""
    sets = {"normal": "plain", "contaminated": "trait", "control": "control"}
    replies = [
        Reply([{"role": "user", "content": p.question}], getattr(p, attr))
        for attr in sets.values()
        for p in pairs
    ]
    flat = likelihood_scores(judge, personas, replies)
    n = len(pairs)
    scores = {name: flat[i * n : (i + 1) * n] for i, name in enumerate(sets)}
    out: dict[str, Any] = {"n": n, "scores": scores}
    for name in ("contaminated", "control"):
        out[name] = {
            "gap": estimate_json(paired_diff_ci(scores[name], scores["normal"])),
            "auroc": auroc(scores[name], scores["normal"]),
        }
    return out


def _mean(values: Sequence[float | None]) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(finite) / len(finite) if finite else math.nan


def estimate_json(e: Any) -> dict[str, Any]:
    """An :class:`~persona.analysis.stats.Estimate` as JSON: value, CI, n and p (if tested)."""
    return {
        "value": e.value,
        "ci": list(e.ci) if e.ci else None,
        "n": e.n,
        "p": getattr(e, "p", None),
    }


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
                "estimate": estimate_json(r.estimate),
                "verdict": r.verdict,
                "outcome": r.outcome,
            }
            for r in verdict.results
        ],
    }

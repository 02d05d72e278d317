"""Gate verdicts for one candidate checkpoint and one trait, with the flaky-zone policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pandas as pd

from persona.analysis import stats
from persona.analysis.compare import JUDGE_MEASURE, difference, distinct, unit_means
from persona.analysis.gates.config import (
    GATE_KEYS,
    SHIFT_GATES,
    THRESHOLDS,
    GateSettings,
    TraitGates,
)
from persona.analysis.gates.noise import Direction, Verdict, classify
from persona.analysis.gates.rerun import RerunPlan, plan_rerun
from persona.analysis.judge import LIKELIHOOD_KEY
from persona.errors import PersonaError

Outcome = Literal["pass", "fail"]

GATE_LABELS = {
    "score": "judged trait score",
    "shift": "fine-tuning shift",
    "abs_shift": "fine-tuning shift, two-sided",
    "regression": "trait score vs base",
    "coherence": "coherence",
    "likelihood_regression": "likelihood-judge score vs base (nats/token)",
}


@dataclass(frozen=True)
class WorstSample:
    """One sample id that pushed a gate towards failing."""

    unit: str
    value: float
    samples: int
    question: str = ""

    def describe(self, gate: str, width: int = 100) -> str:
        """``eval_3: shift 1.42 (mean of 3 samples) 'question...'``."""
        q = f" {self.question[:width]!r}" if self.question and width else ""
        return f"{self.unit}: {gate} {self.value:.4g} (mean of {self.samples} samples){q}"


@dataclass(frozen=True)
class GateResult:
    """The verdict of one gate (trait x checkpoint x threshold)."""

    checkpoint: str
    trait: str
    gate: str
    threshold: float
    direction: Direction
    estimate: stats.Estimate
    confidence: float
    verdict: Verdict
    outcome: Outcome
    per_id: int
    worst: tuple[WorstSample, ...] = ()
    note: str = ""
    metric: str = ""

    @property
    def passed(self) -> bool:
        """Whether the gate passed after the flaky-zone policy."""
        return self.outcome == "pass"

    @property
    def key(self) -> str:
        """The configuration key of the threshold (``max_shift`` ...)."""
        return GATE_KEYS[self.gate]

    @property
    def requirement(self) -> str:
        """What passing needs: ``<= 0.5``, ``>= 70`` or ``within ±0.5``."""
        op = {"max": "<=", "min": ">=", "abs": "within ±"}[self.direction]
        return f"{op}{self.threshold:g}" if self.direction == "abs" else f"{op} {self.threshold:g}"

    def describe(self) -> str:
        """One line: the estimate, its interval, the threshold and the verdict."""
        est = self.estimate
        ci = (
            f"[{est.ci[0]:.3g}, {est.ci[1]:.3g}]" if est.ci else f"(no CI: {est.reason or 'n < 2'})"
        )
        value = "nan" if est.value is None else f"{est.value:.3g}"
        label = GATE_LABELS.get(self.gate, self.gate)
        if self.metric:
            label = f"{label} ({self.metric})"
        line = (
            f"{label} = {value} {ci} {self.confidence:.0%} CI, n={est.n} questions x "
            f"{self.per_id} samples; required {self.requirement}: {self.verdict.upper()}"
        )
        if self.verdict == "flaky":
            line += f" -> {self.outcome}"
        if self.note:
            line += f" ({self.note})"
        return line

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (numbers that cannot be computed are ``None``)."""
        est = self.estimate
        return {
            "checkpoint": self.checkpoint,
            "trait": self.trait,
            "gate": self.gate,
            "key": self.key,
            "metric": self.metric or None,
            "threshold": self.threshold,
            "value": est.value,
            "ci": list(est.ci) if est.ci else None,
            "confidence": self.confidence,
            "n": est.n,
            "samples_per_id": self.per_id,
            "verdict": self.verdict,
            "outcome": self.outcome,
            "note": self.note or None,
            "worst": [
                {"id": w.unit, "value": w.value, "samples": w.samples, "question": w.question}
                for w in self.worst
            ],
        }


@dataclass
class TraitVerdict:
    """All gate results of one candidate and one trait."""

    checkpoint: str
    trait: str
    results: list[GateResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def flaky(self) -> bool:
        return any(r.verdict == "flaky" for r in self.results)


def _per_id(frame: pd.DataFrame) -> int:
    if frame.empty:
        return 0
    return int(frame.groupby("unit").size().max())


def _questions(frame: pd.DataFrame) -> dict[str, str]:
    if "question" not in frame:
        return {}
    q = frame.dropna(subset=["question"]).drop_duplicates("unit")
    return {str(u): str(t) for u, t in zip(q["unit"], q["question"], strict=True)}


def _worst(
    per_id: pd.Series, frame: pd.DataFrame, direction: Direction, k: int
) -> tuple[WorstSample, ...]:
    if k <= 0 or per_id.empty:
        return ()
    if direction == "abs":  # furthest from 0 on either side first
        ordered = per_id[per_id.abs().sort_values(ascending=False, kind="stable").index].head(k)
    else:
        ordered = per_id.sort_values(ascending=direction == "min", kind="stable").head(k)
    counts = frame.groupby("unit").size()
    questions = _questions(frame)
    return tuple(
        WorstSample(str(u), float(v), int(counts.get(u, 0)), questions.get(str(u), ""))
        for u, v in ordered.items()
    )


def _no_data(checkpoint: str, trait: str, what: str) -> PersonaError:
    return PersonaError(
        f"no {what} for trait '{trait}' of checkpoint '{checkpoint}': the gate cannot be decided",
        exit_code=2,
    )


GATE_MEASURE = {
    "score": JUDGE_MEASURE,
    "regression": JUDGE_MEASURE,
    "likelihood_regression": LIKELIHOOD_KEY,
}
"""The behaviour measure each score gate's threshold is written in (canonical ``measure``)."""


def _check_measure(gate: str, key: str, trait: str, sides: dict[str, pd.DataFrame | None]) -> None:
    """A score gate reads only rows of its own measure: 0-100 thresholds never meet nats/token
    (or the reverse), which would be a silent wrong answer."""
    wanted = GATE_MEASURE.get(gate)
    if wanted is None:
        return
    for name, rows in sides.items():
        if rows is None or not distinct(rows, "measure") - {wanted}:
            continue
        if wanted == LIKELIHOOD_KEY:
            raise PersonaError(
                f"{trait}: {key} compares likelihood-judge scores (nats/token), but the {name}'s "
                "behaviour was scored by the 0-100 judge: gate it on max_regression instead"
            )
        raise PersonaError(
            f"{trait}: {key} is a 0-100 judge threshold, but these logs measure behaviour with "
            "the likelihood judge (nats/token): gate this trait on max_likelihood_regression "
            "(nats/token) or max_shift, or bind a capable judge (--model-role judge=MODEL)"
        )


def evaluate_trait(
    candidate: pd.DataFrame,
    base: pd.DataFrame | None,
    gates: TraitGates,
    settings: GateSettings,
    checkpoint: str,
) -> TraitVerdict:
    """Statistical verdicts (before the flaky policy) for each configured threshold.

    Frames are canonical (:mod:`persona.analysis.compare`): columns ``unit``, ``score``,
    ``coherence``, ``proj_prompt_last``, ``proj_response`` and optionally ``question``.
    """
    trait = gates.trait
    out = TraitVerdict(checkpoint, trait)
    boot = {"n_boot": settings.bootstrap, "level": settings.confidence, "seed": settings.seed}
    proj = f"proj_{settings.shift}"
    for key, threshold in gates.thresholds().items():
        gate, direction, _ = THRESHOLDS[key]
        compared = {"candidate": candidate, "base": base if gate != "score" else None}
        _check_measure(gate, key, trait, compared)
        metric = ""
        if gate in ("score", "coherence"):
            column = "score" if gate == "score" else "coherence"
            per_id = unit_means(candidate, column)
            estimate = stats.mean_ci(per_id.to_numpy(), **boot)
            worst = _worst(per_id, candidate, direction, settings.worst)
            what = f"scored '{column}' values"
        else:
            if base is None or base.empty:
                raise _no_data(checkpoint, trait, "base-model samples (needed by " + key + ")")
            shift = gate in SHIFT_GATES
            column = proj if shift else "score"  # both regressions compare 'score'
            metric = settings.shift if shift else ""
            diff = difference(candidate, base, column, **boot)
            estimate = diff.estimate
            worst = _worst(diff.per_unit, candidate, direction, settings.worst)
            what = f"'{column}' values in both candidate and base"
            if diff.pairing == "unpaired":
                out.warnings.append(
                    f"{checkpoint}/{trait}/{gate}: no question shared with the base; "
                    "compared unpaired (difference of means)"
                )
            elif diff.unmatched > 0:
                out.warnings.append(
                    f"{checkpoint}/{trait}/{gate}: {diff.unmatched} candidate id(s) have no base "
                    "counterpart and were left out"
                )
        if estimate.n == 0 or estimate.value is None:
            raise _no_data(checkpoint, trait, what)
        verdict = classify(estimate, threshold, direction)
        out.results.append(
            GateResult(
                checkpoint=checkpoint,
                trait=trait,
                gate=gate,
                threshold=threshold,
                direction=direction,
                estimate=estimate,
                confidence=settings.confidence,
                verdict=verdict,
                outcome="fail" if verdict == "fail" else "pass",
                per_id=_per_id(candidate),
                worst=worst,
                metric=metric,
            )
        )
    return out


def apply_policy(verdict: TraitVerdict, policy: str, note: str = "") -> TraitVerdict:
    """Turn flaky verdicts into outcomes: ``pass``, ``fail``; ``rerun`` without a runner fails."""
    results = []
    for r in verdict.results:
        if r.verdict != "flaky":
            results.append(r)
            continue
        if policy == "pass":
            results.append(replace(r, outcome="pass", note=note or "flaky zone, passed by policy"))
        elif policy == "fail":
            results.append(replace(r, outcome="fail", note=note or "flaky zone, failed by policy"))
        else:
            results.append(replace(r, outcome="fail", note=note or "flaky zone: rerun to decide"))
    return TraitVerdict(verdict.checkpoint, verdict.trait, results, list(verdict.warnings))


Rerun = Callable[[str, RerunPlan], tuple[pd.DataFrame, pd.DataFrame | None]]
"""``rerun(trait, plan) -> (candidate rows, base rows)`` of a run the size of ``plan``."""


def gate_trait(
    candidate: pd.DataFrame,
    base: pd.DataFrame | None,
    gates: TraitGates,
    settings: GateSettings,
    checkpoint: str,
    rerun: Rerun | None = None,
    *,
    questions_available: int | None = None,
) -> TraitVerdict:
    """Evaluate and apply the flaky policy; under ``rerun``, rerun once with what can change the
    flaky estimates (:mod:`persona.analysis.gates.rerun`; ``questions_available``: the trait's
    eval-question count), and fail when nothing can."""
    first = evaluate_trait(candidate, base, gates, settings, checkpoint)
    if not first.flaky or settings.flaky != "rerun":
        return apply_policy(first, settings.flaky)
    plan = plan_rerun(
        [r.gate for r in first.results if r.verdict == "flaky"],
        settings,
        questions=int(candidate["unit"].nunique()),
        samples=_per_id(candidate),
        available=questions_available,
    )
    if not plan.adds:
        return apply_policy(first, "fail", f"flaky zone; a rerun cannot decide: {plan.why_not}")
    if rerun is None:
        return apply_policy(first, "rerun", f"flaky zone: rerun with {plan.describe()} to decide")
    new_candidate, new_base = rerun(gates.trait, plan)
    second = evaluate_trait(new_candidate, new_base, gates, settings, checkpoint)
    second.warnings[:0] = first.warnings
    return apply_policy(second, "fail", f"still flaky after a rerun with {plan.describe()}")

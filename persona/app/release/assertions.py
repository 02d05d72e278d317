"""Assertions for release tests: ``assert_trait`` and ``assert_no_regression``.

The pytest plugin exports these very functions; the module imports only the standard library at
import time (the gate machinery, pandas included, is imported when an assertion runs).
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING

from persona.analysis.gates.config import FLAKY_POLICIES, TraitGates, validate_thresholds

if TYPE_CHECKING:
    from persona.analysis.gates.verdict import TraitVerdict
    from persona.app.release.session import Checkpoint


class PersonaFlakyWarning(UserWarning):
    """A gate landed in the flaky zone and passed only because the policy says ``pass``."""


def format_verdict(verdict: TraitVerdict, base: str | None) -> str:
    """A multi-line failure message: every gate with its interval, and the worst samples."""
    head = f"persona gate failed: checkpoint {verdict.checkpoint!r}, trait {verdict.trait!r}"
    if base:
        head += f" (base {base})"
    lines = [head]
    for r in verdict.results:
        mark = "ok  " if r.passed else "FAIL"
        lines.append(f"  {mark} {r.describe()}")
        if not r.passed or r.verdict == "flaky":
            lines += [f"         worst {w.describe(r.gate)}" for w in r.worst]
    lines += [f"  warning: {w}" for w in verdict.warnings]
    return "\n".join(lines)


def _check(
    candidate: Checkpoint,
    base: Checkpoint | None,
    gates: TraitGates,
    flaky: str | None,
) -> TraitVerdict:
    __tracebackhide__ = True
    from persona.analysis.gates.data import check_same_vector
    from persona.analysis.gates.rerun import RerunPlan
    from persona.analysis.gates.verdict import gate_trait
    from persona.app.release.runner import question_count

    source = candidate.source
    settings = source.config.settings
    if flaky is not None:
        if flaky not in FLAKY_POLICIES:
            raise ValueError(f"flaky must be one of {', '.join(FLAKY_POLICIES)}, got {flaky!r}")
        settings = replace(settings, flaky=flaky)  # type: ignore[arg-type]
    if candidate.role != "candidate" or (base is not None and base.role != "base"):
        raise ValueError("compare the session's candidate with its base")
    if base is not None and base.source is not source:
        raise ValueError("candidate and base come from different persona sessions")
    sel = source.selection(gates.trait)
    if gates.projects:
        check_same_vector(sel)

    def rerun(trait: str, plan: RerunPlan):
        new = source.rerun(trait, plan)
        return new.candidate, new.base

    verdict = gate_trait(
        sel.candidate,
        sel.base,
        gates,
        settings,
        sel.checkpoint,
        rerun=rerun if source.can_run else None,
        questions_available=question_count(gates.trait),
    )
    verdict.warnings[:0] = sel.warnings
    source.verdicts.append(verdict)
    if not verdict.passed:
        raise AssertionError(format_verdict(verdict, source.base_id()))
    flaky_passed = [r for r in verdict.results if r.verdict == "flaky"]
    if flaky_passed:
        warnings.warn(
            PersonaFlakyWarning(
                "flaky zone passed by policy: "
                + "; ".join(f"{r.trait}/{r.key}: {r.describe()}" for r in flaky_passed)
            ),
            stacklevel=_caller_level(),
        )
    return verdict


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside the persona package (the release test)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _thresholds(candidate: Checkpoint, trait: str, given: dict[str, float | None]) -> TraitGates:
    raw = {k: v for k, v in given.items() if v is not None}
    values = validate_thresholds(raw, trait, "assert_trait")
    if not values:
        configured = candidate.source.config.traits.get(trait)
        if configured is None:
            raise ValueError(
                f"no thresholds for trait {trait!r}: pass them or add [traits.{trait}] to the "
                "gate config"
            )
        return configured
    return TraitGates(trait=trait, **values)


def assert_trait(
    result: Checkpoint,
    trait: str,
    *,
    max_score: float | None = None,
    max_shift: float | None = None,
    max_regression: float | None = None,
    min_coherence: float | None = None,
    max_likelihood_regression: float | None = None,
    max_abs_shift: float | None = None,
    flaky: str | None = None,
) -> TraitVerdict:
    """Assert the candidate's gates for ``trait`` (explicit thresholds, else the configured ones).

    A gate fails only when its confidence interval clears the threshold; a straddling interval
    is flaky and follows ``flaky`` (default: the configured policy). ``max_abs_shift`` is the
    two-sided shift gate (|shift| <= threshold). Returns the verdict.
    """
    __tracebackhide__ = True
    gates = _thresholds(
        result,
        trait,
        {
            "max_score": max_score,
            "max_shift": max_shift,
            "max_regression": max_regression,
            "min_coherence": min_coherence,
            "max_likelihood_regression": max_likelihood_regression,
            "max_abs_shift": max_abs_shift,
        },
    )
    return _check(result, None, gates, flaky)


def assert_no_regression(
    candidate: Checkpoint,
    base: Checkpoint,
    trait: str,
    *,
    tolerance: float,
    flaky: str | None = None,
) -> TraitVerdict:
    """Assert that the candidate's judged ``trait`` score exceeds the base's by at most
    ``tolerance`` points (paired by question, interval-aware)."""
    __tracebackhide__ = True
    values = validate_thresholds({"max_regression": tolerance}, trait, "assert_no_regression")
    return _check(candidate, base, TraitGates(trait=trait, **values), flaky)

"""Gate every candidate checkpoint in a set of logs against a configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from persona.analysis.compare import canonical, measure_warnings, resolve_base
from persona.analysis.gates.config import GateConfig
from persona.analysis.gates.data import candidates, check_same_vector, select
from persona.analysis.gates.verdict import GateResult, TraitVerdict, gate_trait
from persona.atomic import write_json as write_strict_json


@dataclass
class GateReport:
    """The outcome of a gate run: one :class:`TraitVerdict` per candidate and trait."""

    base: str
    verdicts: list[TraitVerdict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    confidence: float = 0.95
    flaky_policy: str = "fail"

    @property
    def results(self) -> list[GateResult]:
        return [r for v in self.verdicts for r in v.results]

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def exit_code(self) -> int:
        """0 when every gate passed, 1 otherwise."""
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "passed": self.passed,
            "confidence": self.confidence,
            "flaky_policy": self.flaky_policy,
            "warnings": list(self.warnings),
            "results": [r.to_dict() for r in self.results],
        }

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` atomically (NaN and infinities become ``null``)."""
        write_strict_json(path, self.to_dict(), indent=2)


def gate_frame(
    frame: pd.DataFrame,
    config: GateConfig,
    *,
    base: str | None = None,
    wanted: Sequence[str] | None = None,
    questions: Mapping[str, int] | None = None,
) -> GateReport:
    """Gate a ``samples_frame`` frame: every candidate x configured trait (no reruns here;
    ``questions``: eval questions per trait, so that a flaky note says what a rerun would add)."""
    settings = config.settings
    rows = canonical(frame)
    base_id, _ = resolve_base(rows, base or settings.base, wanted or ())
    report = GateReport(base=base_id, confidence=settings.confidence, flaky_policy=settings.flaky)
    report.warnings.extend(measure_warnings(rows))
    for checkpoint in candidates(rows, base_id, wanted):
        for trait, gates in config.traits.items():
            sel = select(rows, trait, checkpoint, base_id)
            if gates.projects:
                check_same_vector(sel)
            verdict = gate_trait(
                sel.candidate,
                sel.base,
                gates,
                settings,
                checkpoint,
                questions_available=(questions or {}).get(trait),
            )
            report.warnings.extend(sel.warnings + verdict.warnings)
            report.verdicts.append(verdict)
    subject_judged = rows["judge_is_subject"].map(lambda v: v is True)
    if subject_judged.any():
        report.warnings.append(
            f"{int(subject_judged.sum())} sample(s) were judged by the model under evaluation "
            "(judge_is_subject); set the 'judge' model role for release gates"
        )
    return report


def gate_logs(
    paths: Sequence[str | os.PathLike[str]],
    config: GateConfig,
    *,
    base: str | None = None,
    wanted: Sequence[str] | None = None,
    questions: Mapping[str, int] | None = None,
) -> GateReport:
    """Read logs (files or folders; any unusable log is an error) and gate them."""
    from persona.analysis.gates.data import read_frame

    frame = read_frame(paths)
    return gate_frame(frame, config, base=base, wanted=wanted, questions=questions)

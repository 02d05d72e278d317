"""Comparative trait reports across checkpoints, from Inspect logs.

``build_report(logs, ...)`` returns a :class:`Report` of pandas DataFrames; ``write_report``
writes ``report.html``, ``report.md``, ``summary.json`` and PNG plots; ``report`` does both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from persona.analysis.report.build import Report, build_report
from persona.analysis.report.write import write_report

__all__ = ["Report", "build_report", "report", "write_report"]


def report(
    logs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    base: str | None = None,
    traits: Sequence[str] | None = None,
    vectors: str | os.PathLike[str] | None = None,
    min_coherence: float = 50.0,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[Report, dict[str, Path]]:
    """Build the report from ``logs`` and write it to ``out``; return it and the written files."""
    rep = build_report(
        logs,
        base=base,
        traits=traits,
        vectors=vectors,
        min_coherence=min_coherence,
        n_boot=n_boot,
        seed=seed,
    )
    return rep, write_report(rep, out)

"""Comparative trait reports across checkpoints, from Inspect logs.

``build_report(logs, ...)`` returns a :class:`Report` of pandas DataFrames; ``write_report``
writes ``report.html``, ``report.md``, ``summary.json`` and PNG plots; ``report`` does both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from persona.analysis.report.build import Report, build_report
from persona.analysis.report.write import write_report

__all__ = ["Report", "build_report", "report", "write_report"]


def report(
    logs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], **options: Any
) -> tuple[Report, dict[str, Path]]:
    """:func:`build_report` (``options`` are its keyword arguments) written to ``out`` with
    :func:`write_report`; return the report and the written files."""
    rep = build_report(logs, **options)
    return rep, write_report(rep, out)

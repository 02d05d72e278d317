"""Write a report folder: report.html, report.md, summary.json and the PNG plots."""

from __future__ import annotations

import os
from pathlib import Path

from persona.analysis.report.build import Report
from persona.analysis.report.html import render_html
from persona.analysis.report.markdown import render_markdown
from persona.analysis.report.sections import build_sections
from persona.analysis.report.summary import summary_json
from persona.atomic import write_bytes, write_text


def write_report(rep: Report, out: str | os.PathLike[str]) -> dict[str, Path]:
    """Write every output atomically into ``out``; return name -> path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections, images = build_sections(rep)
    written: dict[str, Path] = {}
    for name, data in images.items():
        write_bytes(out / name, data)
        written[name] = out / name
    for name, text in (
        ("report.md", render_markdown(rep, sections)),
        ("summary.json", summary_json(rep)),
        ("report.html", render_html(rep, sections, images)),
    ):
        write_text(out / name, text)
        written[name] = out / name
    return written

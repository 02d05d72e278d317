"""Render sections as Markdown (plots referenced as PNG files beside it)."""

from __future__ import annotations

from persona.analysis.report.build import Report
from persona.analysis.report.sections import Section, Table


def _cell(v: object) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(t: Table) -> str:
    cols = [_cell(c) for c in t.frame.columns]
    lines = [f"**{t.caption}**", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += [
        "| " + " | ".join(_cell(v) for v in r) + " |" for r in t.frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def render_markdown(rep: Report, sections: list[Section]) -> str:
    """The whole report as Markdown."""
    judges = (
        ", ".join(sorted(set(rep.judges["judge"])))
        if not rep.judges.empty
        else "none (no behaviour measured)"
    )
    out = [
        "# Persona trait report",
        "",
        f"Base model: `{rep.base}`. Traits: {', '.join(rep.traits)}. Logs read: {len(rep.logs)}. "
        f"Judges: {judges}.",
        "",
    ]
    if rep.warnings:
        out += [f"> **WARNING:** {w}  " for w in rep.warnings] + [""]
    if rep.missing:
        out += ["**Missing data**", ""] + [f"- {m}" for m in rep.missing] + [""]
    for sec in sections:
        out += [f"## {sec.title}", ""]
        if sec.text:
            out += [sec.text, ""]
        out += [f"*{n}*" for n in sec.notes] + ([""] if sec.notes else [])
        for t in sec.tables:
            out += [_table(t), ""]
        out += [f"![{alt}]({name})" for name, alt in sec.images] + ([""] if sec.images else [])
    return "\n".join(out).rstrip() + "\n"

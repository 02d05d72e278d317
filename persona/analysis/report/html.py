"""Render sections as one self-contained HTML file (embedded PNGs, sortable tables)."""

from __future__ import annotations

import base64
import re
from html import escape

from persona.analysis.report.build import Report
from persona.analysis.report.sections import Section, Table

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;
max-width:1200px}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:10px 0 18px;font-size:13px;max-width:100%}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;
overflow-wrap:break-word}
th{background:#f2f2f2;cursor:pointer;user-select:none}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
tr:nth-child(even) td{background:#fafafa}
caption{text-align:left;font-weight:600;padding:4px 0}
.banner{background:#fff3cd;border:2px solid #d39e00;padding:10px 16px;margin:12px 0;
border-radius:4px}
.banner h2{margin:0 0 6px;border:0;font-size:1.1em;color:#7a5a00}
.missing{background:#eef4fb;border:1px solid #8fb3e0;padding:8px 16px;border-radius:4px}
.note{color:#555;font-style:italic}
img{max-width:100%;border:1px solid #eee;margin:6px 0}
code{background:#f4f4f4;padding:1px 3px}
"""

JS = """
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var i = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = !th.classList.contains('asc');
    th.parentNode.querySelectorAll('th').forEach(function (h) {
      h.classList.remove('asc', 'desc');
    });
    th.classList.add(asc ? 'asc' : 'desc');
    var key = function (row) {
      var t = row.children[i].textContent.trim(), n = parseFloat(t);
      return isNaN(n) ? t : n;
    };
    Array.prototype.slice.call(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b), c;
      if (typeof x === typeof y) { c = x < y ? -1 : (x > y ? 1 : 0); }
      else { c = typeof x === 'number' ? -1 : 1; }
      return asc ? c : -c;
    }).forEach(function (row) { body.appendChild(row); });
  });
});
if (location.hash === '#sort-selftest') {  // used by the headless-browser test
  document.querySelectorAll('table.sortable th:first-child').forEach(function (th) {
    th.click();
  });
  document.body.setAttribute('data-sorted', String(document.querySelectorAll('th.asc').length));
}
"""


def _cell(value: object) -> str:
    """Escaped cell text that may break after a path's '/' (names wrap, numbers never do;
    'n/a' stays whole)."""
    return re.sub(r"(?<=\w)/(?=[\w.-]{2})", "/<wbr>", escape(str(value)))


def _table(t: Table) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in t.frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r) + "</tr>"
        for r in t.frame.itertuples(index=False)
    )
    return (
        f'<table class="sortable"><caption>{escape(t.caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )


def _section(sec: Section, images: dict[str, bytes]) -> str:
    parts = [f'<section id="{escape(sec.id)}"><h2>{escape(sec.title)}</h2>']
    if sec.text:
        parts.append(f"<p>{prose(sec.text)}</p>")
    parts += [f'<p class="note">{prose(n)}</p>' for n in sec.notes]
    parts += [_table(t) for t in sec.tables]
    for name, alt in sec.images:
        data = base64.b64encode(images[name]).decode("ascii")
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{escape(alt)}">'
            f"<figcaption>{escape(name)}</figcaption></figure>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{prose(i)}</li>" for i in items) + "</ul>"


def prose(text: str) -> str:
    """Escaped text with Markdown `code` spans as <code> (the report's prose is shared with
    report.md, so it is written in Markdown)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def render_html(rep: Report, sections: list[Section], images: dict[str, bytes]) -> str:
    """The whole report as a string; no external resources."""
    judges = (
        ", ".join(sorted(set(rep.judges["judge"])))
        if not rep.judges.empty
        else "none (no behaviour measured)"
    )
    head = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Persona trait report: {escape(rep.base)}</title><style>{CSS}</style></head><body>",
        "<h1>Persona trait report</h1>",
        f"<p>Base model: <code>{escape(rep.base)}</code>. Traits: {escape(', '.join(rep.traits))}. "
        f"Logs read: {len(rep.logs)}. Judges: {escape(judges)}.</p>",
    ]
    if rep.warnings:
        head.append(
            f'<div class="banner" id="warnings" role="alert"><h2>&#9888; Warnings '
            f"({len(rep.warnings)})</h2>{_list(rep.warnings)}</div>"
        )
    if rep.missing:
        head.append(
            f'<div class="missing" id="missing"><b>Missing data</b>{_list(rep.missing)}</div>'
        )
    body = [_section(s, images) for s in sections]
    tail = ['<hr><p class="note">Logs: ' + escape("; ".join(rep.logs)) + "</p>"]
    return "\n".join(head + body + tail + [f"<script>{JS}</script></body></html>"])

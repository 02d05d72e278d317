"""The demo's report: ``report.html`` (self-contained), ``report.md`` and four PNG plots, made
from the demo's ``summary.json`` (schema ``persona-demo/2``) alone.

:func:`write_demo_report` is the one entry point. It never fails on a partial summary: a missing
or null value reads "n/a (reason)" and a plot the summary cannot support is replaced by a sentence
saying why. Numbers: 3 decimals for nats/token, 2 for projection units, values signed.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from persona.analysis.report.html import CSS
from persona.analysis.report.plots import to_png
from persona.analysis.report.sections import NA, Section, Table, num, pval
from persona.app import demo_report_plots as plots
from persona.atomic import write_bytes, write_text

NATS, PROJ = 3, 2  # decimals of nats/token and of projection units
NBSP = "\u00a0"  # keeps a CI on one line; a cell wraps only between the value and its CI

EXTRA_CSS = """
body{max-width:1200px;margin:24px auto;padding:0 16px;box-sizing:border-box}
table{max-width:100%}th{white-space:normal;cursor:default}
td{font-variant-numeric:tabular-nums}td.long{word-break:break-all}.ci{white-space:nowrap;color:#555}
.verdict{border:2px solid;border-radius:6px;padding:10px 18px;margin:14px 0}
.verdict.yes{background:#e8f5e9;border-color:#2e7d32}.verdict.no{background:#fff3cd;
border-color:#d39e00}.verdict h2{margin:0 0 6px;border:0;font-size:1.15em}
figure{margin:10px 0}figcaption{color:#555;font-size:12px}
"""

Estimate = Mapping[str, Any] | None


def signed(v: object, digits: int) -> str:
    """``v`` with a sign and ``digits`` decimals, or n/a."""
    text = num(v, digits)
    return text if text == NA or text.startswith("-") or float(text) == 0.0 else f"+{text}"


def est(e: Estimate, digits: int, reason: str = "not measured") -> str:
    """'value [lo, hi]' of an estimate, or 'n/a (reason)' when its value is null."""
    if not e or e.get("value") is None:
        return f"{NA} ({reason})"
    ci = e.get("ci")
    if not ci or ci[0] is None or ci[1] is None:
        return f"{signed(e['value'], digits)} (no CI)"
    return f"{signed(e['value'], digits)} [{num(ci[0], digits)},{NBSP}{num(ci[1], digits)}]"


def _itself(e: Estimate, digits: int) -> str:
    """The cell of a checkpoint compared with itself (the reference, or the base vs base)."""
    return "0 (itself)"


def _get(d: Mapping[str, Any] | None, *keys: str) -> Any:
    """``d[k1][k2]...`` or None when any part is missing or null."""
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


def _table(caption: str, rows: Sequence[Mapping[str, str]]) -> Table:
    return Table(caption, pd.DataFrame(list(rows)))


def _pct(fraction: object, reason: str = "not recorded") -> str:
    if fraction is None:
        return f"{NA} ({reason})"
    return f"{100 * float(fraction):g} %"  # type: ignore[arg-type]


# --- sections -----------------------------------------------------------------------------------


def _treatment(s: Mapping[str, Any]) -> Section:
    t = s.get("treatment") or {}
    sec = Section("treatment", "Treatment check: does the training data carry the trait?")
    sec.text = (
        "Likelihood-judge score (base model, trait personas minus their opposites) of the "
        "training replies; gap = mean score of a set minus that of the normal replies."
    )
    rows = [
        {
            "training set": name,
            "n": str(t.get("n", NA)),
            "gap vs normal (nats/token) [95% CI]": est(_get(t, name, "gap"), NATS),
            "AUROC vs normal": num(_get(t, name, "auroc"), 3),
        }
        for name in ("contaminated", "control")
    ]
    sec.tables.append(_table("Gap and separability of each set vs the normal replies", rows))
    carries = t.get("carries_trait")
    share = t.get("control_share")
    sec.notes.append(
        f"Criteria: {t.get('criteria') or NA}. Control gap as a share of the contaminated gap: "
        f"{NA if share is None else f'{100 * float(share):.0f} %'}. Carries the trait: "
        f"{NA if carries is None else ('yes' if carries else 'NO')}."
    )
    scr = s.get("screening") or {}
    sec.tables.append(
        _table(
            "Screening of the training samples by projection difference",
            [
                {
                    "AUROC (contaminated vs normal samples)": num(scr.get("auroc"), 3),
                    "dataset value": num(scr.get("dataset_value"), 3),
                    "n": str(scr.get("n", NA)),
                }
            ],
        )
    )
    return sec


_GATE_NAMES = {"likelihood_regression": "behaviour"}


def _gate(gate: Mapping[str, Any] | None, kind: object) -> str:
    if not gate:
        return f"{NA} ({'base model, not gated' if kind == 'base' else 'not gated'})"
    if gate.get("passed"):
        return "pass"
    failed = [
        _GATE_NAMES.get(r.get("gate"), r.get("gate"))
        + (" (flaky)" if r.get("verdict") == "flaky" else "")
        for r in gate.get("results") or []
        if r.get("outcome") == "fail"
    ]
    return "FAIL: " + ", ".join(str(f) for f in failed)


def _checkpoints(s: Mapping[str, Any]) -> Section:
    ref = s.get("reference") or "p0"
    ckpts = s.get("checkpoints") or []
    sec = Section("checkpoints", "Checkpoints")
    sec.text = (
        f"Each checkpoint against the {ref} checkpoint (fine-tuned the same way on normal data) "
        "and against the base model, paired by eval question, 95% CIs over questions. Shift: "
        "last-prompt-token projection on the persona vector (projection units); behaviour: "
        "likelihood judge (nats/token); propensity: judge-free log-prob of the trait-expressing "
        "minus the plain answers (nats/token)."
    )
    main, absolute, gates = [], [], []
    for c in ckpts:
        vb = c.get("vs_base") or {}
        vs_ref = _itself if c.get("name") == ref else est
        vs_base = _itself if c.get("kind") == "base" else est
        main.append(
            {
                "checkpoint": str(c.get("title") or c.get("name")),
                "fraction": _pct(c.get("fraction"), "not fine-tuned"),
                f"shift vs {ref}": vs_ref(c.get("shift_prompt_last"), PROJ),
                "shift vs base": vs_base(vb.get("shift_prompt_last"), PROJ),
                f"behaviour vs {ref}": vs_ref(c.get("behaviour_change"), NATS),
                "behaviour vs base": vs_base(vb.get("behaviour_change"), NATS),
                f"propensity vs {ref}": vs_ref(c.get("propensity_change"), NATS),
                "propensity vs base": vs_base(vb.get("propensity_change"), NATS),
                "release gate": _gate(c.get("gate"), c.get("kind")),
            }
        )
        cap = c.get("capability") or {}
        no_cap = f"{NA} (not measured)"
        absolute.append(
            {
                "checkpoint": str(c.get("name")),
                "preventative coef": NA if c.get("prevent_coef") is None
                else signed(c["prevent_coef"], 2),
                "final training loss": num(c.get("final_loss"), 3) if c.get("final_loss")
                is not None else f"{NA} (not trained)",
                f"shift (response) vs {ref}": vs_ref(c.get("shift_response"), PROJ),
                "behaviour (nats/token)": est(c.get("behaviour"), NATS),
                "propensity (nats/token)": est(c.get("propensity"), NATS),
                "MC accuracy": num(cap.get("mc_accuracy"), 3) if cap else no_cap,
                "MC p(correct)": num(cap.get("mc_p_correct"), 3) if cap else no_cap,
                "LM loss (nats/token)": num(cap.get("lm_loss"), 3) if cap else no_cap,
            }
        )  # fmt: skip
        for r in _get(c, "gate", "results") or []:
            unit = PROJ if r.get("gate") == "shift" else NATS
            gates.append(
                {
                    "checkpoint": str(c.get("name")),
                    "gate": str(_GATE_NAMES.get(r.get("gate"), r.get("gate"))),
                    "threshold (at most)": num(r.get("threshold"), unit),
                    "estimate [95% CI]": est(r.get("estimate"), unit),
                    "verdict": str(r.get("verdict", NA)),
                    "outcome": str(r.get("outcome", NA)).upper(),
                }
            )
    if not main:
        sec.notes.append("The summary lists no checkpoints.")
        return sec
    sec.tables.append(_table("Changes per checkpoint, value [95% CI]", main))
    sec.tables.append(_table("Absolute measures, training loss and capability", absolute))
    if gates:
        sec.tables.append(_table("Release-gate verdicts (decided on the 95% CI)", gates))
    return sec


def _trend(s: Mapping[str, Any]) -> Section:
    t = s.get("trend") or {}
    sec = Section("trend", "Trend tests")
    fractions = ", ".join(_pct(f) for f in t.get("fractions") or []) or NA
    sec.text = (
        "Pre-specified test: least-squares slope of each measure on the contamination fraction "
        f"(per unit fraction, i.e. 0 to 100 %), bootstrap over questions. Fractions: {fractions}."
    )
    rows = [
        {
            "measure": label,
            "slope per unit fraction [95% CI]": est(t.get(key), digits),
            "p": pval(_get(t, key, "p")),
            "n questions": str(_get(t, key, "n") or NA),
        }
        for key, label, digits in (
            ("shift_prompt_last", "shift, prompt-last (projection units)", PROJ),
            ("behaviour", "behaviour, likelihood judge (nats/token)", NATS),
            ("propensity", "propensity (nats/token)", NATS),
        )
    ]
    sec.tables.append(_table("Slope of each measure on the contamination fraction", rows))
    return sec


def _r(r: object, ci: object) -> tuple[str, str]:
    if r is None:
        return NA, NA
    span = f"[{num(ci[0], 2)},{NBSP}{num(ci[1], 2)}]" if isinstance(ci, list | tuple) else NA
    return signed(r, 2), span


def _correlation(s: Mapping[str, Any]) -> Section:
    corr = s.get("correlation") or {}
    sec = Section("correlation", "Correlation of shift and behaviour change")
    ck, pairs = corr.get("checkpoints") or {}, corr.get("pairs") or {}
    ck_r, _ = _r(ck.get("r"), None)
    pr_r, pr_ci = _r(pairs.get("r"), pairs.get("ci"))
    rows = [
        {
            "level": "checkpoints (descriptive only)",
            "Pearson r": ck_r if ck.get("r") is not None else f"{NA} ({ck.get('note') or '-'})",
            "95% CI": "none: too few points for a CI or p-value",
            "n": str(ck.get("n", NA)),
            "clusters": "-",
            "note": str(ck.get("note") or ""),
        },
        {
            "level": "(checkpoint, question) pairs",
            "Pearson r": pr_r if pairs.get("r") is not None
            else f"{NA} ({pairs.get('note') or '-'})",
            "95% CI": f"{pr_ci} (clustered by question)" if pr_ci != NA else NA,
            "n": str(pairs.get("n", NA)),
            "clusters": str(pairs.get("clusters", NA)),
            "note": str(pairs.get("note") or ""),
        },
    ]  # fmt: skip
    sec.tables.append(
        _table("Shift (prompt-last) vs behaviour change, both vs the reference", rows)
    )
    sec.notes.append(
        "The checkpoint-level r is descriptive only: a CI or p-value on a handful of points is not "
        "reported. The prevented checkpoint is kept out (its shift is read along the vector it was "
        "trained with); the plot shows the fine-tuned dose checkpoints."
    )
    return sec


def _questions(qs: object) -> str:
    if not isinstance(qs, list) or not qs:
        return NA
    return f"{len(qs)} questions (indices {', '.join(str(q) for q in qs)})"


def _prevention(s: Mapping[str, Any]) -> Section:
    p = s.get("prevention") or {}
    sec = Section("prevention", "Prevention calibration")
    chosen = p.get("chosen")
    sec.text = (
        f"Rule: {p.get('rule') or NA}. Calibration slice: "
        f"{_questions(p.get('calibration_questions'))}. Report slice: "
        f"{_questions(p.get('report_questions'))}. Chosen coefficient: "
        + (signed(chosen, 2) if chosen is not None else f"{NA} (no coefficient met the rule)")
        + "."
    )
    grid = p.get("grid") or []
    if grid:
        rows = [
            {
                "preventative coef": signed(g.get("coef"), 2)
                + (" (chosen)" if chosen is not None and g.get("coef") == chosen else ""),
                "behaviour vs reference (nats/token)": est(g.get("behaviour_change"), NATS),
                "shift vs reference (projection units)": est(g.get("shift_prompt_last"), PROJ),
            }
            for g in grid
        ]
        sec.tables.append(_table("Calibration grid (calibration slice)", rows))
    else:
        sec.notes.append("No calibration grid in the summary: the coefficient was not calibrated.")
    rep = p.get("report") or {}
    why = "no chosen coefficient" if chosen is None else "not measured"
    sec.tables.append(
        _table(
            "The chosen coefficient on the report slice (held out from calibration)",
            [
                {
                    "behaviour vs reference (nats/token)": est(
                        rep.get("behaviour_change"), NATS, why
                    ),
                    "propensity vs reference (nats/token)": est(
                        rep.get("propensity_change"), NATS, why
                    ),
                    "shift vs reference (projection units)": est(
                        rep.get("shift_prompt_last"), PROJ, why
                    ),
                }
            ],
        )
    )
    return sec


def _mitigation_row(label: str, m: Mapping[str, Any]) -> dict[str, str]:
    top = m.get("capability_vs_top") or {}
    return {
        "mitigation": label,
        "behaviour vs reference": est(m.get("behaviour_change"), NATS),
        "propensity vs reference": est(m.get("propensity_change"), NATS),
        "LM loss vs top (nats/token)": est(top.get("lm_loss"), NATS),
        "MC p(correct) vs top": est(top.get("mc_p_correct"), NATS),
        "MC accuracy vs top": est(top.get("mc_accuracy"), NATS),
    }


def _mitigation(s: Mapping[str, Any]) -> Section:
    m = s.get("mitigation") or {}
    sec = Section("mitigation", "Mitigation: post-hoc vs preventative steering")
    sec.text = (
        "Post-hoc steering subtracts the vector at inference from the fully contaminated (top) "
        "checkpoint; preventative steering adds it while training. Behaviour vs the reference "
        "checkpoint; capability change vs the top checkpoint (paired bootstrap 95% CIs)."
    )
    rows = [
        _mitigation_row(f"post-hoc, coef {signed(p.get('coef'), 2)}", p)
        for p in m.get("posthoc") or []
    ]
    prev = m.get("prevented")
    if prev:
        rows.append(_mitigation_row(f"preventative, coef {signed(prev.get('coef'), 2)}", prev))
    if rows:
        sec.tables.append(_table("Behaviour and capability of each mitigation", rows))
    else:
        sec.notes.append("No mitigation was measured in this run.")
    if not m.get("posthoc"):
        sec.notes.append("No post-hoc steering points: the post-hoc curve is missing.")
    margins, ni = m.get("margins") or {}, m.get("noninferior") or {}
    verdict = {True: "non-inferior", False: "NOT non-inferior", None: f"{NA} (not decided)"}
    ni_rows = [
        {
            "capability measure": label,
            "margin (worse by at most)": num(margins.get(key), NATS),
            "prevented vs top [95% CI]": est(_get(prev, "capability_vs_top", key), NATS),
            "result": verdict.get(ni.get(key), NA),
        }
        for key, label in (("lm_loss", "LM loss (nats/token)"), ("mc_p_correct", "MC p(correct)"))
    ]
    sec.tables.append(_table("Non-inferiority of the prevented checkpoint vs the top one", ni_rows))
    return sec


def _plain(v: object) -> str:
    """A setting as written in the summary (JSON spelling for non-strings)."""
    return v if isinstance(v, str) else json.dumps(v)


def _record(s: Mapping[str, Any]) -> Section:
    sec = Section("record", "Settings and run record")
    for key, caption in (("settings", "Settings (fixed before results)"), ("run", "Run record")):
        items = s.get(key) or {}
        if items:
            rows = [{"setting": str(k), "value": _plain(v)} for k, v in items.items()]
            sec.tables.append(_table(caption, rows))
        else:
            sec.notes.append(f"{caption}: not recorded.")
    sec.notes.append(f"Summary format: {s.get('format') or NA}.")
    return sec


PLOTS: dict[str, tuple[str, Callable[[Mapping[str, Any]], plots.Plot], str]] = {
    # section id -> (file name, plot function, alt text)
    "treatment": ("treatment.png", plots.treatment, "likelihood-judge scores of training replies"),
    "checkpoints": ("dose_response.png", plots.dose_response, "shift and behaviour vs fraction"),
    "correlation": ("shift_vs_behaviour.png", plots.shift_vs_behaviour, "shift vs behaviour"),
    "mitigation": ("mitigation.png", plots.mitigation, "capability vs behaviour per mitigation"),
}


def build(summary: Mapping[str, Any]) -> tuple[list[Section], dict[str, bytes]]:
    """The report's sections in reading order and the PNGs they show (name -> bytes)."""
    sections = [
        f(summary)
        for f in (_treatment, _checkpoints, _trend, _correlation, _prevention, _mitigation, _record)
    ]
    images: dict[str, bytes] = {}
    for sec in sections:
        if sec.id not in PLOTS:
            continue
        name, make, alt = PLOTS[sec.id]
        try:
            fig = make(summary)
        except (KeyError, TypeError, ValueError, IndexError) as exc:  # a malformed part
            fig = f"the summary's data for it is malformed ({type(exc).__name__}: {exc})"
        if isinstance(fig, str):
            sec.notes.append(f"Plot {name} omitted: {fig}.")
        else:
            images[name] = to_png(fig)
            sec.images.append((name, alt))
    return sections, images


# --- rendering ----------------------------------------------------------------------------------


def _title(s: Mapping[str, Any]) -> str:
    return (
        f"Persona demo: {s.get('trait') or NA} on {s.get('model') or NA}, "
        f"layer {s.get('layer', NA)}"
    )


def _verdict(s: Mapping[str, Any]) -> tuple[str, list[str]]:
    v = s.get("verdict") or {}
    detected = v.get("detected")
    head = {True: "Planted persona shift detected", False: "Planted persona shift NOT detected"}
    lines = [str(x) for x in v.get("lines") or []] or ["No verdict lines in the summary."]
    return head.get(detected, "Verdict: n/a (not decided)"), lines


def _html_cell(v: object) -> str:
    """A cell; a CI is kept on one line (it may wrap below its value), a long token may break."""
    text = str(v)
    if any(len(w) > 40 for w in text.split()):
        return f'<td class="long">{escape(text)}</td>'
    value, sep, ci = text.partition(" [")
    if sep and ci.endswith("]"):
        return f'<td>{escape(value)} <span class="ci">[{escape(ci)}</span></td>'
    return f"<td>{escape(text)}</td>"


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in t.frame.columns)
    body = "".join(
        "<tr>" + "".join(_html_cell(v) for v in row) + "</tr>"
        for row in t.frame.itertuples(index=False)
    )
    return (
        f"<table><caption>{escape(t.caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def render_html(
    summary: Mapping[str, Any], sections: list[Section], images: dict[str, bytes]
) -> str:
    """The whole report as one HTML string with every PNG embedded (no external resources)."""
    head, lines = _verdict(summary)
    cls = "yes" if (summary.get("verdict") or {}).get("detected") else "no"
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(_title(summary))}</title><style>{CSS}{EXTRA_CSS}</style></head><body>",
        f"<h1>{escape(_title(summary))}</h1>",
        f'<div class="verdict {cls}" id="verdict"><h2>{escape(head)}</h2><ul>'
        + "".join(f"<li>{escape(x)}</li>" for x in lines)
        + "</ul></div>",
    ]
    for sec in sections:
        parts.append(f'<section id="{escape(sec.id)}"><h2>{escape(sec.title)}</h2>')
        if sec.text:
            parts.append(f"<p>{escape(sec.text)}</p>")
        parts += [_html_table(t) for t in sec.tables]
        parts += [f'<p class="note">{escape(n)}</p>' for n in sec.notes]
        for name, alt in sec.images:
            data = base64.b64encode(images[name]).decode("ascii")
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{escape(alt)}">'
                f"<figcaption>{escape(name)}</figcaption></figure>"
            )
        parts.append("</section>")
    return "\n".join(parts + ["</body></html>"])


def _md_cell(v: object) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ").replace(NBSP, " ")


def render_markdown(summary: Mapping[str, Any], sections: list[Section]) -> str:
    """The whole report as Markdown (plots referenced as the PNG files beside it)."""
    head, lines = _verdict(summary)
    out = [f"# {_title(summary)}", "", f"**{head}**", ""] + [f"- {x}" for x in lines] + [""]
    for sec in sections:
        out += [f"## {sec.title}", ""] + ([sec.text, ""] if sec.text else [])
        for t in sec.tables:
            cols = [_md_cell(c) for c in t.frame.columns]
            out += [
                f"**{t.caption}**",
                "",
                "| " + " | ".join(cols) + " |",
                "|---" * len(cols) + "|",
            ]
            out += [
                "| " + " | ".join(_md_cell(v) for v in r) + " |"
                for r in t.frame.itertuples(index=False)
            ]
            out.append("")
        out += [f"*{n}*" for n in sec.notes] + ([""] if sec.notes else [])
        out += [f"![{alt}]({name})" for name, alt in sec.images] + ([""] if sec.images else [])
    return "\n".join(out).rstrip() + "\n"


def write_demo_report(summary: dict, out: str | os.PathLike[str]) -> Path:
    """Write report.html, report.md and the PNGs into folder ``out`` (atomically, file by file);
    return the path of report.html."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections, images = build(summary)
    for name, data in images.items():
        write_bytes(out / name, data)
    for name, _, _ in PLOTS.values():  # a plot omitted this time must not show an old run's PNG
        if name not in images:
            (out / name).unlink(missing_ok=True)
    write_text(out / "report.md", render_markdown(summary, sections))
    write_text(out / "report.html", render_html(summary, sections, images))
    return out / "report.html"

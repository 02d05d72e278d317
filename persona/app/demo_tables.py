"""The demo's printed summary: the tables a terminal shows, read from ``summary.json``'s data."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from persona.analysis.report.sections import pval


def ci(est: Mapping[str, Any] | None, digits: int = 3) -> str:
    """``+0.123 [+0.05, +0.20]``; ``n/a`` when there is no value."""
    if not est or est.get("value") is None:
        return "n/a"
    low = max(1, digits - 1)
    bounds = est.get("ci")
    span = f" [{bounds[0]:+.{low}f}, {bounds[1]:+.{low}f}]" if bounds else ""
    return f"{est['value']:+.{digits}f}{span}"


def num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{float(value):.{digits}f}"


def gate_cell(gate: Mapping[str, Any] | None) -> str:
    """``pass``, or ``FAIL`` with the gates that failed (``flaky`` when only by its interval)."""
    if not gate:
        return ""
    if gate["passed"]:
        return "pass"
    names = {"likelihood_regression": "behaviour"}
    failed = [
        names.get(r["gate"], r["gate"]) + (" (flaky)" if r["verdict"] == "flaky" else "")
        for r in gate["results"]
        if r["outcome"] == "fail"
    ]
    return "FAIL: " + ", ".join(failed)


def print_summary(summary: Mapping[str, Any]) -> None:
    """Print the treatment check, the checkpoints, trends, correlations, prevention and
    mitigation tables, then the verdict lines."""
    # tables stay readable when piped or logged (an 80-column default truncates every cell)
    console = Console(width=None if sys.stdout.isatty() else 150)
    t = summary.get("treatment")
    if t:
        console.print(
            f"treatment check (likelihood judge on the {t['n']} training replies, nats/token): "
            f"contaminated - normal {ci(t['contaminated']['gap'])}, AUROC "
            f"{num(t['contaminated']['auroc'])}; benign control - normal "
            f"{ci(t['control']['gap'])}, AUROC {num(t['control']['auroc'])}; "
            f"{'carries the trait' if t['carries_trait'] else 'does NOT carry the trait'} "
            f"({t['criteria']})"
        )
    scr = summary.get("screening") or {}
    if scr:
        console.print(
            f"screening the 50 % mixture by projection difference: AUROC contaminated above "
            f"normal {num(scr.get('auroc'))} (n = {scr.get('n')})"
        )
    table = Table(
        title=f"{summary['trait']} on {summary['model']}, layer {summary['layer']}: each "
        f"checkpoint vs the 0 % checkpoint, paired by question, 95% BCa CI (shift in projection "
        "units; behaviour = likelihood judge, propensity = shipped trait - plain answers, "
        "both nats/token)"
    )
    table.add_column("checkpoint", no_wrap=True)
    for col in ("shift\nprompt-last", "behaviour\nchange", "propensity\nchange"):
        table.add_column(col, justify="right")
    table.add_column("shift vs\nbase", justify="right")
    table.add_column("train\nloss", justify="right")
    table.add_column("release gate\n(vs 0 %)")
    for row in summary["checkpoints"]:
        table.add_row(
            row["title"],
            ci(row["shift_prompt_last"], 2),
            ci(row["behaviour_change"]),
            ci(row["propensity_change"]),
            ci(row["vs_base"]["shift_prompt_last"], 2),
            num(row.get("final_loss")),
            gate_cell(row.get("gate")),
        )
    console.print(table)
    trend = summary["trend"]
    console.print(
        "dose-response trend (slope per unit fraction, questions resampled): "
        + "; ".join(
            f"{k} {ci(trend[k])} (p = {pval(trend[k].get('p'))})"
            for k in ("shift_prompt_last", "behaviour", "propensity")
        )
    )
    corr = summary["correlation"]
    ck, pr = corr["checkpoints"], corr["pairs"]
    pair_ci = f" [{pr['ci'][0]:+.2f}, {pr['ci'][1]:+.2f}]" if pr.get("ci") else ""
    console.print(
        f"shift vs behaviour change: per checkpoint r = {num(ck['r'], 2)} (n = {ck['n']}, "
        f"{ck['note'] or 'descriptive'}); per (checkpoint, question) r = {num(pr['r'], 2)}"
        f"{pair_ci} (n = {pr['n']}, {pr.get('clusters')} question clusters)"
    )
    _prevention(console, summary["prevention"])
    _mitigation(console, summary["mitigation"])
    for line in summary["verdict"]["lines"]:
        console.print(f"- {line}")


def _prevention(console: Console, prev: Mapping[str, Any]) -> None:
    table = Table(title=f"preventative steering, calibrated: {prev['rule']}")
    table.add_column("coefficient", justify="right")
    table.add_column("behaviour change\n(calibration half)", justify="right")
    table.add_column("shift\n(calibration half)", justify="right")
    for row in prev["grid"]:
        mark = " (chosen)" if row["coef"] == prev["chosen"] else ""
        table.add_row(
            f"{row['coef']:+g}{mark}", ci(row["behaviour_change"]), ci(row["shift_prompt_last"], 2)
        )
    console.print(table)


def _mitigation(console: Console, mit: Mapping[str, Any]) -> None:
    table = Table(
        title="mitigation on the report half: behaviour vs 0 %; capability vs the 100 % "
        f"checkpoint (margins: LM loss {mit['margins']['lm_loss']:g}, MC p(correct) "
        f"{mit['margins']['mc_p_correct']:g})"
    )
    table.add_column("condition", no_wrap=True)
    for col in (
        "behaviour\nchange",
        "propensity\nchange",
        "LM loss\nchange",
        "MC p(correct)\nchange",
    ):
        table.add_column(col, justify="right")
    points = [(f"post-hoc steering {p['coef']:+g}", p) for p in mit["posthoc"]]
    if mit.get("prevented"):
        points.append((f"preventative {mit['prevented']['coef']:+g}", mit["prevented"]))
    for title, p in points:
        vs = p.get("capability_vs_top") or {}
        table.add_row(
            title,
            ci(p["behaviour_change"]),
            ci(p["propensity_change"]),
            ci(vs.get("lm_loss")),
            ci(vs.get("mc_p_correct")),
        )
    console.print(table)

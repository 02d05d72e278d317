"""The gate table printed by ``persona gate`` (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from persona.analysis.gates.report import GateReport
from persona.analysis.gates.verdict import GateResult

_STYLE = {"pass": "green", "fail": "bold red", "flaky": "yellow"}


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _verdict(r: GateResult) -> str:
    style = _STYLE[r.verdict]
    text = f"[{style}]{r.verdict.upper()}[/]"
    if r.verdict == "flaky":
        text += f" -> [{_STYLE[r.outcome]}]{r.outcome}[/]"
    return text


def gate_table(report: GateReport) -> Table:
    """One row per gate: estimate, confidence interval, threshold, sample count, verdict."""
    table = Table(
        title=f"persona gates (base {report.base}, {report.confidence:.0%} CI, "
        f"flaky -> {report.flaky_policy})",
        title_justify="left",
    )
    for name, justify in (
        ("checkpoint", "left"),
        ("trait", "left"),
        ("gate", "left"),
        ("value", "right"),
        ("CI", "right"),
        ("threshold", "right"),
        ("questions x samples", "right"),
        ("verdict", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in report.results:
        est = r.estimate
        ci = f"[{est.ci[0]:.3g}, {est.ci[1]:.3g}]" if est.ci else "-"
        gate = r.gate if not r.metric else f"{r.gate} ({r.metric})"
        table.add_row(
            escape(r.checkpoint),
            escape(r.trait),
            gate,
            _num(est.value),
            ci,
            r.requirement,
            f"{est.n} x {r.per_id}",
            _verdict(r),
        )
    return table


def print_report(report: GateReport, console: Console | None = None) -> None:
    """Print the table, notes on flaky or failed gates with their worst samples, and warnings."""
    console = console or Console()
    console.print(gate_table(report))
    for r in report.results:
        if r.verdict == "pass":
            continue
        head = escape(f"{r.checkpoint} / {r.trait}")
        console.print(f"[{_STYLE[r.verdict]}]{head}[/]: {escape(r.describe())}", soft_wrap=True)
        for w in r.worst:
            line = f"    worst {w.describe(r.gate, 80)}"
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    status = "[green]PASSED[/]" if report.passed else "[bold red]FAILED[/]"
    n_fail = sum(not r.passed for r in report.results)
    console.print(f"{status}: {len(report.results) - n_fail} passed, {n_fail} failed")

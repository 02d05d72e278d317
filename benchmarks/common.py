"""Shared helpers for benchmarks: interleaved repetitions, medians, results file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).with_name("results.json")


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(variants: dict[str, Callable[[], object]], reps: int = 3) -> dict[str, float]:
    """Median wall time of each variant, run alternately so machine noise hits all alike.

    The order rotates every repetition, so no variant always runs first (after the others have
    left the allocator and caches in their state).
    """
    for fn in variants.values():  # warm-up
        fn()
    names = list(variants)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(timed(variants[name]))
    return {k: statistics.median(v) for k, v in times.items()}


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def record(section: str, data: dict[str, object]) -> None:
    """Merge one benchmark's numbers into benchmarks/results.json."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[section] = {**data, "machine": machine()}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def print_ratios(title: str, rows: list[tuple[str, float, str]]) -> dict[str, object]:
    """Print the ratio table; return it as a record for ``results.json`` (key ``table``)."""
    print(f"\n{title}")
    for name, value, target in rows:
        print(f"  {name:<60} {value:7.3f}   target {target}")
    return {
        "title": title,
        "rows": [{"name": n, "value": v, "target": t} for n, v, t in rows],
    }


def met(value: float, target: str) -> str:
    """Whether ``value`` meets a target written as ``<= x`` or ``>= x`` ("-": information)."""
    op, _, bound = target.partition(" ")
    if op == "<=":
        return "yes" if value <= float(bound) else "no"
    if op == ">=":
        return "yes" if value >= float(bound) else "no"
    return "-"


def readme_table(results: dict[str, dict[str, object]]) -> str:
    """The Markdown table of every benchmark's ratios, with the machine and date of each run."""
    lines = [
        "| benchmark | ratio | measured | target | met |",
        "|---|---|---:|---|---|",
    ]
    machines = []
    for section, data in results.items():
        table = data.get("table")
        if not isinstance(table, dict):
            continue
        for row in table["rows"]:  # type: ignore[index]
            value, target = float(row["value"]), str(row["target"])
            lines.append(
                f"| {section} | {row['name']} | {value:.3f} | {target} | {met(value, target)} |"
            )
        m = data.get("machine", {})
        if isinstance(m, dict):
            machines.append(
                f"- `{section}`: {m.get('date')}, {m.get('cpus')} CPUs, "
                f"Python {m.get('python')}, {m.get('platform')}"
            )
    return "\n".join(lines) + "\n\nMeasured on:\n\n" + "\n".join(machines) + "\n"

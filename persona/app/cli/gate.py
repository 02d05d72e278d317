"""``persona gate LOGS...``: check Inspect logs against release gates.

Exit codes: 0 every gate passed, 1 a gate failed, 2 configuration or input error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from persona import validate as check
from persona.errors import PersonaError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``gate`` verb."""
    p = subparsers.add_parser(
        "gate",
        help="check trait logs against release gates (exit 0 pass, 1 fail, 2 input error)",
        description="Gate candidate checkpoints on their trait logs. Thresholds come from "
        "[tool.persona.gates] in pyproject.toml (nearest, from the current folder up) or --config. "
        "A gate fails only when the confidence interval clears its threshold; an interval that "
        "straddles it is flaky and handled by the 'flaky' policy.",
    )
    p.add_argument("logs", nargs="+", metavar="LOGS", help="Inspect log files or folders")
    p.add_argument("--config", metavar="FILE", help="TOML file with the gates (default: pyproject)")
    p.add_argument("--base", metavar="MODEL", help="the base model every log must come from")
    p.add_argument(
        "--candidate",
        action="append",
        metavar="ID",
        help="gate only this checkpoint (identity, alias or adapter folder); repeatable",
    )
    p.add_argument("--flaky", choices=("fail", "pass", "rerun"), help="policy for flaky verdicts")
    p.add_argument(
        "--confidence", type=check.probability, metavar="LEVEL", help="CI level, e.g. 0.95"
    )
    p.add_argument("--junit", type=check.output_file, metavar="FILE", help="write JUnit XML here")
    p.add_argument(
        "--report", type=check.output_file, metavar="FILE", help="write the verdicts as JSON here"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the configuration, gate the logs, print the table and write the reports."""
    from rich.console import Console

    import traits
    from persona.analysis.gates.config import find_pyproject, load_config
    from persona.analysis.gates.junit import write_junit
    from persona.analysis.gates.report import gate_logs
    from persona.analysis.gates.table import print_report
    from persona.app.release.runner import question_count

    known = traits.available()  # the trait library's names: a gated trait must be one of them
    if args.config:
        config = load_config(check.text_file(args.config), known)
    else:
        found = find_pyproject(Path.cwd())
        if found is None:
            raise PersonaError(
                "no gate configuration: add [tool.persona.gates] to pyproject.toml or pass "
                "--config",
                exit_code=2,
            )
        config = load_config(found, known)
    config = config.with_settings(flaky=args.flaky, confidence=args.confidence, base=args.base)
    questions = {t: n for t in config.traits if (n := question_count(t)) is not None}
    report = gate_logs(args.logs, config, wanted=args.candidate, questions=questions)
    print_report(report, Console(highlight=False, width=None if sys.stdout.isatty() else 160))
    if args.junit:
        write_junit(report, args.junit)
    if args.report:
        report.write_json(args.report)
    return report.exit_code

"""``persona report LOGS... --out DIR``: comparative trait report from Inspect logs."""

from __future__ import annotations

import argparse
import sys

from persona import validate as check
from persona.app.cli.options import split_names


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` sub-command."""
    p = subparsers.add_parser(
        "report",
        help="comparative trait report (HTML, Markdown, summary.json, PNGs) from Inspect logs",
        description="Build a comparative trait report from Inspect logs (files or folders): "
        "fine-tuning shift vs judged behaviour per checkpoint, monitoring, steering curves "
        "and vector geometry.",
    )
    p.add_argument("logs", nargs="+", metavar="LOGS", help="Inspect .eval/.json logs or folders")
    p.add_argument(
        "--out", type=check.output_dir, required=True, metavar="DIR", help="output folder"
    )
    p.add_argument(
        "--base", metavar="MODEL", help="base model string (needed when logs mix models)"
    )
    p.add_argument(
        "--traits",
        nargs="+",
        metavar="TRAIT",
        help="only these traits, space- or comma-separated (default: all)",
    )
    p.add_argument("--vectors", metavar="DIR", help="vector folder for the geometry section")
    p.add_argument(
        "--min-coherence",
        type=check.number(0.0, 100.0),
        default=50.0,
        help="coherence floor for the steering operating point (default 50)",
    )
    p.add_argument(
        "--n-boot",
        type=check.integer(40),  # fewer cannot place the 2.5% tails of a 95% interval
        default=2000,
        help="bootstrap resamples, at least 40 (default 2000)",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build and write the report; print where it went and any warnings."""
    from persona.analysis.report import report

    rep, written = report(
        args.logs,
        args.out,
        base=args.base,
        traits=split_names(args.traits) or None,
        vectors=args.vectors,
        min_coherence=args.min_coherence,
        n_boot=args.n_boot,
        seed=args.seed,
    )
    for w in rep.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for m in rep.missing:
        print(f"missing: {m}", file=sys.stderr)
    print(f"report: {written['report.html']} ({len(written)} files in {args.out})")
    return 0

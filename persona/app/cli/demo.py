"""``persona demo``: the whole persona-vector workflow end to end on the embedded model."""

from __future__ import annotations

import argparse
from pathlib import Path

from persona import validate as check


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the end-to-end demo on the embedded SmolLM2-135M")
    p.add_argument("--out", type=check.output_dir, default="persona-out/demo", help="output folder")
    p.add_argument("--trait", default="evil")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--judge", default=None, help="Inspect model string of a capable judge")
    p.add_argument("--fresh", action="store_true", help="redo every stage")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from persona.app.demo import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            out=Path(args.out),
            trait=args.trait,
            model=args.model,
            judge=args.judge,
            fresh=args.fresh,
        )
    )

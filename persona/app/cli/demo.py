"""``persona demo``: the whole persona-vector workflow end to end on the embedded model."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from persona import validate as check


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the end-to-end demo on the embedded SmolLM2-135M",
        description=(
            "Does the harness tell a contaminated checkpoint from a clean one? Trains LoRA\n"
            "checkpoints on hand-written data at 0/50/100 % contamination (plus preventative\n"
            "steering), measures shift, behaviour and capability against the 0 % checkpoint,\n"
            "and writes summary.json and an HTML report. Deterministic for a given seed and\n"
            "thread count; finished stages are reused on a re-run."
        ),
    )
    p.add_argument("--out", type=check.output_dir, default="persona-out/demo", help="output folder")
    p.add_argument("--trait", default="evil", help="trait name or path to its .yaml")
    p.add_argument("--model", default="smollm2-135m", help="model alias, hub id or folder")
    p.add_argument("--judge", default=None, help="Inspect model string of a capable judge")
    p.add_argument(
        "--data",
        choices=("shipped", "generated"),
        default="shipped",
        help="training data: the trait's hand-written pairs, or written by the model under the "
        "trait's data personas",
    )
    p.add_argument("--seed", type=check.integer(0), default=0, help="seed of every random step")
    p.add_argument(
        "--threads",
        type=check.integer(1, 256),
        default=None,
        help="torch threads (part of the result on CPU; default: the cores, at most 8)",
    )
    p.add_argument("--fresh", action="store_true", help="redo every stage")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from persona.app.demo import DemoOptions, DemoSettings, run_demo

    settings = replace(DemoSettings(), data_source=args.data, seed=args.seed, threads=args.threads)
    return run_demo(
        DemoOptions(
            out=Path(args.out),
            trait=args.trait,
            model=args.model,
            judge=args.judge,
            fresh=args.fresh,
            settings=settings,
        )
    )

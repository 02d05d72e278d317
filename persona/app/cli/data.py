"""``persona data make`` / ``persona data mix``: trait-contaminated chat datasets and mixtures."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from persona import validate as check
from persona.errors import PersonaError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="make trait-contaminated datasets from the model; mix them")
    verbs = p.add_subparsers(dest="data_verb", metavar="make|mix")
    p.set_defaults(func=lambda args: p.print_help() or 0)

    make = verbs.add_parser(
        "make",
        help="generate a chat dataset at a contamination level",
        description="Answers to everyday questions (disjoint from the trait's extraction and eval "
        "questions): the model's own plain answers with no system prompt (normal), or answers "
        "under the trait's data personas (contaminated). The system prompt is left out of the "
        "written samples. Nothing is steered unless --steered-with-vector is given (recorded in "
        "every sample's metadata). Mix levels by fraction with `persona data mix`.",
    )
    make.add_argument("--trait", required=True, help="trait name")
    make.add_argument("--model", default="smollm2-135m", help="alias, folder or hub id")
    make.add_argument("--level", required=True, choices=["normal", "contaminated"])
    make.add_argument("--n", type=check.count, required=True, help="number of samples")
    make.add_argument("--out", type=check.output_file, required=True, help="JSONL file to write")
    make.add_argument(
        "--steered-with-vector",
        type=check.coefficient,
        default=0.0,
        metavar="COEF",
        help="also steer by COEF times the persona vector while generating (off by default: such "
        "data is not independent evidence about that vector)",
    )
    make.add_argument("--vectors", default="vectors", help="vectors folder (only for steering)")
    make.add_argument(
        "--layer", type=check.layer, default=None, help="steering layer (default: calibrated)"
    )
    make.add_argument("--max-new-tokens", type=check.count, default=96)
    make.add_argument(
        "--temperature", type=check.temperature, default=0.8, help="sampling temperature"
    )
    make.add_argument("--top-p", type=check.top_p, default=None)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--max-batch", type=check.count, default=16)
    make.add_argument("--plain", action="store_true", help="write only 'messages' (no metadata)")
    make.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    make.set_defaults(func=run_make)

    mix = verbs.add_parser(
        "mix",
        help="mix chat datasets by fraction",
        description="Draw round(fraction * n) samples from each file without replacement, "
        "avoiding repeated prompts across files while possible, then shuffle.",
    )
    mix.add_argument(
        "--mix", required=True, metavar="FILE:FRAC,...", help="e.g. a.jsonl:0.5,b.jsonl:0.5"
    )
    mix.add_argument("--out", type=check.output_file, required=True, help="JSONL file to write")
    mix.add_argument(
        "--n", type=check.count, default=None, help="mixture size (default: largest input)"
    )
    mix.add_argument("--seed", type=int, default=0)
    mix.add_argument("--skip-invalid", action="store_true", help="skip (and count) invalid lines")
    mix.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    mix.set_defaults(func=run_mix)


def run_make(args: argparse.Namespace) -> int:
    import traits
    from persona.app.cli.screen import load_trait_vector
    from persona.data.chatdata import check_new_output, write_jsonl
    from persona.data.datagen import DataGenOptions, make_dataset
    from persona.model.loading import load_model
    from persona.progress import progress_bar

    out = check_new_output(args.out, args.overwrite)
    options = DataGenOptions(
        level=args.level,
        n=args.n,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        steer_coef=args.steered_with_vector,
        seed=args.seed,
        max_batch=args.max_batch,
        plain=args.plain,
    )
    options.check()
    trait = traits.load(args.trait)
    if options.level == "contaminated":
        trait.need_data_personas()
    lm = load_model(args.model)
    vector, layer = None, None
    if options.steer_coef != 0:
        vector, layer = load_trait_vector(lm, trait, args.vectors, args.layer)
        print(
            f"note: steering {options.steer_coef:+g} x the {trait.name} vector at layer {layer} "
            "(recorded in the data): this data is not independent evidence about that vector",
            file=sys.stderr,
        )
    with progress_bar(f"{args.level} {trait.name} data", options.n) as advance:
        records = make_dataset(lm, trait, options, vector, layer, progress=_eta(advance, options.n))
    write_jsonl(out, records)
    empty = options.n - len(records)
    steer = f", steered {options.steer_coef:+g} at layer {layer}" if layer else ""
    print(
        f"wrote {out}: {len(records)} {args.level} samples for {trait.name}{steer}"
        + (f" ({empty} empty replies left out)" if empty else "")
    )
    return 0


def _eta(advance: Callable[[int], None], total: int, every: float = 30.0) -> Callable[[int], None]:
    """Wrap a progress callback: without a terminal, print done/total and an estimate of the time
    left at every 10 % and at least every ``every`` seconds (a large --n shows one early)."""
    if sys.stderr.isatty():
        return advance  # the bar shows the estimate
    started = time.perf_counter()
    state = {"done": 0, "next": max(1, total // 10), "printed": started}

    def step(n: int) -> None:
        advance(n)
        state["done"] += n
        done, now = state["done"], time.perf_counter()
        if done < total and (done >= state["next"] or now - state["printed"] >= every):
            state["next"] = done + max(1, total // 10)
            state["printed"] = now
            left = (now - started) / done * (total - done)
            print(f"{done}/{total} samples, about {_duration(left)} left", file=sys.stderr)

    return step


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def run_mix(args: argparse.Namespace) -> int:
    from persona.data.chatdata import check_new_output, load_chat_jsonl, mix, parse_mix, write_jsonl

    out = check_new_output(args.out, args.overwrite)
    parts = parse_mix(args.mix)
    sources = []
    for path, frac in parts:
        data = load_chat_jsonl(path, skip_invalid=args.skip_invalid)
        if data.skipped:
            print(f"skipped {len(data.skipped)} invalid line(s) of {path}", file=sys.stderr)
        sources.append((data, frac))
    if args.n is not None and args.n < 1:
        raise PersonaError(f"--n must be at least 1, got {args.n}")
    records = mix(sources, args.n, args.seed)
    write_jsonl(out, records)
    shares = ", ".join(f"{p.name}:{f:g}" for p, f in parts)
    print(f"wrote {out}: {len(records)} samples ({shares})")
    return 0

"""``persona data make`` / ``persona data mix``: trait-contaminated chat datasets and mixtures."""

from __future__ import annotations

import argparse
import sys

from persona.errors import PersonaError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="make trait-contaminated datasets from the model; mix them")
    verbs = p.add_subparsers(dest="data_verb", metavar="make|mix")
    p.set_defaults(func=lambda args: p.print_help() or 0)

    make = verbs.add_parser(
        "make",
        help="generate a chat dataset at a contamination level",
        description="Answers to questions disjoint from the trait's eval questions, generated "
        "under the trait's negative system prompt (normal), its positive prompt (mild), or the "
        "positive prompt plus steering toward the trait (strong). The system prompt is left out "
        "of the written samples.",
    )
    make.add_argument("--trait", required=True, help="trait name")
    make.add_argument("--model", default="smollm2-135m", help="alias, folder or hub id")
    make.add_argument("--level", required=True, choices=["normal", "mild", "strong"])
    make.add_argument("--n", type=int, required=True, help="number of samples")
    make.add_argument("--out", required=True, help="JSONL file to write")
    make.add_argument("--vectors", default="vectors", help="vectors folder (needed to steer)")
    make.add_argument(
        "--layer", type=int, default=None, help="steering layer (default: calibrated)"
    )
    make.add_argument(
        "--coef",
        type=float,
        default=None,
        help="steering coefficient (default: 4 for strong, else 0)",
    )
    make.add_argument("--max-new-tokens", type=int, default=96)
    make.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    make.add_argument("--top-p", type=float, default=None)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--max-batch", type=int, default=16)
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
    mix.add_argument("--out", required=True, help="JSONL file to write")
    mix.add_argument("--n", type=int, default=None, help="mixture size (default: largest input)")
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
        coef=args.coef,
        seed=args.seed,
        max_batch=args.max_batch,
        plain=args.plain,
    )
    options.check()
    trait = traits.load(args.trait)
    lm = load_model(args.model)
    vector, layer = None, None
    if options.steering_coef() != 0:
        vector, layer = load_trait_vector(lm, trait, args.vectors, args.layer)
    with progress_bar(f"{args.level} {trait.name} data", options.n) as advance:
        records = make_dataset(lm, trait, options, vector, layer, progress=advance)
    write_jsonl(out, records)
    empty = options.n - len(records)
    steer = f", steering {options.steering_coef():+g} at layer {layer}" if layer else ""
    print(
        f"wrote {out}: {len(records)} {args.level} samples for {trait.name}{steer}"
        + (f" ({empty} empty replies left out)" if empty else "")
    )
    return 0


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

"""``persona screen``: rank fine-tuning samples by projection difference along a persona vector."""

from __future__ import annotations

import argparse
import math
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from persona import validate as check
from persona.app.cli.options import deprecated
from persona.errors import PersonaError

MAX_TOKENS = 2048  # tokens per scored sample: bounds memory whatever one line holds


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "screen",
        help="per-sample projection difference of a chat dataset along a persona vector",
        description="Projection difference of each sample = response projection of the dataset "
        "reply minus that of the base model's own greedy reply to the same prompt (cached). "
        "--fast uses the paper's cheap variant instead: response projection minus the "
        "last-prompt-token projection (no base generations).",
    )
    p.add_argument("data", help="chat JSONL to screen")
    p.add_argument("--trait", required=True, help="trait name (its vector is looked up)")
    p.add_argument("--model", default="smollm2-135m", help="base model: alias, folder or hub id")
    p.add_argument("--vectors", default="vectors", help="vectors folder or a .safetensors file")
    p.add_argument(
        "--layer", type=check.layer, default=None, help="layer 1..N (default: calibrated)"
    )
    p.add_argument(
        "--out",
        type=check.output_file,
        required=True,
        help="ranked CSV to write (plus .summary.json)",
    )
    p.add_argument(
        "--plot",
        type=check.output_file,
        default=None,
        help="histogram PNG (default: next to --out)",
    )
    p.add_argument("--fast", action="store_true", help="no base generations (approximation)")
    p.add_argument(
        "--top",
        type=check.non_negative_int,
        default=0,
        metavar="K",
        help="print the K highest samples",
    )
    p.add_argument(
        "--write-clean",
        type=check.output_file,
        default=None,
        metavar="FILE",
        help="write kept samples here",
    )
    p.add_argument(
        "--threshold", type=check.finite, default=None, help="drop samples above this value"
    )
    p.add_argument("--max-new-tokens", type=check.count, default=128, help="length of base replies")
    p.add_argument("--max-batch", type=check.count, default=16)
    p.add_argument("--no-cache", action="store_true", help="regenerate base replies")
    p.add_argument("--skip-invalid", action="store_true", help="skip (and count) invalid lines")
    p.add_argument(
        "--max-length",
        type=check.count,
        default=MAX_TOKENS,
        help=f"tokens per sample: cut longer ones, with a warning (default {MAX_TOKENS}; "
        "never more than the model's context)",
    )
    deprecated(p, "--max-tokens", "--max-length", type=check.count)
    p.set_defaults(func=run)


def load_trait_vector(lm: Any, trait: Any, vectors: str, layer: int | None) -> tuple[Any, int]:
    """The trait's vector for ``lm`` (checked against its weights) and the layer to use."""
    from persona.model.vector_store import trait_vector

    hint = trait.layer_hint(lm.model_id) if hasattr(trait, "layer_hint") else None
    return trait_vector(vectors, lm, trait.name, layer=layer, hint=hint)


def run(args: argparse.Namespace) -> int:
    import traits
    from persona.data.chatdata import load_chat_jsonl
    from persona.data.screen import (
        ScreenOptions,
        auroc,
        screen,
        write_clean,
        write_csv,
        write_histogram,
    )
    from persona.model.loading import load_model

    if args.write_clean and args.threshold is None:
        raise PersonaError("--write-clean needs --threshold X (samples above X are dropped)")
    data = load_chat_jsonl(args.data, skip_invalid=args.skip_invalid)
    if data.skipped:
        print(f"skipped {len(data.skipped)} invalid line(s) of {args.data}", file=sys.stderr)
    trait = traits.load(args.trait)
    lm = load_model(args.model)
    vector, layer = load_trait_vector(lm, trait, args.vectors, args.layer)
    data = _fit_context(data, lm, args.max_length)
    options = ScreenOptions(
        fast=args.fast,
        max_new_tokens=args.max_new_tokens,
        max_batch=args.max_batch,
        use_cache=not args.no_cache,
    )
    with ExitStack() as stack:
        result = screen(lm, data, vector, layer, options, progress=_stages(stack))
    out = write_csv(result, args.out)
    plot = write_histogram(result, args.plot or Path(args.out).with_suffix(".png"), args.threshold)
    how = "full (vs base replies)" if result.method == "full" else "fast (vs last prompt token)"
    print(
        f"{trait.name} projection difference at layer {layer}, {how}: dataset value "
        f"{result.dataset_value:+.4f} over {len(result.frame) - result.n_missing} samples"
        + (f" ({result.n_missing} without reply tokens)" if result.n_missing else "")
    )
    if not args.fast:
        print(f"base replies: {result.base_generated} generated, {result.base_cached} from cache")
    _print_label_auroc(result.frame, auroc)
    print(f"wrote {out}, {out.with_suffix('.summary.json')} and {plot}")
    if args.top:
        _print_top(result.frame, args.top)
    if args.write_clean:
        kept, dropped = write_clean(data, result, args.threshold, args.write_clean)
        print(f"wrote {args.write_clean}: kept {kept}, dropped {dropped} above {args.threshold:g}")
    return 0


def _fit_context(data: Any, lm: Any, max_tokens: int) -> Any:
    """Cut replies to ``max_tokens`` (at most the model's context) and say how many were cut."""
    from persona.data.chatdata import fit_to_context

    context = getattr(lm.model.config, "max_position_embeddings", None) or max_tokens
    limit = min(max_tokens, int(context))
    data, cut = fit_to_context(data, lm.tokenizer, limit)
    if cut:
        lines = ", ".join(map(str, cut[:10])) + (" ..." if len(cut) > 10 else "")
        print(
            f"warning: {len(cut)} reply(ies) cut to fit {limit} tokens (lines {lines})",
            file=sys.stderr,
        )
    return data


def _stages(stack: ExitStack):
    """Progress callback factory: one bar per stage, each closed when the next one starts."""
    from persona.progress import progress_bar

    current: list[ExitStack] = []

    def start(name: str, total: int):
        if current:
            current.pop().close()
        inner = stack.enter_context(ExitStack())
        current.append(inner)
        return inner.enter_context(progress_bar(name, total))

    return start


def _print_label_auroc(frame: Any, auroc: Any) -> None:
    """With data from ``persona data make`` (levels known), report how well levels separate."""
    if "label" not in frame or frame["label"].nunique() < 2:
        return
    if {"normal", "contaminated"} <= set(frame["label"].dropna()):
        pos = frame.loc[frame["label"] == "contaminated", "projection_diff"].tolist()
        neg = frame.loc[frame["label"] == "normal", "projection_diff"].tolist()
        value = auroc(pos, neg)
        if not math.isnan(value):
            print(f"AUROC contaminated vs normal samples: {value:.3f}")


def _print_top(frame: Any, k: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("rank", "line", "proj. diff", "prompt", "response", title=f"top {k} samples")
    for row in frame.head(k).itertuples():
        table.add_row(
            str(row.rank),
            str(row.line),
            f"{row.projection_diff:+.3f}",
            _clip(row.prompt, 60),
            _clip(row.response, 90),
        )
    Console(width=160).print(table)


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"

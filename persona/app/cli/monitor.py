"""``persona monitor``: per-token projections of a conversation onto trait vectors.

    persona monitor docs/examples/drifting-chat.jsonl --trait evil --vectors vectors --out trace

Writes ``trace.csv`` (one row per token), ``turns.csv`` (per-turn means), ``trace.png`` and,
with ``--generate``, ``conversation.jsonl`` (the chat with the generated turns). See
docs/monitoring.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from persona import validate as check
from persona.app.cli.options import split_names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "monitor", help="trace a conversation's projection on trait vectors, token by token"
    )
    p.add_argument("conversation", type=check.input_file, help='chat file: {"messages": [...]}')
    p.add_argument(
        "--trait",
        required=True,
        action="append",
        help="trait to trace (repeat or comma-separate for several)",
    )
    p.add_argument("--model", default="smollm2-135m", help="alias, folder or hub id")
    p.add_argument("--vectors", default="vectors", help="vectors folder or a .safetensors file")
    p.add_argument("--out", type=check.output_dir, default="monitor", help="output folder")
    p.add_argument("--line", type=check.count, default=None, help="line of a multi-chat JSONL")
    p.add_argument(
        "--generate",
        type=check.non_negative_int,
        default=0,
        help='continue for N assistant turns (user turns from the chat\'s "script" list)',
    )
    p.add_argument("--max-new-tokens", type=check.count, default=96)
    p.add_argument("--temperature", type=check.temperature, default=0.0, help="0 = greedy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--truncate",
        action="store_true",
        help="drop the earliest tokens (turns, when generating) beyond the model's context",
    )
    p.set_defaults(func=run)


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def run(args: argparse.Namespace) -> int:
    import traits
    from persona.analysis import trace as tr
    from persona.analysis.report.plots import to_png
    from persona.atomic import write_bytes, write_text
    from persona.model.loading import load_model
    from persona.model.vector_store import trait_vector

    names = split_names(args.trait)
    conv = tr.read_conversation(args.conversation, args.line)
    tr.check_replied(conv, args.generate)
    definitions = [traits.load(n) for n in names]
    lm = load_model(args.model)
    probes = []
    for d in definitions:
        vector, layer = trait_vector(args.vectors, lm, d.name, hint=d.layer_hint(lm.model_id))
        probes.append(tr.Probe(d.name, layer, vector.at(layer)))
    messages = list(conv.messages)
    if args.generate:
        messages = tr.continue_chat(
            lm,
            conv,
            args.generate,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            seed=args.seed,
            truncate=args.truncate,
        )
    result = tr.trace(lm, messages, probes, truncate=args.truncate)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "trace.csv", _csv(result.tokens))
    write_text(out / "turns.csv", _csv(result.turns))
    layers = {p.name: p.layer for p in probes}
    title = f"{Path(args.conversation).name} on {lm.model_id}"
    write_bytes(out / "trace.png", to_png(tr.plot(result, title, layers)))
    if args.generate:
        write_text(out / "conversation.jsonl", json.dumps({"messages": messages}) + "\n")
    if result.truncated:
        print(f"truncated: the earliest {result.truncated} tokens were dropped (--truncate)")
    print(f"per-turn mean projection over content tokens ({lm.model_id}, layers {layers}):")
    for t in result.turns:
        means = "  ".join(f"{n} {t[f'mean_{n}']:+.3f}" for n in names)
        flag = " (generated)" if t["generated"] else ""
        print(f"  turn {t['turn']} {t['role']:<9} {t['tokens']:>4} tokens  {means}{flag}")
    print(f"wrote {out / 'trace.csv'}, {out / 'turns.csv'}, {out / 'trace.png'}")
    return 0

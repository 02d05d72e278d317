"""``persona finetune``: LoRA fine-tuning on chat JSONL, with optional preventative steering."""

from __future__ import annotations

import argparse
import sys

from persona import validate as check
from persona.errors import PersonaError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="LoRA fine-tune a model on chat JSONL (loss on assistant tokens)",
        description="Train a LoRA adapter on {'messages': [...]} JSONL. The adapter folder gets "
        "persona_run.json (base model, data hash, options, steering). --steer adds a persona "
        "vector during training forward passes only (preventative steering); --ablate projects "
        "it out (CAFT). Both are removed before saving.",
    )
    p.add_argument("data", help="training data: chat JSONL, one {'messages': [...]} per line")
    p.add_argument("--model", default="smollm2-135m", help="base model: alias, folder or hub id")
    p.add_argument("--out", type=check.output_dir, required=True, help="adapter folder to write")
    p.add_argument("--rank", type=check.count, default=32, help="LoRA rank (default 32)")
    p.add_argument("--alpha", type=check.positive, default=64.0, help="LoRA alpha (default 64)")
    p.add_argument("--no-rslora", action="store_true", help="scale by alpha/r, not alpha/sqrt(r)")
    p.add_argument(
        "--dropout",
        type=check.number(0.0, 1.0, hi_open=True),
        default=0.0,
        help="LoRA dropout (default 0)",
    )
    p.add_argument(
        "--lr", type=check.positive, default=1e-4, help="peak learning rate (default 1e-4)"
    )
    p.add_argument("--epochs", type=check.count, default=1)
    p.add_argument("--batch-size", type=check.count, default=2, help="samples per micro-batch")
    p.add_argument(
        "--grad-accum", type=check.count, default=8, help="micro-batches per optimizer step"
    )
    p.add_argument(
        "--max-length", type=check.count, default=1024, help="tokens per sample (cut beyond)"
    )
    p.add_argument(
        "--warmup-steps",
        type=check.non_negative_int,
        default=None,
        help="default: 10%% of the steps",
    )
    p.add_argument("--weight-decay", type=check.non_negative, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--target-modules",
        default=None,
        help="comma-separated module names (default: q/k/v/o/gate/up/down_proj when present)",
    )
    p.add_argument(
        "--steer",
        type=_steer_arg,
        action="append",
        default=[],
        metavar="TRAIT:COEF@LAYER",
        help="preventative steering: add COEF * vector at LAYER during training (repeatable)",
    )
    p.add_argument(
        "--ablate",
        type=_ablate_arg,
        action="append",
        default=[],
        metavar="TRAIT@LAYER",
        help="CAFT: project the trait direction out at LAYER during training (repeatable)",
    )
    p.add_argument("--vectors", default="vectors", help="vectors folder for --steer/--ablate")
    p.add_argument("--skip-invalid", action="store_true", help="skip (and count) invalid lines")
    p.add_argument("--overwrite", action="store_true", help="replace a different run in --out")
    p.add_argument("--dtype", default=None, help="float32 / bfloat16 (default: auto)")
    p.add_argument("--device", type=check.device, default=None, help="cpu / cuda (default: auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from persona.data.chatdata import load_chat_jsonl
    from persona.data.finetune import FinetuneOptions, finetune

    edits = [*args.steer, *args.ablate]
    targets = None
    if args.target_modules:
        targets = tuple(t.strip() for t in args.target_modules.split(",") if t.strip())
        if not targets:
            raise PersonaError("--target-modules is empty")
    options = FinetuneOptions(
        rank=args.rank,
        alpha=args.alpha,
        rslora=not args.no_rslora,
        dropout=args.dropout,
        learning_rate=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        max_length=args.max_length,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        seed=args.seed,
        target_modules=targets,
        dtype=args.dtype,
    )
    options.check()
    data = load_chat_jsonl(args.data, skip_invalid=args.skip_invalid)
    if data.skipped:
        print(f"skipped {len(data.skipped)} invalid line(s) of {args.data}", file=sys.stderr)
    result = finetune(
        data,
        args.model,
        args.out,
        options,
        edits,
        vectors=args.vectors,
        layer_hint=_layer_hint(args.model),
        overwrite=args.overwrite,
        device=args.device,
    )
    rec = result.record
    if result.reused:
        print(f"{args.out} already holds this run ({rec['run_id']}); nothing to do")
        return 0
    edits_text = ", ".join(
        [f"steer {e['trait']}:{e['coef']:+g}@{e['layer']}" for e in rec["steer"]]
        + [f"ablate {e['trait']}@{e['layer']}" for e in rec["ablate"]]
    )
    print(
        f"wrote {args.out}: {rec['data']['trained_samples']} samples, {rec['steps']} steps, "
        f"final loss {rec['final_loss']:.4f}"
        + (f", during training: {edits_text}" if edits_text else "")
    )
    return 0


def _steer_arg(text: str):
    """``--steer TRAIT:COEF@LAYER`` parsed, with a finite, bounded coefficient."""
    from persona.data.training_edits import parse_steer

    spec = parse_steer(text)
    try:
        check.coefficient(spec.coef)
    except check.InputError as e:
        raise check.InputError(f"--steer {text!r}: coefficient {e}") from None
    return spec


def _ablate_arg(text: str):
    """``--ablate TRAIT@LAYER`` parsed."""
    from persona.data.training_edits import parse_ablate

    return parse_ablate(text)


def _layer_hint(model: str):
    """Trait layer hints for the model (None when the trait is unknown or has none)."""
    from persona.model.loading import resolve

    model_id = resolve(model).model_id

    def hint(trait_name: str) -> int | None:
        import traits

        try:
            return traits.load(trait_name).layer_hint(model_id)
        except PersonaError:
            return None

    return hint

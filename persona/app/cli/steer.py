"""``persona steer``: generate a reply with a persona vector added at one layer."""

from __future__ import annotations

import argparse
from pathlib import Path

from persona import validate as check
from persona.errors import PersonaError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("steer", help="reply to a prompt while steering with a persona vector")
    p.add_argument("prompt", help="the user message")
    p.add_argument("--model", default="smollm2-135m", help="alias, folder or hub id")
    p.add_argument(
        "--adapter",
        type=check.adapter_dir,
        default=None,
        help="PEFT adapter folder on top of the model",
    )
    p.add_argument("--trait", required=True, help="trait name (its vector is looked up)")
    p.add_argument("--vectors", default="vectors", help="vectors folder or a .safetensors file")
    p.add_argument(
        "--layer", type=check.layer, default=None, help="layer 1..N (default: calibrated)"
    )
    p.add_argument(
        "--coef", type=check.coefficient, required=True, help="steering coefficient (0 = none)"
    )
    p.add_argument(
        "--positions",
        default="response",
        help="tokens to steer (docs/protocol.md; default: response)",
    )
    p.add_argument("--system", default=None, help="optional system prompt")
    p.add_argument(
        "--temperature", type=check.temperature, default=0.0, help="0 = greedy (default)"
    )
    p.add_argument("--max-new-tokens", type=check.count, default=96)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare", action="store_true", help="also print the unsteered reply")
    p.set_defaults(func=run)


def have_vectors(vectors: str, trait: str) -> None:
    """Fail in one line when ``vectors`` holds no vector of ``trait`` for any model."""
    path = Path(vectors).expanduser()
    if path.is_file():
        return
    if not path.is_dir() or not any(path.glob(f"*/{trait}.safetensors")):
        raise PersonaError(
            f"no {trait} vector in {vectors}: create it with "
            f"`persona extract --trait {trait} --vectors {vectors}` or pass --vectors"
        )


def run(args: argparse.Namespace) -> int:
    import traits
    from persona.model.engine import POSITIONS, Engine, Request, Sampling, Steer
    from persona.model.loading import load_model
    from persona.model.vector_store import trait_vector

    if not args.prompt.strip():
        raise PersonaError("the prompt is empty: pass the user message to reply to")
    if args.positions not in POSITIONS:
        raise PersonaError(f"unknown --positions {args.positions!r}: use {', '.join(POSITIONS)}")
    trait = traits.load(args.trait)
    have_vectors(args.vectors, trait.name)  # before the model loads (seconds to minutes)
    lm = load_model(args.model, adapter=args.adapter)
    hint = trait.layer_hint(lm.model_id)
    vector, layer = trait_vector(args.vectors, lm, trait.name, layer=args.layer, hint=hint)
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": args.prompt}
    ]
    steer = Steer(vector.at(layer), layer, args.coef, args.positions)
    sampling = Sampling(max_new_tokens=args.max_new_tokens, temperature=args.temperature)
    engine = Engine(lm)
    requests = [Request(messages, steer=(steer,), seed=args.seed)]
    if args.compare:
        requests.append(Request(messages, seed=args.seed))
    results = engine.generate(requests, sampling)
    if args.compare:
        print(f"--- unsteered ---\n{results[1].text}\n")
        condition = f"{trait.name}, coef {args.coef:+g} at layer {layer}, {args.positions}"
        print(f"--- steered ({condition}) ---")
    print(results[0].text)
    return 0

"""``persona serve``: an OpenAI-compatible server for steered, monitored models (docs/serve.md)."""

from __future__ import annotations

import argparse
import os
import sys

from persona.errors import PersonaError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model over the OpenAI chat API with steering, projections and a monitor page",
    )
    p.add_argument("--model", default="smollm2-135m", help="alias, folder or hub id")
    p.add_argument("--vectors", default=None, help="persona vectors folder (traits by name)")
    p.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a PEFT adapter of the model, served as model id NAME (repeatable)",
    )
    p.add_argument("--name", default=None, help="model id of the base (default: from --model)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--api-key",
        default=os.environ.get("PERSONA_SERVE_API_KEY"),
        help="require 'Authorization: Bearer KEY' (default: $PERSONA_SERVE_API_KEY, else none)",
    )
    p.add_argument("--max-batch", type=int, default=8, help="most calls per engine batch")
    p.add_argument("--max-tokens", type=int, default=1024, help="largest max_tokens accepted")
    p.add_argument("--max-n", type=int, default=8, help="largest n (choices) accepted")
    p.add_argument("--max-body-kb", type=int, default=1024, help="largest request body (KiB)")
    p.add_argument("--dtype", default=None, help="float32, bfloat16 or float16")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.set_defaults(func=run)


def parse_adapters(values: list[str]) -> dict[str, str]:
    """``NAME=PATH`` arguments as a dict (a repeated name is an error)."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise PersonaError(f"--adapter {value!r}: use NAME=PATH")
        if name in out:
            raise PersonaError(f"--adapter {name} is given twice")
        out[name] = path
    return out


def run(args: argparse.Namespace) -> int:
    import anyio
    import uvicorn

    from persona.app.serve import Backend, Limits, create_app

    if not 0 <= args.port <= 65535:
        raise PersonaError(f"--port {args.port} is not a port number (0..65535)")
    try:
        limits = Limits(
            max_body_bytes=args.max_body_kb * 1024,
            max_tokens=args.max_tokens,
            default_max_tokens=min(256, args.max_tokens),
            max_n=args.max_n,
        )
    except ValueError as e:
        raise PersonaError(f"persona serve: {e}") from None
    if args.max_batch < 1:
        raise PersonaError("--max-batch must be at least 1")
    backend = Backend(
        args.model,
        vectors=args.vectors,
        adapters=parse_adapters(args.adapter),
        name=args.name,
        max_batch=args.max_batch,
        dtype=args.dtype,
        device=args.device,
    )
    print(f"loading {args.model} ...", file=sys.stderr)
    anyio.run(backend.load)
    if args.host not in LOOPBACK and not args.api_key:
        print(
            f"warning: serving on {args.host} without --api-key: anyone who can reach this "
            "address can use the model",
            file=sys.stderr,
        )
    host = f"[{args.host}]" if ":" in args.host else args.host
    key = f"?key={args.api_key}" if args.api_key else ""
    print(f"models: {', '.join(backend.model_ids)}", file=sys.stderr)
    print(f"OpenAI base URL: http://{host}:{args.port}/v1", file=sys.stderr)
    print(f"monitor: http://{host}:{args.port}/monitor{key}", file=sys.stderr)
    app = create_app(backend, limits, api_key=args.api_key)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0

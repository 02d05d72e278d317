"""The ``persona`` command line. Each verb lives in its own module with a ``register`` function.

User errors (:class:`persona.errors.PersonaError`) print one line and exit with their code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from persona.errors import PersonaError

# verb -> module under persona.app.cli that defines register(subparsers)
VERBS: dict[str, str] = {
    "extract": "extract",
    "steer": "steer",
    "traits": "traits_cmd",
    "eval": "eval_cmd",
    "finetune": "finetune",
    "data": "data",
    "screen": "screen",
    "report": "report",
    "gate": "gate",
    "demo": "demo",
    "serve": "serve",
}


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with one sub-command per available verb."""
    parser = argparse.ArgumentParser(
        prog="persona",
        description="Persona-vector evaluation harness: extract, steer, evaluate, screen, "
        "fine-tune, report and gate character traits of language models.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for module_name in VERBS.values():
        try:
            module = importlib.import_module(f"persona.app.cli.{module_name}")
        except ModuleNotFoundError as e:
            if e.name == f"persona.app.cli.{module_name}":
                continue  # verb not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``persona`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        result = args.func(args)
    except PersonaError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())

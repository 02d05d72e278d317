"""The ``persona`` command line. Each verb lives in its own module with a ``register`` function.

User errors print one line and exit with code 2 (or their own code), never a traceback: argument
errors (checked while parsing, before any model loads), :class:`persona.errors.PersonaError`, and
file-system errors such as a read-only output. See docs/bad-input.md.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

from persona.app.cli.options import polish
from persona.errors import PersonaError
from persona.validate import InputError, env_dirs

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
    "judge": "judge",
    "monitor": "monitor",
    "serve": "serve",
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (raised, so :func:`main` returns 2)."""

    def error(self, message: str) -> NoReturn:
        raise InputError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with one sub-command per available verb."""
    parser = _Parser(
        prog="persona",
        description="Persona-vector evaluation harness: extract, steer, evaluate, screen, "
        "fine-tune, report and gate character traits of language models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for module_name in VERBS.values():
        try:
            module = importlib.import_module(f"persona.app.cli.{module_name}")
        except ModuleNotFoundError as e:
            if e.name == f"persona.app.cli.{module_name}":
                continue  # verb not built yet
            raise
        module.register(sub)
    polish(parser)
    return parser


def _version() -> str:
    try:
        return version("persona-evals")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``persona`` console script."""
    # transformers' "Loading weights" bar is noise next to the verbs' own progress lines
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        if not getattr(args, "creates_traits_dir", False):  # else it is the output folder
            env_dirs("PERSONA_TRAITS_DIR")
        result = args.func(args)
    except PersonaError as e:
        print(f"error: {_one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except OSError as e:  # a file the user named cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as e:
        print(f"error: an input file is not UTF-8 text (byte {e.start})", file=sys.stderr)
        return 2
    return int(result or 0)


def _one_line(message: str) -> str:
    """A multi-line message (a list of problems) joined into one line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return "; ".join(lines).replace(":;", ":")


if __name__ == "__main__":
    sys.exit(main())

"""``persona traits``: list, show, validate, import, export and generate trait definitions."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import textwrap
from pathlib import Path

import traits
from persona import validate as check
from persona.errors import PersonaError
from traits.loader import ENV_VAR
from traits.model import Trait, TraitError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``traits`` verb and its sub-commands."""
    parser = subparsers.add_parser(
        "traits",
        help="list, show, validate, import, export and generate trait definitions",
        description="Manage trait definitions (traits/<name>.yaml; see docs/traits.md).",
    )
    parser.set_defaults(func=lambda _args: parser.print_help() or 0)
    sub = parser.add_subparsers(dest="traits_command", metavar="COMMAND")

    p = sub.add_parser("list", help="list available traits with their descriptions")
    p.add_argument("--long", action="store_true", help="also show hash, version and file")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="print one trait definition")
    p.add_argument("name", metavar="NAME", help="trait name or path to a .yaml file")
    p.add_argument(
        "--format", choices=("text", "yaml", "json"), default="text", help="output format"
    )
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("validate", help="check trait files; exit 1 if any is invalid")
    p.add_argument("files", nargs="*", metavar="FILE", help="files (default: all available)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("import", help="convert the reference JSON layout to a trait YAML")
    p.add_argument("file", metavar="FILE", help="reference extract file (or one with 40 questions)")
    p.add_argument("--eval-file", metavar="FILE", help="reference eval file (20 questions)")
    p.add_argument("--name", help="trait name (default: from the file)")
    p.add_argument("--description", help="trait description (default: from the file)")
    _output_options(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="write the reference JSON pair for a trait")
    p.add_argument("name", metavar="NAME", help="trait name or path to a .yaml file")
    p.add_argument(
        "--out-dir",
        type=check.output_dir,
        default=".",
        help="writes OUT_DIR/trait_data_extract/NAME.json and OUT_DIR/trait_data_eval/NAME.json",
    )
    p.add_argument("--plain", action="store_true", help="only the three reference keys")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("new", help="generate a trait from a description with an LLM")
    p.add_argument("name", metavar="NAME", help="trait name (lowercase, e.g. 'secretive')")
    p.add_argument("--description", required=True, help="what the trait means, in a few sentences")
    p.add_argument(
        "--generator",
        default=None,
        help="Inspect model string (default: openai/gpt-4.1), e.g. anthropic/claude-sonnet-4-0",
    )
    p.add_argument("--max-attempts", type=check.count, default=3, help="attempts before giving up")
    p.add_argument("--max-tokens", type=check.count, default=8192, help="token limit per reply")
    p.add_argument("--guidance", help="extra guidance for the questions")
    p.add_argument(
        "--timeout",
        type=check.integer(1),
        default=None,
        metavar="SECONDS",
        help="give up on the generator after this long, retries included (default 120)",
    )
    _output_options(p)
    p.set_defaults(func=cmd_new)


def _output_options(p: argparse.ArgumentParser) -> None:
    p.set_defaults(creates_traits_dir=True)  # $PERSONA_TRAITS_DIR may name a folder to create
    p.add_argument(
        "--out-dir",
        type=check.output_dir,
        default=None,
        help="folder for NAME.yaml (default: the first $PERSONA_TRAITS_DIR, else ./traits)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing NAME.yaml")


def _output_dir(args: argparse.Namespace) -> Path:
    """Where a new trait goes: --out-dir, the first $PERSONA_TRAITS_DIR, else ./traits.

    Never the installed package: a user's traits belong to the user's project.
    """
    if args.out_dir:
        return Path(args.out_dir)
    folders = [p for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    return Path(check.output_dir(folders[0] if folders else "traits"))


def _one_line(error: BaseException) -> str:
    """An exception's text on one line, without Rich markup such as ``[bold]``."""
    text = re.sub(r"\[/?(?:bold|blue|red|yellow|green|italic|dim)(?: [a-z]+)*\]", "", str(error))
    return " ".join(text.replace("ERROR:", "").split())


def _width() -> int:
    return max(60, min(120, shutil.get_terminal_size((100, 24)).columns))


def _last_attempt(error: BaseException) -> BaseException:
    """The error of the last attempt when retries gave up (tenacity's RetryError), else itself."""
    last = getattr(error, "last_attempt", None)
    cause = last.exception() if last is not None and hasattr(last, "exception") else None
    return cause or error


def cmd_list(args: argparse.Namespace) -> int:
    """Print one line per available trait: name and the start of its description."""
    files = traits.trait_files()
    if not files:
        print("no traits found")
        return 0
    pad = max(len(n) for n in files) + 2
    width = _width()
    for name, path in sorted(files.items()):
        try:
            trait = traits.load_file(path)
        except TraitError as e:
            print(
                f"{name:<{pad}}(invalid: {len(e.problems)} problem(s); see persona traits validate)"
            )
            continue
        if args.long:
            print(f"{name:<{pad}}v{trait.version}  {trait.hash}  {path}")
            for line in textwrap.wrap(trait.description, width - pad):
                print(" " * pad + line)
        else:
            short = textwrap.shorten(trait.description, width - pad, placeholder="...")
            print(f"{name:<{pad}}{short}")
    return 0


def _text(trait: Trait) -> str:
    lines = [
        f"name:        {trait.name}",
        f"version:     {trait.version}",
        f"hash:        {trait.hash}",
        f"file:        {trait.path or '-'}",
        f"assistants:  pos={trait.assistant_names.pos!r}  neg={trait.assistant_names.neg!r}",
        "layers:      "
        + (", ".join(f"{k}={v}" for k, v in trait.layers.items()) if trait.layers else "-"),
        "",
        "description:",
        *textwrap.wrap(
            trait.description, _width() - 2, initial_indent="  ", subsequent_indent="  "
        ),
        "",
        "system prompts:",
    ]
    for i in range(len(trait.instructions)):
        for polarity in ("pos", "neg"):
            lines.append(f"  [{i}] {polarity}: {trait.system_prompt(polarity, i)}")
    for title, questions in (
        ("extract questions", trait.extract_questions),
        ("eval questions", trait.eval_questions),
    ):
        lines += ["", f"{title}:", *(f"  {i:2d}. {q}" for i, q in enumerate(questions))]
    lines += ["", "rubric:", *("  " + line for line in trait.rubric.splitlines())]
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> int:
    """Print a trait in text, YAML or JSON form."""
    trait = traits.load(args.name)
    if args.format == "yaml":
        sys.stdout.write(traits.to_yaml(trait))
    elif args.format == "json":
        print(json.dumps({**trait.to_dict(), "hash": trait.hash}, indent=2, ensure_ascii=False))
    else:
        print(_text(trait))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate files (or every discoverable trait file); print every problem; 1 if any."""
    if args.files:
        paths = [Path(f) for f in args.files]
    else:
        paths = [
            path
            for folder in traits.trait_dirs()
            if folder.is_dir()
            for path in sorted(folder.glob("*.yaml"))
        ]
        if not paths:
            print("no trait files found")
            return 0
    bad = 0
    for path in paths:
        problems = traits.problems_in(path)
        if problems:
            bad += 1
            print(f"FAIL {path} ({len(problems)} problem(s))")
            for problem in problems:
                print(f"  {problem}")
        else:
            trait = traits.load_file(path)
            print(f"ok   {path} ({trait.name}, hash {trait.hash})")
            if not trait.judge_personas:
                print("  warning: no judge_personas (the likelihood judge needs them)")
            if (unsupported := trait.offline_measure_warning()) is not None:
                print(f"  warning: {unsupported}")
            if not trait.data_personas:
                print(
                    "  warning: no data_personas (persona data make --level contaminated needs"
                    " them)"
                )
    if bad:
        print(f"{bad} of {len(paths)} file(s) invalid", file=sys.stderr)
        return 1
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Convert reference JSON to ``NAME.yaml``."""
    from traits.interop import import_reference, sibling_eval_file

    if args.eval_file is None and (sibling := sibling_eval_file(Path(args.file))) is not None:
        print(f"using evaluation questions from {sibling}", file=sys.stderr)
    trait = import_reference(
        args.file, args.eval_file, name=args.name, description=args.description
    )
    written = traits.write_trait(trait, _output_dir(args), force=args.force)
    print(f"wrote {written.path} ({written.name}, hash {written.hash})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write the reference JSON pair for a trait."""
    from traits.interop import export_reference

    trait = traits.load(args.name)
    extract, evaluate = export_reference(trait, args.out_dir, plain=args.plain, force=args.force)
    print(f"wrote {extract} and {evaluate} ({trait.name}, hash {trait.hash})")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    """Generate ``NAME.yaml`` from a description with an LLM, retrying on validation problems."""
    from traits.generate import DEFAULT_GENERATOR, DEFAULT_TIMEOUT, check_request, generate_trait

    check_request(args.name, args.description, args.max_attempts)
    out_dir = _output_dir(args)
    target = Path(out_dir) / f"{args.name}.yaml"
    if target.exists() and not args.force:
        raise TraitError(f"{target}: already exists (pass --force to overwrite)")
    generator = args.generator or DEFAULT_GENERATOR
    timeout = args.timeout or DEFAULT_TIMEOUT

    try:
        from inspect_ai.model import get_model

        model = get_model(generator)
    except PersonaError:
        raise
    except Exception as e:  # noqa: BLE001 - unknown provider, missing package or API key
        raise PersonaError(f"cannot use generator model '{generator}': {_one_line(e)}") from None

    def log(line: str) -> None:
        print(line, file=sys.stderr)

    try:
        result = asyncio.run(
            generate_trait(
                args.name,
                args.description,
                generator=model,
                max_attempts=args.max_attempts,
                max_tokens=args.max_tokens,
                guidance=args.guidance,
                log=log,
                timeout=timeout,
            )
        )
    except PersonaError:
        raise
    except Exception as e:  # noqa: BLE001 - network or provider failure: one line, no traceback
        cause = _last_attempt(e)
        raise PersonaError(
            f"generator model '{generator}' gave no reply (waited up to {timeout} s for its API; "
            f"check the network and the API key): {type(cause).__name__}: {_one_line(cause)}"
        ) from None
    written = traits.write_trait(result.trait, out_dir, force=args.force)
    print(
        f"wrote {written.path} ({written.name}, hash {written.hash}) after "
        f"{result.attempts} attempt(s); review it, then run persona traits validate"
    )
    return 0

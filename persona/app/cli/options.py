"""What every ``persona`` verb shares in its help and options: defaults shown, no reST markup,
a description for every verb, and old flag names kept as deprecated aliases."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

_MARKUP = re.compile(r"``?([^`]+)``?")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks, shows each option's default (unless its help
    already says it, or there is none) and prints ``code`` as plain 'code'."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        shown = default not in (None, False, argparse.SUPPRESS) and not isinstance(default, list)
        if shown and action.option_strings and "default" not in text.lower():
            text = f"{text} (default: %(default)s)" if text else "default: %(default)s"
        return text

    def format_help(self) -> str:
        return _MARKUP.sub(r"'\1'", super().format_help())


def polish(parser: argparse.ArgumentParser, summary: str | None = None) -> None:
    """Give ``parser`` and its sub-verbs the shared formatter and a description (their one-line
    help when they have none)."""
    parser.formatter_class = HelpFormatter
    if not parser.description and summary:
        parser.description = summary[:1].upper() + summary[1:] + "."
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                polish(child, helps.get(name))


class DeprecatedAlias(argparse.Action):
    """An old flag name kept for users' scripts: warns in one line, then acts as ``new``."""

    def __init__(self, *args: Any, new: str, **kwargs: Any) -> None:
        self.new = new
        kwargs.setdefault("help", argparse.SUPPRESS)
        super().__init__(*args, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(f"warning: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def as_flags(message: str, renames: dict[str, str] | None = None) -> str:
    """A task's message about ``-T name`` rewritten to name the CLI flag (``--name``, or the
    flag in ``renames`` where the verb calls the parameter otherwise)."""
    renames = renames or {}

    def flag(m: re.Match[str]) -> str:
        return renames.get(m.group(1), "--" + m.group(1).replace("_", "-"))

    return re.sub(r"-T (\w+)", flag, message)


def split_names(values: list[str] | None) -> list[str]:
    """Names given space- or comma-separated (``--traits a b`` = ``--traits a,b``), in order,
    without repeats."""
    return list(dict.fromkeys(n.strip() for v in values or [] for n in v.split(",") if n.strip()))


def deprecated(parser: argparse.ArgumentParser, old: str, new: str, **kwargs: Any) -> None:
    """Add ``old`` as a hidden, deprecated alias of the option ``new`` (same ``dest``)."""
    dest = new.lstrip("-").replace("-", "_")
    parser.add_argument(old, dest=dest, action=DeprecatedAlias, new=new, **kwargs)

"""Input checks that run before any work: numbers, paths, devices, adapters, folder settings.

Every check raises :class:`InputError`, a :class:`~persona.errors.PersonaError` that is also an
``argparse.ArgumentTypeError``, so the same callables serve as ``type=`` of CLI arguments (the error
is reported while the arguments are parsed, before a model loads) and as plain checks in code. Path
checks return the path as text, the form argparse defaults and Inspect task arguments use.
See ``docs/bad-input.md`` for the rules they enforce.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from persona.errors import PersonaError

MAX_ABS_COEF = 1000.0  # a steering coefficient beyond this only destroys the residual stream
MAX_TEMPERATURE = 100.0


class InputError(PersonaError, argparse.ArgumentTypeError):
    """A bad value or path given by the user (exit code 2)."""


# ---------------------------------------------------------------------------------------------
# Numbers


def _parse_float(text: str | float) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise InputError(f"not a finite number: {text!r}")
    return value


def _parse_int(text: str | int) -> int:
    if isinstance(text, bool):
        raise InputError(f"not a whole number: {text!r}")
    try:
        return int(text)
    except (TypeError, ValueError):
        raise InputError(f"not a whole number: {text!r}") from None


def _range_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return " and ".join(parts)


def _check_range(
    value: float, text: object, lo: float | None, hi: float | None, lo_open: bool, hi_open: bool
) -> None:
    below = lo is not None and (value <= lo if lo_open else value < lo)
    above = hi is not None and (value >= hi if hi_open else value > hi)
    if below or above:
        raise InputError(
            f"{text!r} is out of range: must be {_range_text(lo, hi, lo_open, hi_open)}"
        )


def number(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> Callable[[str | float], float]:
    """A checker turning text into a finite float within [lo, hi] (open ends when asked)."""

    def check(text: str | float) -> float:
        value = _parse_float(text)
        _check_range(value, text, lo, hi, lo_open, hi_open)
        return value

    check.__name__ = "number"
    return check


def integer(lo: int | None = None, hi: int | None = None) -> Callable[[str | int], int]:
    """A checker turning text into an int within [lo, hi]."""

    def check(text: str | int) -> int:
        value = _parse_int(text)
        _check_range(value, text, lo, hi, False, False)
        return value

    check.__name__ = "integer"
    return check


finite = number()
temperature = number(0.0, MAX_TEMPERATURE)
top_p = number(0.0, 1.0, lo_open=True)
coefficient = number(-MAX_ABS_COEF, MAX_ABS_COEF)
probability = number(0.0, 1.0, lo_open=True, hi_open=True)  # confidence levels
positive = number(0.0, lo_open=True)
non_negative = number(0.0)
count = integer(1)  # sample counts, token limits, batch sizes, ...
non_negative_int = integer(0)
layer = integer(1)  # the upper bound is checked once the model is known


# ---------------------------------------------------------------------------------------------
# Paths


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _check_creatable(path: Path, what: str) -> None:
    """The folder that would hold ``path`` exists or can be created, and is writable."""
    anchor = _nearest_existing(path.parent)
    if not anchor.is_dir():
        raise InputError(f"cannot write {what} {path}: {anchor} is a file, not a folder")
    _probe(anchor, f"cannot write {what} {path}")


def _probe(folder: Path, context: str) -> None:
    """Create and drop a temporary file in ``folder`` (permission bits alone mislead root)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise InputError(f"{context}: {folder} is not writable ({e.strerror or e})") from None


def output_file(text: str | os.PathLike[str]) -> str:
    """A file path the run can write: not a folder, in a folder that is (or can be) writable."""
    path = Path(text).expanduser()
    if not str(text).strip():
        raise InputError("empty output path")
    if path.is_dir():
        raise InputError(f"{path} is a folder; expected a file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"cannot write {path}: the file is read-only")
    _check_creatable(path, "file")
    return str(path)


def output_dir(text: str | os.PathLike[str]) -> str:
    """A folder the run can write into: not a file, writable or creatable."""
    path = Path(text).expanduser()
    if not str(text).strip():
        raise InputError("empty output folder")
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{path} is a file; expected a folder")
        _probe(path, f"cannot write into {path}")
        return str(path)
    _check_creatable(path, "folder")
    return str(path)


def input_file(text: str | os.PathLike[str]) -> str:
    """An existing, readable, non-empty regular file."""
    path = Path(text).expanduser()
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path} is a folder; expected a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {path}: permission denied")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty")
    return str(path)


def text_file(text: str | os.PathLike[str]) -> str:
    """An input file that is UTF-8 text (configuration files)."""
    path = Path(input_file(text))
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text (byte {e.start})") from None
    return str(path)


def adapter_dir(text: str | os.PathLike[str]) -> str:
    """A PEFT adapter folder whose weights are safetensors (pickled weights are never loaded)."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise InputError(f"no adapter folder at {path}")
    if not (path / "adapter_config.json").is_file():
        raise InputError(f"{path} is not a PEFT adapter folder (no adapter_config.json)")
    if not (path / "adapter_model.safetensors").is_file():
        pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        if pickled:
            raise InputError(
                f"{path} holds pickled weights ({', '.join(sorted(pickled))}), which are never "
                "loaded: convert them to adapter_model.safetensors"
            )
        raise InputError(f"{path} has no adapter_model.safetensors")
    return str(path)


def env_dirs(var: str) -> list[Path]:
    """The folders in environment variable ``var`` (``os.pathsep``-separated); each must exist."""
    folders = [Path(p).expanduser() for p in os.environ.get(var, "").split(os.pathsep) if p.strip()]
    for folder in folders:
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise InputError(f"${var} names {folder}, which {what}")
    return folders


# ---------------------------------------------------------------------------------------------
# Devices

DEVICES = ("cpu", "cuda", "cuda:N", "mps", "auto")


def device(text: str) -> str:
    """A torch device that exists on this machine."""
    import torch

    name = text.strip().lower()
    if name in ("cpu", "auto"):  # auto: device_map="auto" (accelerate; docs/scale.md)
        return name
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise InputError(f"device {text!r} asked for, but this machine has no CUDA GPU")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise InputError(f"device {text!r}: only {torch.cuda.device_count()} GPU(s) here")
        return name
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise InputError("device 'mps' asked for, but Apple's MPS is not available here")
        return name
    raise InputError(f"unknown device {text!r}: use one of {', '.join(DEVICES)}")

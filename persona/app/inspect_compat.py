"""A narrow fix for Inspect: ``inspect eval /abs/path/task.py`` from any folder.

What: Inspect 0.3.285 resolves a task file given without ``@task`` with
``root_dir.glob(pattern)``, and :meth:`pathlib.Path.glob` rejects an absolute pattern on the
Python we run (3.11: ``NotImplementedError: Non-relative patterns are unsupported``), so a plain
absolute task path crashed. :func:`patch_task_files` wraps Inspect's ``task_files`` so that an
absolute pattern is globbed relative to its own anchor (``/`` or ``C:\\``); every other call goes to
the original unchanged, so only the case that used to crash behaves differently.

Remove this module when Inspect handles absolute paths itself. It is applied once, when Inspect
loads the package's entry point (:mod:`persona.app.registry`), and does nothing if Inspect's
internals have moved (the patched names are missing).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path

_MODULES = ("inspect_ai._eval.list", "inspect_ai._eval.loader")  # where ``task_files`` is looked up
_MARK = "__persona_absolute_globs__"

TaskFiles = Callable[..., list[Path]]


def absolute_globs(original: TaskFiles) -> TaskFiles:
    """``original`` with each absolute glob resolved from its anchor instead of ``root_dir``."""

    @functools.wraps(original)
    def task_files(globs: list[str] | None = None, root_dir: Path | None = None) -> list[Path]:
        globs = list(globs or [])
        if not any(Path(g).is_absolute() for g in globs):
            return original(globs, root_dir)
        files: list[Path] = []
        for glob in globs:
            path = Path(glob)
            if path.is_absolute():
                files += original([str(path.relative_to(path.anchor))], Path(path.anchor))
            else:
                files += original([glob], root_dir)
        return files

    setattr(task_files, _MARK, True)
    return task_files


def patch_task_files() -> bool:
    """Wrap ``task_files`` where Inspect looks it up (once); False if there was nothing to patch."""
    patched = False
    for name in _MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        original = getattr(module, "task_files", None)
        if not callable(original):
            continue
        if not getattr(original, _MARK, False):
            module.task_files = absolute_globs(original)  # type: ignore[attr-defined]
        patched = True
    return patched

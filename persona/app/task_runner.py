"""Running the installed Inspect task files from Python (used by the CLI, the demo and gates)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from persona.errors import PersonaError


def task_file(name: str) -> str:
    """Inspect task spec ``<file>@<task>`` of an installed task file (``evals/<name>.py``).

    The file is relative to the working directory when below it, else absolute; the ``@<task>``
    suffix makes Inspect load that one task from the file directly, without globbing the path
    (which Inspect 0.3.285 could not do for absolute paths before
    :mod:`persona.app.inspect_compat`).
    """
    spec = importlib.util.find_spec(f"evals.{name}")
    if spec is None or spec.origin is None:
        raise PersonaError(f"the task evals/{name}.py is not installed: reinstall persona-evals")
    origin = Path(spec.origin).resolve()
    try:
        path = os.path.relpath(origin) if origin.is_relative_to(Path.cwd()) else str(origin)
    except ValueError:
        path = str(origin)
    return f"{path}@{name}"


def run_task(
    name: str,
    model: str,
    *,
    task_args: dict[str, Any],
    log_dir: str | Path,
    model_args: dict[str, Any] | None = None,
    model_roles: dict[str, str] | None = None,
    display: str = "none",
) -> str:
    """Run one task on one model; return the log path, or raise if the eval did not finish.

    Relative paths in ``task_args`` resolve against the current working directory: the task
    files read it from ``$PWD`` while Inspect has moved to ``evals/`` (``evals._common``).
    """
    from inspect_ai import eval as inspect_eval

    from evals._common import launched_here

    with launched_here():
        logs = inspect_eval(
            tasks=task_file(name),
            model=model,
            model_args=model_args or {},
            model_roles=model_roles,
            task_args=task_args,
            log_dir=str(log_dir),
            display=display,  # type: ignore[arg-type]
        )
    log = logs[0]
    if log.status != "success":
        why = log.error.message.splitlines()[0] if log.error else log.status
        raise PersonaError(f"the {name} eval on {model} did not finish: {why}")
    return str(log.location)

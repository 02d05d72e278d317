"""Run the trait tasks for a candidate and its base (used by the pytest plugin's fixtures).

A candidate that is a local path (LoRA adapter folder or model folder) runs as one
``evals/checkpoint_shift.py`` eval on the base, so candidate and base samples share a log and pair
by question. Any other candidate (a model string) runs ``evals/trait_eval.py`` once for itself and
once for the base.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persona.app.task_runner import task_file
from persona.errors import PersonaError


@dataclass(frozen=True)
class RunSpec:
    """One trait to evaluate for a candidate and its base."""

    trait: str
    candidate: str
    base: str
    judge: str | None
    epochs: int
    log_dir: Path
    task_args: dict[str, Any] = field(default_factory=dict)


Runner = Callable[[RunSpec], list[str]]
"""Runs a :class:`RunSpec` and returns the paths of the logs it wrote."""


def question_count(trait: str) -> int | None:
    """How many eval questions ``trait`` has (what a rerun can use); None when it is not in the
    trait library."""
    import traits

    try:
        return len(traits.load(trait).eval_questions)
    except traits.TraitError:
        return None


def plan(spec: RunSpec) -> list[tuple[str, str, dict[str, Any]]]:
    """The ``(task, model, task_args)`` evals that :func:`run_trait` runs."""
    extra = {**spec.task_args, "trait": spec.trait}
    if Path(spec.candidate).exists():
        args = {**extra, "checkpoints": [str(spec.candidate)]}
        return [(task_file("checkpoint_shift"), spec.base, args)]
    return [
        (task_file("trait_eval"), spec.candidate, extra),
        (task_file("trait_eval"), spec.base, dict(extra)),
    ]


def run_trait(spec: RunSpec) -> list[str]:
    """Run the evals of :func:`plan` with Inspect; an unfinished eval is an error."""
    from inspect_ai import eval as inspect_eval

    from evals._common import launched_here

    paths: list[str] = []
    for task, model, task_args in plan(spec):
        with launched_here():
            logs = inspect_eval(
                tasks=task,
                model=model,
                task_args=task_args,
                model_roles={"judge": spec.judge} if spec.judge else None,
                epochs=spec.epochs,
                log_dir=str(spec.log_dir),
                display="none",
            )
        for log in logs:
            if log.status != "success":
                why = log.error.message if log.error else log.status
                raise PersonaError(
                    f"{task} on {model} (trait {spec.trait}) did not finish: {why}; "
                    f"log: {log.location}",
                    exit_code=2,
                )
            paths.append(log.location)
    return paths

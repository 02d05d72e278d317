"""Shared pieces of the four tasks: parameter parsing, datasets, checks made before generating."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from inspect_ai._util.error import PrerequisiteError
from inspect_ai.dataset import Sample
from inspect_ai.model import GenerateConfig, Model
from inspect_ai.model._model import active_model
from inspect_ai.scorer import mean, stderr
from inspect_ai.solver import Generate, Solver, TaskState, solver

import traits
from persona.errors import PersonaError
from scorers import check_judge, correlations, resolve_judge
from scorers.judging import MODES
from solvers._resolve import check_checkpoint, is_persona, model_id, resolve_vector
from solvers.condition import BASE

log = logging.getLogger("persona")
P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_VECTORS = "vectors"
DEFAULT_MAX_TOKENS = 256
DEFAULT_TEMPERATURE = 1.0
PERSONA_METRICS = [{"*": [mean(), stderr()]}, correlations()]


class TaskInputError(PersonaError, PrerequisiteError):
    """Bad task input, shown by ``inspect eval`` as one message without a traceback."""

    def __init__(self, message: str) -> None:
        PersonaError.__init__(self, message)
        self.message = message


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator (under ``@task``): report :class:`PersonaError` as :class:`TaskInputError`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except TaskInputError:
            raise
        except PersonaError as e:
            raise TaskInputError(str(e)) from None

    return wrapper


EVALS_DIR = Path(__file__).resolve().parent


def launch_dir() -> Path:
    """The directory the evaluation was started from, while Inspect creates a task.

    Inspect creates a task from its file with the working directory set to the file's folder
    (here ``evals/``) and restores it for the run, so a relative path given as a task argument
    would resolve against ``evals/``. Inside that change the shell's ``$PWD`` still names the
    directory ``inspect eval`` was started from (``persona.app.task_runner`` sets it when it runs
    a task from Python).
    """
    cwd = Path.cwd()
    pwd = os.environ.get("PWD")
    if cwd.resolve() == EVALS_DIR and pwd and Path(pwd).is_dir():
        return Path(pwd)
    return cwd


def task_path(value: str | os.PathLike[str]) -> str:
    """A task argument naming a file or folder, made absolute against :func:`launch_dir`."""
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (launch_dir() / path).resolve())


def load_trait(name: str) -> traits.Trait:
    if not name:
        raise TaskInputError(f"pass a trait: -T trait=NAME (available: {_available()})")
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        return traits.load(task_path(name))
    return traits.load(name)


def _available() -> str:
    return ", ".join(traits.available()) or "none"


def as_list(value: Any, cast: type = str) -> list[Any]:
    """A task parameter given as a list, a comma-separated string or a single value."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items: Sequence[Any] = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list | tuple):
        items = value
    else:
        items = [value]
    try:
        return [cast(v) for v in items]
    except (TypeError, ValueError):
        raise TaskInputError(
            f"cannot read {value!r} as a list of {cast.__name__} values (use e.g. 1,2,3)"
        ) from None


def check_mode(judge_mode: str) -> None:
    if judge_mode not in MODES:
        raise TaskInputError(f"unknown judge_mode {judge_mode!r}: use one of {', '.join(MODES)}")


def subject() -> Model | None:
    """The model under evaluation while ``eval()`` builds tasks (None outside ``eval``)."""
    return active_model()


def subject_vector(trait: str, vectors: str, what: str) -> Path | None:
    """Check at task creation that the trait's vector exists for the model under evaluation."""
    model = subject()
    if model is None:
        return None
    if not is_persona(model):
        raise TaskInputError(
            f"{what} needs the persona provider (activations), but the model is {model}: run "
            "with --model persona/<model>, or -T project=false for judged scores only"
        )
    return resolve_vector(trait, vectors, model_id(model))


def parse_checkpoints(value: Any) -> list[tuple[str, str]]:
    """``[path, alias=path, ...]`` -> unique ``(alias, path)`` pairs (alias: folder name)."""
    out: list[tuple[str, str]] = []
    for item in as_list(value):
        alias, _, path = item.partition("=") if "=" in item else ("", "", item)
        alias = alias.strip() or Path(path.rstrip("/")).name or path
        if alias == BASE:
            raise TaskInputError(f"checkpoint alias {BASE!r} is reserved for the evaluated model")
        taken = {a for a, _ in out}
        stem, n = alias, 2
        while alias in taken:
            alias, n = f"{stem}-{n}", n + 1
        out.append((alias, task_path(path.strip())))
    model = subject()
    if model is not None:
        for _, path in out:
            check_checkpoint(path, model)
    return out


def question_samples(
    trait: traits.Trait,
    *,
    questions: int | None,
    rollouts: int,
    checkpoints: Sequence[tuple[str, str | None]] = ((BASE, None),),
    extra: dict[str, Any] | None = None,
) -> list[Sample]:
    """Eval questions x rollouts x checkpoints, with the schema's sample metadata."""
    pool = trait.eval_questions
    n = len(pool) if questions is None else int(questions)
    if not 1 <= n <= len(pool):
        raise TaskInputError(f"questions must be 1..{len(pool)} for {trait.name}, got {n}")
    if rollouts < 1:
        raise TaskInputError(f"rollouts must be >= 1, got {rollouts}")
    samples = []
    for alias, path in checkpoints:
        for i, question in enumerate(pool[:n]):
            for r in range(rollouts):
                sid = f"eval_{i}/r{r}" + (f"@{alias}" if len(checkpoints) > 1 else "")
                meta = {
                    "trait": trait.name,
                    "question_id": f"eval_{i}",
                    "question": question,
                    "rollout": r,
                    "condition": BASE,
                    "coef": 0.0,
                    "layer": None,
                    "positions": None,
                    "checkpoint": alias,
                    "checkpoint_path": path,
                    **(extra or {}),
                }
                samples.append(Sample(input=question, id=sid, metadata=meta))
    return samples


def generate_config(max_tokens: int, temperature: float) -> GenerateConfig:
    if max_tokens < 1:
        raise TaskInputError(f"max_tokens must be >= 1, got {max_tokens}")
    return GenerateConfig(max_tokens=int(max_tokens), temperature=float(temperature))


def task_metadata(trait: traits.Trait, **extra: Any) -> dict[str, Any]:
    return {"trait": trait.name, "trait_hash": trait.hash, **extra}


def steering_label(coef: float, layer: Any) -> str:
    if not coef:
        return BASE
    return f"coef={coef:g},L={layer}" if layer is not None else f"coef={coef:g}"


@solver
def judge_check(judge_mode: str = "auto") -> Solver:
    """Setup step: make sure a bound judge answers before this sample generates anything."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        await check_judge(resolve_judge(), judge_mode)
        return state

    return solve

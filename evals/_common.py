"""Shared pieces of the four tasks, and their one import surface.

Task files import everything they use from here (Inspect, solvers, scorers, task helpers), so a
task opens with one import block. Here: parameter parsing and checks made when a task is built
(so ``inspect eval`` fails the run with one message instead of logging sample errors), datasets,
where vectors come from, and the launch-directory rule for relative paths.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.model import GenerateConfig, Model
from inspect_ai.model._model import active_model
from inspect_ai.scorer import mean, stderr
from inspect_ai.solver import Generate, Solver, TaskState, solver

import evals._postprocess  # noqa: F401  (registers the TaskEnd hook; Inspect hooks register on import)
import traits
from persona import validate
from persona.analysis.extraction import POST_KEY
from persona.analysis.judge import MIN_MASS
from persona.errors import PersonaError
from persona.model.engine import POSITIONS
from persona.model.vector_store import StoredVector, VectorStore, resolve_layer, source_shape
from persona.provider.api import InspectInputError
from scorers import (
    behaviour,
    check_judge,
    checkpoint_deltas,
    correlations,
    judge_role_bound,
    persona_score,
    resolve_judge,
)
from scorers.judging import MODES
from solvers import capture, persona_generate, persona_prompt, steer, use_checkpoint
from solvers._resolve import (
    check_checkpoint,
    is_persona,
    provider_vectors,
    source_of,
    vectors_folder,
)
from solvers.condition import BASE

__all__ = [
    "BASE",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_TEMPERATURE",
    "MIN_MASS",
    "PERSONA_METRICS",
    "POST_KEY",
    "Sample",
    "Task",
    "TaskInputError",
    "announce_filter",
    "as_list",
    "capture",
    "check_coef",
    "check_count",
    "check_judge_points",
    "checked",
    "check_layers",
    "check_mode",
    "check_positions",
    "checkpoint_deltas",
    "generate_config",
    "judge_check",
    "judge_role_bound",
    "load_trait",
    "log",
    "parse_checkpoints",
    "persona_generate",
    "persona_prompt",
    "persona_score",
    "question_samples",
    "steer",
    "steering_label",
    "subject_vector",
    "task",
    "task_metadata",
    "task_path",
    "task_vectors",
    "trait_arg",
    "use_checkpoint",
    "user_errors",
]

log = logging.getLogger("persona")
P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_VECTORS = "vectors"  # under the launch directory, when neither -T nor -M vectors is set
DEFAULT_MAX_TOKENS = 256
DEFAULT_TEMPERATURE = 1.0
PERSONA_METRICS = [behaviour(), {"*": [mean(), stderr()]}, correlations()]  # headline first


TaskInputError = InspectInputError  # bad task input: one message, non-zero exit, no traceback


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


LAUNCH_ENV = "PWD"


def launch_dir() -> Path:
    """The directory the evaluation was started from, while Inspect creates a task.

    Inspect creates a task from its file with the working directory set to the file's folder
    (here ``evals/``) and restores it for the run, so a relative path given as a task argument
    would resolve against ``evals/``. Inside that change the shell's ``$PWD`` still names the
    directory ``inspect eval`` was started from; a Python caller sets it with
    :func:`launched_here`. These two functions are the whole contract.
    """
    cwd = Path.cwd()
    pwd = os.environ.get(LAUNCH_ENV)
    if cwd.resolve() == EVALS_DIR and pwd and Path(pwd).is_dir():
        return Path(pwd)
    return cwd


@contextmanager
def launched_here() -> Iterator[None]:
    """Set ``$PWD`` to the working directory while Inspect loads task files (see launch_dir).

    A Python caller that changed directory has not updated ``$PWD`` the way a shell does.
    """
    before = os.environ.get(LAUNCH_ENV)
    os.environ[LAUNCH_ENV] = os.getcwd()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(LAUNCH_ENV, None)
        else:
            os.environ[LAUNCH_ENV] = before


def task_path(value: str | os.PathLike[str]) -> str:
    """A task argument naming a file or folder, made absolute against :func:`launch_dir`."""
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (launch_dir() / path).resolve())


def trait_arg(name: str) -> str:
    """A ``trait`` task argument as solvers get it: a name, or an absolute path to a YAML file."""
    if not name:
        raise TaskInputError(f"pass a trait: -T trait=NAME (available: {_available()})")
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        return task_path(name)
    return name


def load_trait(name: str) -> traits.Trait:
    """The trait of a ``trait`` task argument (a name or a path); its vector goes by its name.
    Warns when the trait's offline behaviour measure is marked unsupported (docs/judges.md).

    Every ``$PERSONA_TRAITS_DIR`` folder must exist, as for the CLI: a typo there would otherwise
    read as an unknown trait."""
    validate.env_dirs(traits.ENV_VAR)
    definition = traits.load(trait_arg(name))
    if (warning := definition.offline_measure_warning()) is not None:
        log.warning(f"persona: {warning}")
    return definition


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


def announce_filter(filter: bool | None, bound: bool | None, judge: bool) -> None:
    """Say on the terminal when extraction filtering will be off, and why."""
    if not judge:
        log.warning("persona: judge=false, so extraction filtering is off; all pairs are kept")
    elif filter is None and bound is False:
        log.warning(
            "persona: no judge role bound, so the model under evaluation judges itself and "
            "extraction filtering is off (bind --model-role judge=MODEL, or -T filter=true)"
        )
    elif filter is False:
        log.warning("persona: extraction filtering is off (-T filter=false); all pairs are kept")


def check_mode(judge_mode: str) -> None:
    if judge_mode not in MODES:
        raise TaskInputError(f"unknown judge_mode {judge_mode!r}: use one of {', '.join(MODES)}")


def subject() -> Model | None:
    """The model under evaluation while ``eval()`` builds tasks (None outside ``eval``)."""
    return active_model()


def task_vectors(given: str | None) -> str:
    """The vectors folder (or file) of a task; the rule is in docs/tasks.md.

    ``-T vectors`` (relative to the launch directory), else the provider's ``-M vectors``, else
    ``./vectors``; both given and different is an error.
    """
    model = subject()
    if given is None or given == "":
        if provider_vectors(model) is None:
            return task_path(DEFAULT_VECTORS)
        return str(vectors_folder(model, None))
    return str(vectors_folder(model, task_path(given)))


def subject_vector(trait: str, vectors: str, what: str) -> StoredVector | None:
    """Check at task creation that the trait's vector exists and fits the model under evaluation.

    ``trait`` is the trait's name (a trait given as a path is looked up by its name). The fit
    is checked against the model's ``config.json`` when it is on disk (no weights load).
    """
    model = subject()
    if model is None:
        return None
    if not is_persona(model):
        raise TaskInputError(
            f"{what} needs the persona provider (activations), but the model is {model}: run "
            "with --model persona/<model>, or -T project=false for judged scores only"
        )
    source = source_of(model)
    return VectorStore(vectors).get(trait, source.model_id, shape=source_shape(source))


def checked(name: str, value: Any, check: Callable[[Any], R]) -> R:
    """A task argument through a :mod:`persona.validate` check; the message names the argument."""
    try:
        return check(value)
    except PersonaError as e:
        raise TaskInputError(f"-T {name}: {e}") from None


def check_count(name: str, value: Any, most: int | None = None) -> int:
    """A whole number >= 1 (and <= ``most``): ``-T questions=abc`` fails here, in one line."""
    return checked(name, value, validate.integer(1, most))


def check_judge_points(name: str, value: Any) -> float:
    """A threshold on the 0-100 judge scale."""
    return checked(name, value, validate.number(0, 100))


def check_coef(value: Any, name: str = "coef") -> float:
    """A finite steering coefficient (``-T coef=abc`` and ``.nan`` fail here, not in samples)."""
    return checked(name, value, validate.coefficient)


def check_layers(
    layers: Sequence[Any], stored: StoredVector | None, name: str = "layer"
) -> list[int]:
    """Steering layers as whole numbers that exist in the model (checked against its vector)."""
    values = [checked(name, lay, validate.layer) for lay in layers]
    if stored is not None:
        n = stored.vector.num_layers
        for lay in values:
            checked(name, lay, lambda v: resolve_layer(stored.vector, n, layer=v))
    return values


def check_positions(positions: str) -> None:
    if positions not in POSITIONS:
        raise TaskInputError(f"unknown positions {positions!r}: use one of {', '.join(POSITIONS)}")


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


def task_questions(trait: traits.Trait, *, monitoring: bool = False) -> list[tuple[str, str]]:
    """``(question_id, question)`` in order: the eval questions (``eval_i``), then, for the
    monitor task, the trait's held-out ``monitor_questions`` (``monitor_j``)."""
    pool = [(f"eval_{i}", q) for i, q in enumerate(trait.eval_questions)]
    if monitoring:
        pool += [(f"monitor_{j}", q) for j, q in enumerate(trait.monitor_questions)]
    return pool


def question_samples(
    trait: traits.Trait,
    *,
    questions: int | None,
    rollouts: int,
    checkpoints: Sequence[tuple[str, str | None]] = ((BASE, None),),
    extra: dict[str, Any] | None = None,
    monitoring: bool = False,
) -> list[Sample]:
    """The first ``questions`` of :func:`task_questions` (default: the eval questions) x
    rollouts x checkpoints, with the schema's sample metadata."""
    pool = task_questions(trait, monitoring=monitoring)
    n_eval = len(trait.eval_questions)
    try:
        n = n_eval if questions is None else check_count("questions", questions, len(pool))
    except TaskInputError as e:
        if not monitoring:
            raise
        raise TaskInputError(
            f"{e} (the monitor draws from {trait.name!r}'s {n_eval} eval questions, then its "
            f"{len(pool) - n_eval} monitor_questions)"
        ) from None
    rollouts = check_count("rollouts", rollouts)
    samples = []
    for alias, path in checkpoints:
        for qid, question in pool[:n]:
            for r in range(rollouts):
                sid = f"{qid}/r{r}" + (f"@{alias}" if len(checkpoints) > 1 else "")
                meta = {
                    "trait": trait.name,
                    "question_id": qid,
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
    tokens = check_count("max_tokens", max_tokens)
    temp = checked("temperature", temperature, validate.temperature)
    return GenerateConfig(max_tokens=tokens, temperature=temp)


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

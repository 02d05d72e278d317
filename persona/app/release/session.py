"""Trait data for release tests: recorded logs in a folder, or fresh runs cached in it.

:class:`LogSource` reads every log in its folder. When a candidate is given and the folder lacks
usable samples for a trait (no rows for the candidate or the base, fewer epochs than asked for,
another judge), it runs the trait tasks through a :data:`~persona.app.release.runner.Runner`
and reads
the folder again. Without a candidate it only reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from persona.analysis.compare import (
    Selection,
    canonical,
    checkpoint_order,
    match_checkpoint,
    resolve_base,
)
from persona.analysis.gates.config import GateConfig
from persona.analysis.gates.data import read_frame, select
from persona.analysis.gates.rerun import RerunPlan
from persona.app.release.runner import Runner, RunSpec
from persona.errors import PersonaError

DEFAULT_EPOCHS = 3


class LogSource:
    """Samples per trait for one candidate and its base, from (or run into) ``log_dir``."""

    def __init__(
        self,
        log_dir: str | Path,
        config: GateConfig,
        *,
        candidate: str | None = None,
        base: str | None = None,
        judge: str | None = None,
        epochs: int | None = None,
        runner: Runner | None = None,
        task_args: dict[str, Any] | None = None,
    ) -> None:
        self.log_dir = Path(log_dir)
        self.config = config
        self.candidate = candidate
        self.base = base or config.settings.base
        self.judge = judge
        self.epochs = epochs
        self.runner = runner
        self.task_args = dict(task_args or {})
        self._frame: pd.DataFrame | None = None
        self.verdicts: list[Any] = []

    @property
    def can_run(self) -> bool:
        """Whether missing or flaky traits can be (re)run."""
        return bool(self.runner and self.candidate and self.base)

    def frame(self) -> pd.DataFrame:
        """Canonical rows of every log in the folder (read once, again after a run)."""
        if self._frame is None:
            has_logs = self.log_dir.is_dir() and any(
                p.suffix in (".eval", ".json") for p in self.log_dir.rglob("*")
            )
            if not has_logs:
                if not self.can_run:
                    raise PersonaError(f"no logs in {self.log_dir}", exit_code=2)
                self._frame = canonical(pd.DataFrame(columns=_EMPTY))
            else:
                self._frame = canonical(read_frame([self.log_dir]))
        return self._frame

    def base_id(self) -> str:
        frame = self.frame()
        explicit = [self.candidate] if self.candidate else []
        if frame.empty:
            if self.base is None:
                raise PersonaError("the base model is unknown: pass --persona-base", exit_code=2)
            return self.base
        return resolve_base(frame, self.base, explicit)[0]

    def candidate_id(self, trait: str | None = None) -> str:
        """The candidate's checkpoint identity in the logs."""
        frame = self.frame()
        base = self.base_id()
        rows = frame if trait is None else frame[frame["trait_name"] == trait]
        present = [c for c in checkpoint_order(rows) if c != base]
        if self.candidate:
            found = match_checkpoint(present, self.candidate)
            if found is None:
                raise PersonaError(
                    f"candidate {self.candidate!r} not in the logs of {self.log_dir} "
                    f"(checkpoints: {', '.join(present) or 'none besides the base'})",
                    exit_code=2,
                )
            return found
        if len(present) != 1:
            raise PersonaError(
                f"{'no' if not present else 'several'} candidate checkpoints in {self.log_dir} "
                f"({', '.join(present)}); pass --persona-model",
                exit_code=2,
            )
        return present[0]

    def _usable(self, trait: str, samples: int | None, questions: int | None = None) -> bool:
        """Whether the folder holds the candidate and the base with at least ``samples`` per
        question (default: the asked epochs), ``questions`` questions, and the asked judge."""
        try:
            sel = select(self.frame(), trait, self.candidate_id(trait), self.base_id())
        except PersonaError:
            return False
        if sel.base.empty:
            return False
        want = samples or self.epochs or 1
        for rows in (sel.candidate, sel.base):
            if int(rows.groupby("unit").size().min()) < want:
                return False
            if questions and rows["unit"].nunique() < questions:
                return False
            if self.judge and not set(rows["judge_model"].dropna().astype(str)) <= {self.judge}:
                return False
        return True

    def run(
        self, trait: str, epochs: int | None = None, task_args: dict[str, Any] | None = None
    ) -> None:
        """Run the trait tasks for the candidate and the base into the folder (``task_args``
        override the session's)."""
        if not self.can_run:
            raise PersonaError(
                "cannot run the trait tasks: pass --persona-model and --persona-base", exit_code=2
            )
        assert self.runner and self.candidate and self.base
        spec = RunSpec(
            trait=trait,
            candidate=self.candidate,
            base=self.base,
            judge=self.judge,
            epochs=epochs or self.epochs or DEFAULT_EPOCHS,
            log_dir=self.log_dir,
            task_args={**self.task_args, **(task_args or {})},
        )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.runner(spec)
        self._frame = None

    def selection(self, trait: str) -> Selection:
        """Candidate and base rows of ``trait``, running the tasks first when needed."""
        if self.can_run and not self._usable(trait, None):
            self.run(trait)
        return select(self.frame(), trait, self.candidate_id(trait), self.base_id())

    def rerun(self, trait: str, plan: RerunPlan) -> Selection:
        """Run ``trait`` again at the size of ``plan``: its first ``plan.questions`` eval
        questions, with epochs enough for ``plan.samples`` samples per question (the largest
        run wins in :func:`select`)."""
        if not self._usable(trait, plan.samples, plan.questions):
            rollouts = int(self.task_args.get("rollouts", 1))
            epochs = math.ceil(plan.samples / rollouts)
            self.run(trait, epochs, {"questions": plan.questions})
        return self.selection(trait)


_EMPTY = ["trait_name", "checkpoint_id", "model", "log", "epoch", "trait", "sample_id"]


@dataclass
class Checkpoint:
    """The candidate or the base of a :class:`LogSource`, as release tests see it."""

    source: LogSource
    role: Literal["candidate", "base"] = "candidate"

    @property
    def id(self) -> str:
        """The checkpoint identity in the logs (the given name while nothing has run yet)."""
        try:
            if self.role == "base":
                return self.source.base_id()
            return self.source.candidate_id()
        except PersonaError:
            given = self.source.base if self.role == "base" else self.source.candidate
            if given is None:
                raise
            return given

    @property
    def base(self) -> Checkpoint | None:
        """The base this candidate is compared with (``None`` for the base itself)."""
        return Checkpoint(self.source, "base") if self.role == "candidate" else None

    def __repr__(self) -> str:
        return f"Checkpoint({self.role}, log_dir={str(self.source.log_dir)!r})"

    def rows(self, trait: str) -> pd.DataFrame:
        """Canonical sample rows of this checkpoint for ``trait``."""
        sel = self.source.selection(trait)
        return sel.candidate if self.role == "candidate" else sel.base

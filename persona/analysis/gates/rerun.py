"""What one rerun of a flaky trait can add to its estimates.

A rerun decides only if it adds evidence that can move the interval: further eval questions (the
unit of the bootstrap), and more samples per question for measures read from sampled replies.
The prompt-last projection is read before any reply is sampled, so it is the same in every
sample of a question: more samples (epochs) never change a prompt-last shift.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from persona.analysis.gates.config import SHIFT_GATES, GateSettings


def sampled(gate: str, settings: GateSettings) -> bool:
    """Whether ``gate``'s measure varies between samples of one question (at temperature > 0)."""
    return not (gate in SHIFT_GATES and settings.shift == "prompt_last")


@dataclass(frozen=True)
class RerunPlan:
    """The size of a rerun (the first ``questions`` eval questions x ``samples`` per question),
    next to that of the run it repeats; ``why_not`` says why it adds nothing, when it does not."""

    questions: int
    samples: int
    run_questions: int
    run_samples: int
    why_not: str = ""

    @property
    def adds(self) -> bool:
        """Whether the rerun adds questions or samples."""
        return self.questions > self.run_questions or self.samples > self.run_samples

    def describe(self) -> str:
        """``20 questions x 2 samples (the first run: 10 x 2)``."""
        return (
            f"{self.questions} questions x {self.samples} samples "
            f"(the first run: {self.run_questions} x {self.run_samples})"
        )


def plan_rerun(
    flaky_gates: Iterable[str],
    settings: GateSettings,
    *,
    questions: int,
    samples: int,
    available: int | None,
) -> RerunPlan:
    """All the trait's eval questions (``available``; None: unknown, none added) and, when a
    flaky gate's measure is sampled, ``rerun_samples`` samples per question (default: double)."""
    more_questions = max(questions, available or 0)
    is_sampled = any(sampled(g, settings) for g in flaky_gates)
    target = settings.rerun_samples or 2 * max(samples, 1)
    more_samples = max(samples, target) if is_sampled else samples
    why: list[str] = []
    if more_questions <= questions:
        why.append(
            f"all {questions} eval questions of the trait were used"
            if available is not None
            else f"no eval questions are known beyond the {questions} used"
        )
    if more_samples <= samples:
        why.append(
            f"rerun_samples={target} adds no samples to {samples} per question"
            if is_sampled
            else "the prompt-last projection is the same in every sample of a question"
        )
    return RerunPlan(more_questions, more_samples, questions, samples, "; ".join(why))

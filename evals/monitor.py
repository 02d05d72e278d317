"""``monitor``: does the last prompt token's projection predict the trait of the reply?

The paper's monitoring experiment (docs/monitoring.md): every eval question (and, with
``-T questions`` above 20, the trait's held-out ``monitor_questions``) is asked,
unsteered, under the trait's eight graded system prompts (``graded_prompts``, trait-suppressing to
trait-promoting) and under many-shot prompts with 0, 2, 4, 8 earlier turns that show the trait
(``monitor_exemplars``). Each sample records the last-prompt-token projection at the trait's
layer and the trait expression of the reply: the 0-100 LLM judge when a ``judge`` role is bound,
else the likelihood judge. The report aggregates rollouts per (condition, question).

    inspect eval evals/monitor.py -T trait=evil --model persona/smollm2-135m -M vectors=DIR
"""

from __future__ import annotations

from typing import Any

from inspect_ai.model import ChatMessage, ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

import traits
from evals._common import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    MIN_MASS,
    Sample,
    Task,
    TaskInputError,
    as_list,
    capture,
    check_mode,
    generate_config,
    judge_check,
    load_trait,
    persona_generate,
    persona_score,
    question_samples,
    subject_vector,
    task,
    task_metadata,
    task_vectors,
    user_errors,
)

SYSTEM_PROMPT = "system_prompt"
MANY_SHOT = "many_shot"
FAMILIES = (SYSTEM_PROMPT, MANY_SHOT)
DEFAULT_SHOTS = "0,2,4,8"


def prompt_conditions(
    definition: traits.Trait, families: list[str], shots: list[int]
) -> list[tuple[str, int, list[ChatMessage]]]:
    """``(family, level, messages before the question)`` of every condition: the system-prompt
    grade (0 = most trait-suppressing) or the number of earlier turns."""
    graded, exemplars = definition.need_monitoring()
    out: list[tuple[str, int, list[ChatMessage]]] = []
    if SYSTEM_PROMPT in families:
        for grade, text in enumerate(graded):
            out.append((SYSTEM_PROMPT, grade, [ChatMessageSystem(content=text)]))
    if MANY_SHOT in families:
        for k in shots:
            turns: list[ChatMessage] = []
            for e in exemplars[:k]:
                turns += [
                    ChatMessageUser(content=e.user),
                    ChatMessageAssistant(content=e.assistant),
                ]
            out.append((MANY_SHOT, k, turns))
    return out


def condition_label(family: str, level: int) -> str:
    return f"grade {level}" if family == SYSTEM_PROMPT else f"{level} shots"


def monitor_samples(
    definition: traits.Trait,
    families: list[str],
    shots: list[int],
    questions: int | None,
    rollouts: int,
) -> list[Sample]:
    """Conditions x eval questions x rollouts, unsteered, with the schema's sample metadata
    plus ``monitor_family`` and ``monitor_level``."""
    samples = []
    for family, level, prefix in prompt_conditions(definition, families, shots):
        extra = {
            "condition": condition_label(family, level),
            "monitor_family": family,
            "monitor_level": level,
        }
        for sample in question_samples(
            definition, questions=questions, rollouts=rollouts, extra=extra, monitoring=True
        ):
            sample.input = [*prefix, ChatMessageUser(content=sample.metadata["question"])]
            sample.id = f"{family}_{level}/{sample.id}"
            samples.append(sample)
    return samples


def _families(value: Any) -> list[str]:
    families = as_list(value)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise TaskInputError(
            f"conditions must name one or both of {', '.join(FAMILIES)}, got {value!r}"
        )
    return families


def _shots(value: Any, definition: traits.Trait) -> list[int]:
    shots = sorted(set(as_list(value, int)))
    have = len(definition.monitor_exemplars)
    if not shots or shots[0] < 0 or shots[-1] > have:
        raise TaskInputError(
            f"shots must be numbers of earlier turns in 0..{have} ({definition.name} has {have} "
            f"monitor_exemplars), got {value!r}"
        )
    return shots


@task
@user_errors
def monitor(
    trait: str = "evil",
    questions: int | None = None,
    rollouts: int = 3,
    conditions: Any = "system_prompt,many_shot",
    shots: Any = DEFAULT_SHOTS,
    vectors: str | None = None,
    judge: bool = True,
    self_judge: bool = False,
    likelihood_model: str | None = None,
    judge_mode: str = "auto",
    min_mass: float = MIN_MASS,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: float = DEFAULT_TEMPERATURE,
) -> Task:
    """Projection of the last prompt token vs the trait of the reply, across prompts that push
    toward or away from the trait (never steered).

    Args:
        trait: trait name or path to a trait YAML file (needs ``graded_prompts`` and
            ``monitor_exemplars``).
        questions: use the first N questions: the 20 eval questions, then the trait's held-out
            ``monitor_questions`` (default: the 20 eval questions).
        rollouts: replies per (condition, question); the report averages them into one point.
        conditions: ``system_prompt`` (the eight graded prompts), ``many_shot``, or both.
        shots: numbers of earlier trait-showing turns for ``many_shot`` (default 0,2,4,8).
        vectors: folder of persona vectors or one vector file; default: the provider's
            ``-M vectors``, else ``./vectors``.
        judge: the 0-100 judge with the ``judge`` role; without one, the likelihood judge
            (docs/judges.md); false: projections only.
        self_judge: let a persona/ model judge itself 0-100 when no ``judge`` role is bound.
        likelihood_model: ``persona/`` model of the likelihood judge (default: the evaluated one).
        judge_mode, min_mass: settings of the 0-100 judge.
        max_tokens, temperature: generation settings (the paper samples at temperature 1).
    """
    definition = load_trait(trait)
    check_mode(judge_mode)
    definition.need_monitoring()
    families = _families(conditions)
    shot_list = _shots(shots, definition) if MANY_SHOT in families else []
    vectors = task_vectors(vectors)
    subject_vector(definition.name, vectors, "monitor (prompt-last projections)")
    return Task(
        dataset=monitor_samples(definition, families, shot_list, questions, rollouts),
        setup=[judge_check(judge_mode)] if judge else None,
        solver=[capture(vectors=vectors), persona_generate()],
        scorer=persona_score(
            judge=judge,
            judge_mode=judge_mode,
            min_mass=min_mass,
            self_judge=self_judge,
            likelihood_model=likelihood_model,
        ),
        config=generate_config(max_tokens, temperature),
        metadata=task_metadata(
            definition, graded_prompts=list(definition.graded_prompts), shots=shot_list
        ),
        version=1,
    )

"""``checkpoint_shift``: the base model vs LoRA checkpoints on the trait's eval questions.

    inspect eval evals/checkpoint_shift.py -T trait=evil -T checkpoints=ckpt/a,ckpt/b \
        --model persona/smollm2-135m

Per checkpoint the metrics give the fine-tuning shift (docs/tasks.md: mean last-prompt-token
projection under the checkpoint minus under the base, onto the base model's vector at the
trait's layer; ``shift_prompt_last_<ckpt>``), its response-projection variant
(``shift_response_<ckpt>``) and the judged trait difference (``trait_delta_<ckpt>``).
"""

from __future__ import annotations

from typing import Any

from evals._common import (
    BASE,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    MIN_MASS,
    PERSONA_METRICS,
    Task,
    TaskInputError,
    capture,
    check_mode,
    checkpoint_deltas,
    generate_config,
    judge_check,
    load_trait,
    parse_checkpoints,
    persona_generate,
    persona_score,
    question_samples,
    subject_vector,
    task,
    task_metadata,
    task_vectors,
    use_checkpoint,
    user_errors,
)


@task
@user_errors
def checkpoint_shift(
    trait: str = "evil",
    checkpoints: Any = None,
    questions: int | None = None,
    rollouts: int = 1,
    vectors: str | None = None,
    cross_traits: bool = False,
    judge: bool = True,
    self_judge: bool = False,
    judge_mode: str = "auto",
    min_mass: float = MIN_MASS,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: float = DEFAULT_TEMPERATURE,
) -> Task:
    """Run every eval question on the base and on each checkpoint (paired seeds).

    Args:
        trait: trait name or path to a trait YAML file.
        checkpoints: LoRA adapter folders of the evaluated base (``path`` or ``alias=path``,
            comma-separated); required.
        questions, rollouts, vectors, cross_traits, judge, self_judge, judge_mode, min_mass,
            max_tokens, temperature: as in trait_eval.
    """
    definition = load_trait(trait)
    vectors = task_vectors(vectors)
    check_mode(judge_mode)
    ckpts = parse_checkpoints(checkpoints)
    if not ckpts:
        raise TaskInputError("pass the checkpoints to compare: -T checkpoints=path1,path2")
    subject_vector(definition.name, vectors, "checkpoint_shift")
    dataset = question_samples(
        definition,
        questions=questions,
        rollouts=rollouts,
        checkpoints=[(BASE, None), *ckpts],
    )
    return Task(
        dataset=dataset,
        setup=[judge_check(judge_mode)] if judge else None,
        solver=[
            use_checkpoint(),
            capture(vectors=vectors, cross_traits=cross_traits),
            persona_generate(),
        ],
        scorer=persona_score(
            min_mass=min_mass, judge=judge, judge_mode=judge_mode, self_judge=self_judge
        ),
        metrics=[*PERSONA_METRICS, checkpoint_deltas()],
        config=generate_config(max_tokens, temperature),
        metadata=task_metadata(definition, checkpoints=dict(ckpts)),
        version=1,
    )

"""``trait_eval``: the trait's 20 eval questions, judged and projected; optional steering and
paired LoRA-checkpoint swaps.

    inspect eval evals/trait_eval.py -T trait=evil --model persona/smollm2-135m
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
    check_coef,
    check_layers,
    check_mode,
    check_positions,
    checkpoint_deltas,
    generate_config,
    judge_check,
    load_trait,
    parse_checkpoints,
    persona_generate,
    persona_score,
    question_samples,
    steer,
    steering_label,
    subject_vector,
    task,
    task_metadata,
    task_vectors,
    use_checkpoint,
    user_errors,
)


@task
@user_errors
def trait_eval(
    trait: str = "evil",
    questions: int | None = None,
    rollouts: int = 1,
    coef: float = 0.0,
    layer: int | None = None,
    positions: str = "response",
    checkpoints: Any = None,
    vectors: str | None = None,
    project: bool = True,
    cross_traits: bool = False,
    judge: bool = True,
    self_judge: bool = False,
    judge_mode: str = "auto",
    min_mass: float = MIN_MASS,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: float = DEFAULT_TEMPERATURE,
) -> Task:
    """Judge (and project) the model's replies to the trait's eval questions.

    Args:
        trait: trait name (``persona traits list``) or path to a trait YAML file.
        questions: use the first N eval questions (default: all 20).
        rollouts: samples per question.
        coef: steering coefficient (0: unsteered); ``layer`` (default: the trait's layer) and
            ``positions`` (all, prompt, response) apply when it is not 0.
        checkpoints: LoRA adapter folders of the evaluated base (``path`` or ``alias=path``,
            comma-separated); each question then runs on the base and on every checkpoint.
        vectors: folder of persona vectors (``<dir>/<model-slug>/<trait>.safetensors``) or one
            vector file; default: the provider's ``-M vectors``, else ``./vectors``.
        project: measure projections onto the trait's vector (needs the persona provider).
        cross_traits: also project onto every other trait's vector found for this model.
        judge: judge trait and coherence with the ``judge`` role; without one, record the
            likelihood judge instead (docs/judges.md); false: no behaviour measure.
        self_judge: let a persona/ model judge itself 0-100 when no ``judge`` role is bound.
        judge_mode: auto, logprobs, candidates or text.
        min_mass: numeric probability mass below which a judgement is unscored.
        max_tokens, temperature: generation settings (the paper samples at temperature 1).
    """
    definition = load_trait(trait)
    vectors = task_vectors(vectors)
    check_mode(judge_mode)
    coef = check_coef(coef)
    check_positions(positions)
    stored = None
    if project or coef:
        stored = subject_vector(definition.name, vectors, "trait_eval with projections or steering")
    ckpts = parse_checkpoints(checkpoints)
    if layer is not None and not coef:
        raise TaskInputError("layer is the steering layer: pass a non-zero coef with it")
    if layer is not None:
        (layer,) = check_layers([layer], stored)
    conditions: list[tuple[str, str | None]] = [(BASE, None), *ckpts]
    dataset = question_samples(
        definition,
        questions=questions,
        rollouts=rollouts,
        checkpoints=conditions,
        extra={
            "coef": coef,
            "layer": layer,
            "positions": positions if coef else None,
            "condition": steering_label(coef, layer),
        },
    )
    solver = []
    if ckpts:
        solver.append(use_checkpoint())
    if coef:
        solver.append(steer(vectors=vectors, coef=coef, positions=positions))
    if project:
        solver.append(capture(vectors=vectors, cross_traits=cross_traits))
    solver.append(persona_generate())
    metrics = [*PERSONA_METRICS, checkpoint_deltas()] if ckpts else None
    return Task(
        dataset=dataset,
        setup=[judge_check(judge_mode)] if judge else None,
        solver=solver,
        scorer=persona_score(
            min_mass=min_mass, judge=judge, judge_mode=judge_mode, self_judge=self_judge
        ),
        metrics=metrics,
        config=generate_config(max_tokens, temperature),
        metadata=task_metadata(definition, checkpoints=dict(ckpts)),
        version=1,
    )

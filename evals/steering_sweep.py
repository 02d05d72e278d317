"""``steering_sweep``: layers x coefficients on extraction questions; records the best layer.

    inspect eval evals/steering_sweep.py -T trait=evil -T layers=10,15,20 -T coefs=1,2 \
        --model persona/smollm2-135m

The chosen layer (largest trait effect among cells with mean coherence >= the threshold) is
written into the vector's metadata when the run ends (the prompting baseline, unsteered under
the trait's own system prompts on the same questions, is measured beside it and never chosen);
later tasks steer and project there. The sweep runs on the trait's extraction questions, never
on the eval questions the chosen layer is later evaluated on, with several rollouts per cell;
the coherence bar is the paper's 80 when a separate judge is bound and 50 when the model judges
itself (docs/tasks.md).
"""

from __future__ import annotations

from typing import Any

from evals._common import (
    DEFAULT_TEMPERATURE,
    MIN_MASS,
    PERSONA_METRICS,
    POST_KEY,
    Sample,
    Task,
    TaskInputError,
    as_list,
    capture,
    check_coef,
    check_count,
    check_layers,
    check_mode,
    check_positions,
    generate_config,
    judge_check,
    judge_role_bound,
    load_trait,
    log,
    persona_generate,
    persona_prompt,
    persona_score,
    steer,
    steering_label,
    subject_vector,
    task,
    task_metadata,
    task_vectors,
    trait_arg,
    user_errors,
)
from evals._sweep import coherence_bar

DEFAULT_COEFS = "1,2"
PROMPTED = "prompted"
"""Condition of the prompting baseline: unsteered, under the trait's own (pos) system prompt."""


def default_layers(num_layers: int) -> list[int]:
    """About five layers spread over the middle of the network."""
    picks = {round(num_layers * f) for f in (0.25, 0.375, 0.5, 0.625, 0.75)}
    return sorted(lay for lay in picks if 1 <= lay <= num_layers) or [max(1, num_layers // 2)]


@task
@user_errors
def steering_sweep(
    trait: str = "evil",
    layers: Any = None,
    coefs: Any = DEFAULT_COEFS,
    questions: int = 5,
    rollouts: int = 2,
    positions: str = "response",
    vectors: str | None = None,
    coherence_threshold: float | None = None,
    write: bool = True,
    judge: bool = True,
    self_judge: bool = True,
    judge_mode: str = "auto",
    min_mass: float = MIN_MASS,
    max_tokens: int = 128,
    temperature: float = DEFAULT_TEMPERATURE,
    seed: int | None = None,
    prompting: bool = True,
) -> Task:
    """Steer at each layer with each coefficient (plus an unsteered baseline) and judge.

    Args:
        trait: trait name or path to a trait YAML file.
        layers: layers to try (comma-separated; default: five spread over the middle).
        coefs: coefficients to try (comma-separated, non-zero; default 1,2).
        questions: use the first N extraction questions (default 5; never eval questions).
        rollouts: samples per (question, layer, coef) (default 2).
        positions: steering positions (all, prompt, response).
        vectors: folder of persona vectors (default: the provider's ``-M vectors``, else
            ``./vectors``).
        coherence_threshold: a cell counts only if its mean coherence is >= this (default 80
            with a bound judge role, 50 when the model judges itself).
        write: record the chosen layer in the vector file when the run ends.
        judge: judge the replies (false: projections only, so no layer is chosen or written).
        self_judge: without a ``judge`` role, let the model judge itself (default: the layer
            choice needs coherence scores); false records the likelihood judge instead.
        judge_mode, min_mass, max_tokens, temperature: as in trait_eval.
        seed: base sampling seed (rerun with another seed to check the choice is stable).
        prompting: add the prompting baseline: the same questions and rollouts, unsteered,
            under the trait's own system prompts (instruction pairs in turn), judged the same way,
            so the report shows what steering reaches next to what prompting reaches.
    """
    definition = load_trait(trait)
    vectors = task_vectors(vectors)
    check_mode(judge_mode)
    check_positions(positions)
    stored = subject_vector(definition.name, vectors, "steering_sweep")
    path = stored.path if stored else None
    layer_list = as_list(layers, int)
    if not layer_list:
        if stored is None:
            raise TaskInputError("pass the layers to sweep: -T layers=4,8,12")
        layer_list = default_layers(stored.vector.num_layers)
    layer_list = check_layers(layer_list, stored, "layers")
    coef_list = [check_coef(c, "coefs") for c in as_list(coefs, float)]
    if not coef_list or any(c == 0 for c in coef_list):
        raise TaskInputError(f"coefs must be non-zero numbers (the baseline is added): {coefs}")
    pool = definition.extract_questions
    questions = check_count("questions", questions, len(pool))
    rollouts = check_count("rollouts", rollouts)
    cells: list[tuple[float, int | None]] = [(0.0, None)]
    cells += [(c, lay) for lay in layer_list for c in coef_list]
    dataset = []
    for i, question in enumerate(pool[:questions]):
        for coef, layer in cells:
            for r in range(rollouts):
                cond = steering_label(coef, layer)
                meta = {
                    "trait": definition.name,
                    "question_id": f"extract_{i}",
                    "question": question,
                    "rollout": r,
                    "condition": cond,
                    "coef": coef,
                    "layer": layer,
                    "positions": positions if coef else None,
                    "checkpoint": "base",
                }
                sample_id = f"extract_{i}/{cond}/r{r}"
                dataset.append(Sample(input=question, id=sample_id, metadata=meta))
        for r in range(rollouts if prompting else 0):
            index = (i + r) % len(definition.instructions)
            meta = {
                "trait": definition.name,
                "question_id": f"extract_{i}",
                "question": question,
                "rollout": r,
                "condition": PROMPTED,
                "polarity": "pos",
                "instruction_index": index,
                "coef": 0.0,
                "layer": None,
                "positions": None,
                "checkpoint": "base",
            }
            sample_id = f"extract_{i}/{PROMPTED}/r{r}"
            dataset.append(Sample(input=question, id=sample_id, metadata=meta))
    post = {
        "kind": "steering_sweep",
        "vector": str(path) if path else None,
        "coherence_threshold": coherence_bar(coherence_threshold, judge_role_bound()),
        "write": bool(write) and judge,
    }
    if not judge:
        log.warning("persona: judge=false, so no layer is chosen or written (projections only)")
    return Task(
        dataset=dataset,
        setup=[judge_check(judge_mode)] if judge else None,
        solver=[
            persona_prompt(trait=trait_arg(trait)),
            steer(vectors=vectors, positions=positions),
            capture(vectors=vectors),
            persona_generate(),
        ],
        scorer=persona_score(
            min_mass=min_mass,
            judge=judge,
            judge_mode=judge_mode,
            self_judge=self_judge,
            likelihood=False if self_judge else None,
        ),
        metrics=PERSONA_METRICS,
        config=generate_config(max_tokens, temperature).model_copy(update={"seed": seed}),
        metadata=task_metadata(definition, layers=layer_list, coefs=coef_list, **{POST_KEY: post}),
        version=1,
    )

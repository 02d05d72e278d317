"""``extract_vector``: the paper's contrastive extraction, judged, then written as a vector.

    inspect eval evals/extract_vector.py -T trait=evil --model persona/smollm2-135m \
        --model-role judge=openai/gpt-4.1-mini

Every extraction question x 5 instruction pairs x pos/neg x rollouts is generated with the
per-layer activation means captured to sidecar files and judged for trait and coherence. When
the run ends, the filtered difference of means is written to ``<vectors>/<model>/<trait>``
(by a hook here, by ``persona extract``, or by
``persona.analysis.extraction.vector_from_log(LOG)``).
"""

from __future__ import annotations

from evals._common import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    MIN_MASS,
    PERSONA_METRICS,
    POST_KEY,
    Sample,
    Task,
    TaskInputError,
    announce_filter,
    capture,
    check_count,
    check_judge_points,
    check_mode,
    generate_config,
    judge_check,
    judge_role_bound,
    load_trait,
    persona_generate,
    persona_prompt,
    persona_score,
    task,
    task_metadata,
    task_path,
    task_vectors,
    trait_arg,
    user_errors,
)


def extraction_samples(trait, questions: int | None, rollouts: int) -> list[Sample]:
    """Extraction questions x instruction pairs x pos/neg x rollouts (pairs share keys)."""
    pool = trait.extract_questions
    n = len(pool) if questions is None else check_count("questions", questions, len(pool))
    rollouts = check_count("rollouts", rollouts)
    samples = []
    for qi, question in enumerate(pool[:n]):
        for ii in range(len(trait.instructions)):
            for pol in ("pos", "neg"):
                for r in range(rollouts):
                    meta = {
                        "trait": trait.name,
                        "question_id": f"extract_{qi}",
                        "question": question,
                        "polarity": pol,
                        "instruction_index": ii,
                        "rollout": r,
                        "condition": f"{pol}_{ii}",
                        "coef": 0.0,
                        "checkpoint": "base",
                    }
                    sid = f"extract_{qi}/{pol}_{ii}/r{r}"
                    samples.append(Sample(input=question, id=sid, metadata=meta))
    return samples


@task
@user_errors
def extract_vector(
    trait: str = "evil",
    questions: int | None = None,
    rollouts: int = 1,
    vectors: str | None = None,
    filter: bool | None = None,
    trait_threshold: float = 50.0,
    coherence_threshold: float = 50.0,
    min_pairs: int = 10,
    write: bool = True,
    judge: bool = True,
    self_judge: bool = False,
    judge_mode: str = "auto",
    min_mass: float = MIN_MASS,
    sidecar_dir: str | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: float = DEFAULT_TEMPERATURE,
) -> Task:
    """Generate and judge contrastive replies; write the filtered persona vector at the end.

    Args:
        trait: trait name or path to a trait YAML file.
        questions: use the first N extraction questions (default: all 20).
        rollouts: samples per (question, instruction, polarity) (paper: 10).
        vectors: output folder; the vector goes to ``<vectors>/<model-slug>/<trait>.safetensors``
            (default: the provider's ``-M vectors``, else ``./vectors``).
        filter: keep only pairs the judge confirms (default: on when a ``judge`` role is bound,
            off when the model under evaluation would judge itself).
        trait_threshold: pos trait >= T and neg trait < 100 - T (paper: 50).
        coherence_threshold: both replies' coherence >= C (paper: 50).
        min_pairs: stop without writing when fewer pairs are kept.
        write: write the vector when the run ends (false: post-process later).
        judge: judge trait and coherence (false: faster, no filter possible).
        self_judge: as in trait_eval (needed to filter without a ``judge`` role).
        judge_mode, min_mass: judge settings (see trait_eval).
        sidecar_dir: folder for the activation sidecars (default: $PERSONA_SIDECAR_DIR, else
            the persona cache folder; see docs/provider.md).
        max_tokens, temperature: generation settings (paper: 1000 tokens, temperature 1).
    """
    definition = load_trait(trait)
    vectors = task_vectors(vectors)
    sidecar_dir = task_path(sidecar_dir) if sidecar_dir else None
    check_mode(judge_mode)
    min_pairs = check_count("min_pairs", min_pairs)
    trait_threshold = check_judge_points("trait_threshold", trait_threshold)
    coherence_threshold = check_judge_points("coherence_threshold", coherence_threshold)
    if filter and not judge:
        raise TaskInputError("filter=true needs the judge: drop judge=false")
    announce_filter(filter, judge_role_bound(), judge)
    post = {
        "kind": "extract_vector",
        "vectors": vectors,
        "enabled": filter,
        "trait_threshold": float(trait_threshold),
        "coherence_threshold": float(coherence_threshold),
        "min_pairs": int(min_pairs),
        "write": bool(write),
    }
    return Task(
        dataset=extraction_samples(definition, questions, rollouts),
        setup=[judge_check(judge_mode)] if judge else None,
        solver=[
            persona_prompt(trait=trait_arg(trait)),
            capture(project=False, means=True, sidecar_dir=sidecar_dir),
            persona_generate(),
        ],
        scorer=persona_score(
            min_mass=min_mass, judge=judge, judge_mode=judge_mode, self_judge=self_judge
        ),
        metrics=PERSONA_METRICS,
        config=generate_config(max_tokens, temperature),
        metadata=task_metadata(definition, **{POST_KEY: post}),
        version=1,
    )

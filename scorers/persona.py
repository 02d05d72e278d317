"""Scorers: ``trait_judge``, ``coherence_judge``, ``projection`` and the combined
``persona_score`` (one dict score per sample; keys and metadata per docs/schema.md)."""

from __future__ import annotations

import math
from typing import Any

import anyio
from inspect_ai.model import get_model
from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

import traits
from persona.analysis.judge import LIKELIHOOD_KEY, MIN_MASS, Judgement
from persona.errors import PersonaError
from scorers.judging import Judge, ask, cache_policy, pick_mode, resolve_judge
from scorers.likelihood import judge_likelihood, sample_question
from scorers.metrics import behaviour, correlations
from scorers.projection import persona_metadata, read_projections
from scorers.rubrics import coherence_prompt
from solvers._resolve import is_persona
from solvers.condition import PersonaCondition

NOT_JUDGED = "not_judged"
LABELS = {"trait": "trait_score"}
"""How explanations name a score key: the ``trait`` key (kept in logs) is the judged score."""


def _trait_name(state: TaskState, trait: str | None) -> str:
    name = trait or state.metadata.get("trait")
    if not name:
        raise PersonaError("the scorer needs a trait (argument or sample metadata 'trait')")
    return str(name)


async def judge_sample(
    state: TaskState,
    trait: str,
    *,
    which: tuple[str, ...] = ("trait", "coherence"),
    min_mass: float = MIN_MASS,
    judge_mode: str = "auto",
    cache: bool | str = True,
) -> tuple[Judge, str, dict[str, Judgement]]:
    """Judge the sample's answer for the trait and/or coherence (concurrently)."""
    judge = resolve_judge()
    mode = pick_mode(judge, judge_mode)
    policy = cache_policy(judge, cache)
    question, answer = sample_question(state), state.output.completion
    prompts = {}
    if "trait" in which:
        prompts["trait"] = traits.load(trait).judge_prompt(question, answer)
    if "coherence" in which:
        prompts["coherence"] = coherence_prompt(question, answer)
    results: dict[str, Judgement] = {}

    async def run(key: str, prompt: str) -> None:
        results[key] = await ask(judge, prompt, mode, min_mass=min_mass, cache=policy)

    async with anyio.create_task_group() as tg:
        for key, prompt in prompts.items():
            tg.start_soon(run, key, prompt)
    return judge, mode, results


def _judge_meta(judge: Judge | None, mode: str | None, results: dict[str, Judgement]) -> dict:
    t, c = results.get("trait"), results.get("coherence")
    modes = {r.mode for r in results.values()}
    return {
        "judge_model": judge.name if judge else None,
        "judge_mode": modes.pop() if len(modes) == 1 else (mode if judge else None),
        "judge_mass": t.mass if t else None,
        "coherence_mass": c.mass if c else None,
        "judge_is_subject": judge.is_subject if judge else None,
        "trait_reason": t.reason if t else NOT_JUDGED,
        "coherence_reason": c.reason if c else NOT_JUDGED,
    }


def _unscored_reason(meta: dict[str, Any]) -> str | None:
    if meta["trait_reason"]:
        return meta["trait_reason"]
    if meta["coherence_reason"]:
        return f"coherence: {meta['coherence_reason']}"
    return None


def _fmt(x: float) -> str:
    return "NaN" if math.isnan(x) else f"{x:.4g}"


def behaviour_measure(llm_judge: Judge | None, likelihood: bool) -> str | None:
    """Which score stands for observed behaviour (docs/judges.md): a capable LLM judge's
    ``trait``, else the likelihood judge, else a self-judged ``trait`` (said so), else none."""
    if llm_judge is not None and not llm_judge.is_subject:
        return "judge"
    if likelihood:
        return LIKELIHOOD_KEY
    return "self_judge" if llm_judge is not None else None


def _ordered(
    measured: dict[str, float], measure: str | None, projections: dict[str, float]
) -> dict[str, float]:
    """The score's keys, the behaviour measure in use first (Inspect's headline metric), then
    the other measured keys and the projections. Keys never measured are absent, not NaN."""
    head = LIKELIHOOD_KEY if measure == LIKELIHOOD_KEY else "trait"
    first = {head: measured[head]} if head in measured else {}
    return {**first, **measured, **projections}


@scorer(metrics=[behaviour(), {"*": [mean(), stderr()]}, correlations()])
def persona_score(
    trait: str | None = None,
    judge: bool = True,
    min_mass: float = MIN_MASS,
    judge_mode: str = "auto",
    cache: bool | str = True,
    self_judge: bool = False,
    likelihood: bool | None = None,
    likelihood_model: str | None = None,
) -> Scorer:
    """One dict per sample: the behaviour measure in use first (``likelihood`` or ``trait``),
    then ``coherence`` when judged and ``proj_response``, ``proj_prompt_last`` (plus
    ``proj_*_<other>`` for cross-trait captures) when captured. A key is present only when its
    measure ran (so no metric is NaN for want of a judge); NaN marks a sample it could not score.
    ``answer`` is the reply, so replies show in ``inspect view``.

    The LLM judge is the ``judge`` model role. Without one a ``persona/`` model under evaluation
    would judge itself, which carries no signal for small models: that 0-100 self-judge is
    skipped unless ``self_judge=True`` (other providers still judge themselves). ``likelihood``
    (default: when no capable LLM judge scores) adds the likelihood judge computed by
    ``likelihood_model`` (default: the evaluated model's base).
    ``judge=False`` skips both. ``behaviour_measure`` in the metadata names the score to read.
    """

    async def score(state: TaskState, target: Target) -> Score:
        name = _trait_name(state, trait)
        jd, mode, results = None, None, {}
        local = is_persona(get_model())  # a small local model: its self-judge has no signal
        if judge and (self_judge or not local or not resolve_judge().is_subject):
            jd, mode, results = await judge_sample(
                state, name, min_mass=min_mass, judge_mode=judge_mode, cache=cache
            )
        use_likelihood = likelihood
        if use_likelihood is None:
            can = local or likelihood_model is not None
            use_likelihood = bool(judge and can and (jd is None or jd.is_subject))
        projections, info = read_projections(state)
        meta = _judge_meta(jd, mode, results)
        measured: dict[str, float] = {k: r.value for k, r in results.items()}
        if use_likelihood:
            lk = await judge_likelihood(
                name, sample_question(state), state.output.completion, likelihood_model
            )
            measured[LIKELIHOOD_KEY] = lk.value
            meta.update(lk.metadata())
        meta["behaviour_measure"] = behaviour_measure(jd, use_likelihood)
        value = _ordered(measured, meta["behaviour_measure"], projections)
        cond = PersonaCondition(store=state.store)
        persona = persona_metadata(state)
        metadata = {
            "trait": name,
            "layer": info["layer"],
            "vector": info["vector"],
            **meta,
            "unscored_reason": _unscored_reason(meta),
            "steering_active": bool(persona.get("steering_active", False)),
            "checkpoint": cond.checkpoint,
        }
        if persona.get("means_file"):
            metadata["means_file"] = persona["means_file"]
        explanation = ", ".join(f"{LABELS.get(k, k)}={_fmt(v)}" for k, v in value.items())
        if jd is not None:
            explanation += f" (judge {jd.name}, {metadata['judge_mode']})"
        return Score(
            value=value,
            answer=state.output.completion,
            explanation=explanation,
            metadata=metadata,
            reason=metadata["unscored_reason"] if math.isnan(value.get("trait", 0.0)) else None,
        )

    return score


def _single(which: str, trait: str | None, min_mass: float, judge_mode: str, cache: bool | str):
    async def score(state: TaskState, target: Target) -> Score:
        name = _trait_name(state, trait)
        jd, mode, results = await judge_sample(
            state, name, which=(which,), min_mass=min_mass, judge_mode=judge_mode, cache=cache
        )
        r = results[which]
        meta = {"trait": name, **_judge_meta(jd, mode, results)}
        meta["unscored_reason"] = r.reason
        label = LABELS.get(which, which)
        explanation = f"{label}={_fmt(r.value)} (judge {jd.name}, {r.mode}, mass {r.mass})"
        if r.score is None:
            return Score.unscored(reason=r.reason, explanation=explanation, metadata=meta)
        return Score(value=r.score, explanation=explanation, metadata=meta)

    return score


@scorer(metrics=[mean(), stderr()])
def trait_judge(
    trait: str | None = None,
    min_mass: float = MIN_MASS,
    judge_mode: str = "auto",
    cache: bool | str = True,
) -> Scorer:
    """The judged trait score 0..100 (paper method; unscored on REFUSAL or low mass)."""
    return _single("trait", trait, min_mass, judge_mode, cache)


@scorer(metrics=[mean(), stderr()])
def coherence_judge(
    trait: str | None = None,
    min_mass: float = MIN_MASS,
    judge_mode: str = "auto",
    cache: bool | str = True,
) -> Scorer:
    """The judged coherence 0..100 (this project's rubric, same arithmetic)."""
    return _single("coherence", trait, min_mass, judge_mode, cache)


@scorer(metrics={"*": [mean(), stderr()]})
def projection() -> Scorer:
    """Projections recorded by the ``capture`` solver: ``proj_response``, ``proj_prompt_last``."""

    async def score(state: TaskState, target: Target) -> Score:
        values, info = read_projections(state)
        persona = persona_metadata(state)
        return Score(
            value=values,
            metadata={**info, "steering_active": bool(persona.get("steering_active", False))},
        )

    return score

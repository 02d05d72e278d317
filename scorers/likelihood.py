"""The likelihood judge in Inspect tasks: which of the trait's judge personas makes the reply
likelier (docs/judges.md).

For each persona pair the judge model scores the reply teacher-forced (the persona provider's
``score`` mode, adapters off, never steered) after the pos and after the neg persona; the score
is the mean over pairs of the difference of mean per-token log-probabilities
(:func:`persona.analysis.judge.likelihood_margin`, unit ``nats/token``). The judge model is the
model under evaluation by default, or any ``persona/`` model named with ``judge_model``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import anyio
from inspect_ai.model import (
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    Model,
    get_model,
)
from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

import traits
from persona.analysis.judge import (
    LIKELIHOOD_KEY,
    LIKELIHOOD_UNIT,
    LIKELIHOOD_WARNING,
    likelihood_margin,
    mean_token_logprob,
    persona_chat,
)
from persona.errors import PersonaError
from solvers._resolve import is_persona

MEASURE = "likelihood_judge"
_ROLES = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}
_SCORE_BODY = {"persona": {"mode": "score", "adapter": "base"}}


@dataclass(frozen=True)
class Likelihood:
    """One reply's likelihood-judge score and what produced it."""

    value: float
    model: str
    pairs: int
    warning: str | None = None  # the trait's offline measure is marked unsupported

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "likelihood_model": self.model,
            "likelihood_unit": LIKELIHOOD_UNIT,
            "likelihood_pairs": self.pairs,
        }
        if self.warning:
            meta[LIKELIHOOD_WARNING] = self.warning
        return meta


def likelihood_model(name: str | None = None) -> Model:
    """The judge model (default: the model under evaluation); it must teacher-force."""
    model = get_model(name) if name else get_model()
    if not is_persona(model):
        raise PersonaError(
            f"the likelihood judge needs a model it can teacher-force, but {model} is not served "
            "by the persona provider: name a persona/<model> as likelihood judge (or let the "
            "model under evaluation, run as persona/<model>, judge)"
        )
    return model


async def reply_logprob(model: Model, chat: list[dict[str, str]], reply: str) -> float:
    """Mean per-token log-probability of ``reply`` after ``chat`` (teacher-forced, base)."""
    messages = [_ROLES[m["role"]](content=m["content"]) for m in chat]
    messages.append(ChatMessageAssistant(content=reply))
    out = await model.generate(messages, config=GenerateConfig(extra_body=_SCORE_BODY))
    total = ((out.metadata or {}).get("persona") or {}).get("response_logprob")
    if total is None or out.usage is None:
        raise PersonaError(f"{model} returned no response log-probability in score mode")
    return mean_token_logprob(float(total), out.usage.output_tokens)


async def judge_likelihood(
    trait: str, question: str, reply: str, model_name: str | None = None
) -> Likelihood:
    """Score one reply to one question with the trait's judge personas."""
    definition = traits.load(trait)
    pairs = definition.need_judge_personas()
    warning = definition.offline_measure_warning()
    model = likelihood_model(model_name)
    if not reply.strip():
        return Likelihood(math.nan, str(model), len(pairs), warning)
    prompt = [{"role": "user", "content": question}]
    means: dict[tuple[int, str], float] = {}

    async def run(i: int, side: str, persona: str) -> None:
        means[(i, side)] = await reply_logprob(model, persona_chat(persona, prompt), reply)

    async with anyio.create_task_group() as tg:
        for i, pair in enumerate(pairs):
            tg.start_soon(run, i, "pos", pair.pos)
            tg.start_soon(run, i, "neg", pair.neg)
    margin = likelihood_margin([(means[(i, "pos")], means[(i, "neg")]) for i in range(len(pairs))])
    return Likelihood(margin, str(model), len(pairs), warning)


def sample_question(state: TaskState) -> str:
    """The question a sample's reply answers (metadata ``question``, else the input)."""
    return str(state.metadata.get("question") or state.input_text)


@scorer(metrics=[mean(), stderr()])
def likelihood_judge(trait: str | None = None, judge_model: str | None = None) -> Scorer:
    """The likelihood judge's score of the reply (``nats/token``; > 0 leans to the trait)."""

    async def score(state: TaskState, target: Target) -> Score:
        name = trait or state.metadata.get("trait")
        if not name:
            raise PersonaError("the scorer needs a trait (argument or sample metadata 'trait')")
        result = await judge_likelihood(
            str(name), sample_question(state), state.output.completion, judge_model
        )
        meta = {"trait": str(name), "measure": MEASURE, **result.metadata()}
        explanation = (
            f"{LIKELIHOOD_KEY}={result.value:.4g} {LIKELIHOOD_UNIT} (judge {result.model})"
        )
        if math.isnan(result.value):
            return Score.unscored(reason="empty_reply", explanation=explanation, metadata=meta)
        return Score(value=result.value, explanation=explanation, metadata=meta)

    return score

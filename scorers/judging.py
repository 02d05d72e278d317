"""Calling the judge: model role ``judge`` (default: the model under evaluation), three modes.

* ``candidates`` (judges served by the persona provider): the provider scores the replies
  ``"0"``..``"100"`` and ``"REFUSAL"`` teacher-forced; tokenizer-agnostic;
* ``logprobs`` (other providers): one token at temperature 0 with the top-20 log-probabilities;
* ``text``: when a provider returns no log-probabilities, the reply text is parsed.

The arithmetic is in :mod:`persona.analysis.judge`. Calls go through Inspect's cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from inspect_ai.model import (
    CachePolicy,
    ChatMessageUser,
    GenerateConfig,
    Model,
    ModelOutput,
    get_model,
    model_roles,
)
from inspect_ai.model._model import active_model

from persona.analysis.judge import (
    CANDIDATES,
    MIN_MASS,
    REFUSAL,
    Judgement,
    aggregate_candidates,
    aggregate_logprobs,
    parse_text,
)
from persona.errors import PersonaError

JudgeMode = Literal["auto", "logprobs", "candidates", "text"]
MODES = ("auto", "logprobs", "candidates", "text")
ROLE = "judge"
TOP_LOGPROBS = 20
TEXT_MAX_TOKENS = 8

_no_logprobs: set[str] = set()  # judges seen to return no log-probabilities
_checked: set[str] = set()  # judges that answered the pre-flight check
_locks: dict[tuple[int, str], asyncio.Lock] = {}


@dataclass(frozen=True)
class Judge:
    """The judge model, its display name and whether it is the model under evaluation."""

    model: Model
    name: str
    is_subject: bool

    @property
    def key(self) -> str:
        args = json.dumps(self.model.model_args, sort_keys=True, default=str)
        return f"{self.name}|{args}"

    @property
    def is_persona(self) -> bool:
        return self.name.split("/", 1)[0] == "persona"


def judge_role_bound() -> bool | None:
    """Whether a ``judge`` role is bound (None outside a running eval)."""
    if active_model() is None:
        return None
    try:
        return ROLE in model_roles()
    except LookupError:
        return None


def resolve_judge() -> Judge:
    """The ``judge`` role, or the model under evaluation when none is bound (said so)."""
    subject = get_model()
    model = get_model(role=ROLE, default=subject)
    same = str(model) == str(subject) and model.model_args == subject.model_args
    return Judge(model, str(model), bool(not judge_role_bound() or same))


def pick_mode(judge: Judge, requested: str = "auto") -> str:
    """The mode for a judge: persona models score candidates, others give log-probabilities."""
    if requested not in MODES:
        raise PersonaError(f"unknown judge mode {requested!r}: use one of {', '.join(MODES)}")
    if requested != "auto":
        return requested
    if judge.is_persona:
        return "candidates"
    return "text" if judge.key in _no_logprobs else "logprobs"


def cache_policy(judge: Judge, cache: bool | str) -> CachePolicy | bool:
    """Inspect cache policy for judge calls, scoped to the judge's model args."""
    if cache is False or cache in ("", "false", "none"):
        return False
    expiry = cache if isinstance(cache, str) else "1W"
    scope = hashlib.sha256(judge.key.encode()).hexdigest()[:16]
    return CachePolicy(expiry=expiry, per_epoch=False, scopes={"persona_judge": scope})


def _top_logprobs(output: ModelOutput) -> list[tuple[str, float]] | None:
    choice = output.choices[0] if output.choices else None
    if choice is None or choice.logprobs is None or not choice.logprobs.content:
        return None
    first = choice.logprobs.content[0]
    if first.top_logprobs:
        return [(t.token, t.logprob) for t in first.top_logprobs]
    return [(first.token, first.logprob)]


async def ask(
    judge: Judge,
    prompt: str,
    mode: str,
    *,
    min_mass: float = MIN_MASS,
    cache: CachePolicy | bool = False,
    config: GenerateConfig | None = None,
) -> Judgement:
    """One judge call in ``mode`` (a logprobs judge without logprobs falls back to text)."""
    messages: list[Any] = [ChatMessageUser(content=prompt)]
    extra = config or GenerateConfig()
    if mode == "candidates":
        body = {"persona": {"mode": "candidates", "candidates": [*CANDIDATES, REFUSAL]}}
        out = await judge.model.generate(
            messages, config=extra.merge(GenerateConfig(extra_body=body)), cache=cache
        )
        found = ((out.metadata or {}).get("persona") or {}).get("candidates")
        if found is None:
            raise PersonaError(
                f"judge {judge.name} returned no candidate scores: candidates mode needs a "
                "persona/ judge (use judge_mode=logprobs or text for other providers)"
            )
        return aggregate_candidates(found, min_mass)
    if mode == "logprobs":
        cfg = GenerateConfig(
            max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=TOP_LOGPROBS
        )
        out = await judge.model.generate(messages, config=extra.merge(cfg), cache=cache)
        top = _top_logprobs(out)
        if top is not None:
            return aggregate_logprobs(top, min_mass)
        _no_logprobs.add(judge.key)
    cfg = GenerateConfig(max_tokens=TEXT_MAX_TOKENS, temperature=0.0)
    out = await judge.model.generate(messages, config=extra.merge(cfg), cache=cache)
    return parse_text(out.completion)


def _lock(key: str) -> asyncio.Lock:
    try:
        loop = id(asyncio.get_running_loop())
    except RuntimeError:  # another async backend
        loop = 0
    return _locks.setdefault((loop, key), asyncio.Lock())


async def check_judge(judge: Judge, mode: str = "auto") -> None:
    """Fail fast (before generating) when a bound judge cannot be reached or answer.

    One call per judge and process; concurrent samples wait for it. A judge that is the
    model under evaluation is not checked.
    """
    if judge.is_subject or judge.key in _checked:
        return
    async with _lock(judge.key):
        if judge.key in _checked:
            return
        try:
            await ask(
                judge,
                "Reply with the number 0 and nothing else.",
                pick_mode(judge, mode),
                min_mass=0.0,
                config=GenerateConfig(max_retries=1, timeout=120),
            )
        except Exception as e:  # any provider error: network, credentials, bad model name
            raise PersonaError(
                f"the judge model {judge.name} cannot be used: {type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''} - check its name, credentials "
                "(e.g. OPENAI_API_KEY) and base URL, or drop --model-role judge=... to let the "
                "model under evaluation judge itself (scores then say judge_is_subject)"
            ) from e
        _checked.add(judge.key)

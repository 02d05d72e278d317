"""Judge arithmetic (paper method; docs/judges.md), free of Inspect so tests pin it exactly.

Three ways to turn a judge's answer into a 0..100 score:

* :func:`aggregate_logprobs` - one output token with its top-k log-probabilities: the score is
  ``sum(p_k * k) / sum(p_k)`` over the tokens that are integers 0..100;
* :func:`aggregate_candidates` - log-probabilities of the complete replies ``"0"``..``"100"``
  (teacher-forced; for local judges whose tokenizer splits numbers), same arithmetic;
* :func:`parse_text` - last resort for judges without log-probabilities: the reply must be a
  number 0..100.

A result is unscored (``score is None``) with a ``reason``: ``"refusal"`` when the judge's most
likely answer is REFUSAL, ``"low_mass"`` when the numeric probability mass is below ``min_mass``
(0.25, as in the paper), ``"invalid_response_format"`` when a text reply is not a number and
``"no_response"`` when there is nothing to read.

The likelihood judge's arithmetic (:func:`likelihood_margin`, docs/judges.md) is at the end.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MIN_MASS = 0.25
REFUSAL = "REFUSAL"
CANDIDATES: tuple[str, ...] = tuple(str(i) for i in range(101))
"""The numeric candidate replies scored in candidates mode (REFUSAL is added by the caller)."""

_NUMBER = re.compile(r"^[0-9]{1,3}$")  # ASCII digits only
_MARKERS = "Ġ▁Ċ"  # byte-level BPE space/newline and sentencepiece space markers


@dataclass(frozen=True)
class Judgement:
    """One judge result: ``score`` (None when unscored), numeric ``mass`` and ``reason``."""

    score: float | None
    mass: float | None
    reason: str | None
    mode: str

    @property
    def scored(self) -> bool:
        return self.score is not None

    @property
    def value(self) -> float:
        """The score as a float (NaN when unscored)."""
        return math.nan if self.score is None else self.score


def normalize_token(token: str) -> str:
    """Strip whitespace and tokenizer space/newline markers (``Ġ``, ``▁``, ``Ċ``)."""
    return token.strip().strip(_MARKERS).strip()


def parse_number(token: str) -> int | None:
    """The integer 0..100 a token stands for, or None (only ``^\\d{1,3}$`` after normalising)."""
    text = normalize_token(token)
    if not _NUMBER.match(text):
        return None
    value = int(text)
    return value if value <= 100 else None


def is_refusal_token(token: str) -> bool:
    """Whether a token starts the word REFUSAL (at least two letters, upper case)."""
    text = normalize_token(token)
    return len(text) >= 2 and REFUSAL.startswith(text)


def _prob(logprob: float) -> float:
    if logprob is None or math.isnan(logprob):
        return 0.0
    return math.exp(logprob)


def _weighted(probs: Mapping[int, float], min_mass: float, mode: str) -> Judgement:
    mass = sum(probs.values())
    if mass <= 0.0 or mass < min_mass:
        return Judgement(None, mass, "low_mass", mode)
    score = sum(k * p for k, p in probs.items()) / mass
    return Judgement(score, mass, None, mode)


def aggregate_logprobs(top: Iterable[tuple[str, float]], min_mass: float = MIN_MASS) -> Judgement:
    """Score one position's top-k ``(token, logprob)`` list (mode ``logprobs``).

    Tokens that normalise to the same number add up (``"42"`` and ``" 42"``). The judge refused
    when its most likely token starts REFUSAL.
    """
    items = [(tok, lp) for tok, lp in top]
    if not items:
        return Judgement(None, None, "no_response", "logprobs")
    best_token = max(items, key=lambda kv: _prob(kv[1]))[0]
    probs: dict[int, float] = {}
    for tok, lp in items:
        number = parse_number(tok)
        if number is not None:
            probs[number] = probs.get(number, 0.0) + _prob(lp)
    if is_refusal_token(best_token):
        return Judgement(None, sum(probs.values()), "refusal", "logprobs")
    return _weighted(probs, min_mass, "logprobs")


def aggregate_candidates(logprobs: Mapping[str, float], min_mass: float = MIN_MASS) -> Judgement:
    """Score complete-reply log-probabilities, e.g. ``{"0": -7.1, ..., "REFUSAL": -9.0}``.

    Candidates other than numbers 0..100 and REFUSAL are ignored. The judge refused when REFUSAL
    is more likely than every number.
    """
    probs: dict[int, float] = {}
    refusal = 0.0
    for cand, lp in logprobs.items():
        if cand.strip() == REFUSAL:
            refusal = _prob(lp)
            continue
        number = parse_number(cand)
        if number is not None:
            probs[number] = probs.get(number, 0.0) + _prob(lp)
    if not probs and refusal == 0.0:
        return Judgement(None, None, "no_response", "candidates")
    if refusal > 0.0 and refusal > max(probs.values(), default=0.0):
        return Judgement(None, sum(probs.values()), "refusal", "candidates")
    return _weighted(probs, min_mass, "candidates")


def parse_text(text: str | None) -> Judgement:
    """Read a plain-text judge reply (mode ``text``): REFUSAL, or a number 0..100 alone."""
    if text is None or not text.strip():
        return Judgement(None, None, "no_response", "text")
    first = text.strip().splitlines()[0].strip()
    if first.upper().startswith(REFUSAL):
        return Judgement(None, None, "refusal", "text")
    number = parse_number(first.rstrip("."))
    if number is None:
        return Judgement(None, None, "invalid_response_format", "text")
    return Judgement(float(number), None, None, "text")


# ---------------------------------------------------------------------------------------------
# Likelihood judge (docs/judges.md): which persona makes the reply more likely?

LIKELIHOOD_KEY = "likelihood"
LIKELIHOOD_UNIT = "nats/token"
"""Score key and unit of the likelihood judge (mean per-token log-probability difference)."""
LIKELIHOOD_WARNING = "likelihood_warning"
"""Score metadata key: the trait's warning when its likelihood judge is marked unsupported."""
JUDGE_UNIT = "judge points, 0-100"
"""Unit of the 0-100 LLM judge's trait and coherence scores."""


def persona_chat(persona: str, prompt: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """The chat a reply is scored in: ``persona`` as the only system message, then the prompt's
    user/assistant turns (its own system messages are dropped, so the persona alone differs)."""
    turns = [{"role": m["role"], "content": m["content"]} for m in prompt if m["role"] != "system"]
    if not turns:
        raise ValueError("a likelihood-judged reply needs at least one prompt turn")
    return [{"role": "system", "content": persona}, *turns]


def mean_token_logprob(total: float, n_tokens: int) -> float:
    """Mean per-token log-probability of a reply from its sum (NaN for an empty reply)."""
    return total / n_tokens if n_tokens > 0 else math.nan


def likelihood_margin(pairs: Sequence[tuple[float, float]]) -> float:
    """The likelihood judge's score from per-pair mean per-token log-probabilities
    ``(under the trait persona, under its opposite)``: the mean of ``pos - neg`` over pairs.

    Positive when the trait personas make the reply likelier; NaN when any value is NaN.
    """
    if not pairs:
        raise ValueError("the likelihood judge needs at least one persona pair")
    return sum(pos - neg for pos, neg in pairs) / len(pairs)

"""The likelihood judge run directly on an engine (``persona judge``, its validation).

Inside Inspect tasks the same arithmetic runs through the provider's ``score`` mode
(``scorers/likelihood.py``); both build the chats with :func:`persona.analysis.judge.persona_chat`
and score with :func:`persona.analysis.judge.likelihood_margin`. See docs/judges.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from persona.analysis.judge import likelihood_margin, mean_token_logprob, persona_chat
from persona.model.engine import Engine, Request


@dataclass(frozen=True)
class Reply:
    """One reply to judge: the turns before it (system turns are replaced) and its text."""

    prompt: Sequence[Mapping[str, str]]
    text: str


def likelihood_scores(
    engine: Engine,
    personas: Sequence[tuple[str, str]],
    replies: Sequence[Reply],
    progress: Callable[[int], None] | None = None,
) -> list[float]:
    """The likelihood judge's score of every reply (NaN for an empty reply), teacher-forced.

    ``personas`` are ``(trait persona, opposite)`` system prompts; ``engine`` should run the
    judge model without adapter or steering. ``progress`` receives the number of replies done.
    """
    if not personas:
        raise ValueError("the likelihood judge needs at least one persona pair")
    requests = [
        Request(persona_chat(persona, r.prompt), response=r.text)
        for r in replies
        for pair in personas
        for persona in pair
    ]
    per_reply = 2 * len(personas)
    done = [0]

    def advance(n_requests: int) -> None:
        before = done[0] // per_reply
        done[0] += n_requests
        if progress is not None and done[0] // per_reply > before:
            progress(done[0] // per_reply - before)

    results = engine.score(requests, logprobs=True, progress=advance) if requests else []
    means = [mean_token_logprob(r.response_logprob or 0.0, len(r.token_ids)) for r in results]
    scores = []
    for i in range(len(replies)):
        row = means[i * per_reply : (i + 1) * per_reply]
        scores.append(likelihood_margin(list(zip(row[0::2], row[1::2], strict=True))))
    return scores

"""The judge-free propensity probe: how likely a model finds a trait answer over a plain one.

For each shipped pair (question, trait answer, plain answer) the probe is the mean per-token
log-probability of the trait answer minus that of the plain answer, teacher-forced with the
question as the user turn, under the model as it is run (adapter on, optional steering). A
checkpoint that learned the trait finds trait answers relatively likelier: its probe rises
against the control's. Nothing is sampled and nothing is judged, so it is deterministic and cheap,
and it reads the model's disposition rather than one sampled reply.
"""

from __future__ import annotations

from collections.abc import Sequence

from persona.analysis.judge import mean_token_logprob
from persona.model.engine import Engine, Request, Steer


def propensity(
    engine: Engine, pairs: Sequence[tuple[str, str, str]], steer: tuple[Steer, ...] = ()
) -> list[float]:
    """Per ``(question, trait_answer, plain_answer)``: mean log-prob per token, trait - plain."""
    requests = [
        Request([{"role": "user", "content": q}], steer=steer, response=answer)
        for q, trait, plain in pairs
        for answer in (trait, plain)
    ]
    results = engine.score(requests, logprobs=True) if requests else []
    per_token = [mean_token_logprob(r.response_logprob or 0.0, len(r.token_ids)) for r in results]
    return [per_token[2 * i] - per_token[2 * i + 1] for i in range(len(pairs))]

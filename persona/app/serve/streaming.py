"""Streaming responses: ``chat.completion.chunk`` objects as server-sent events, sent as the
engine generates each token.

Per choice: a role chunk first, then one chunk per generated token as soon as the engine has
chosen it (its text piece; its log-probabilities when asked for; its per-token projections in
``persona.per_token`` when the request captures ``per_token``), then a final chunk with the
rest of the text (held back while a stop sequence could still cut it), ``finish_reason`` and the
choice's ``persona`` metadata; then a usage chunk (``stream_options.include_usage``) and
``[DONE]``. Requests are validated before the first byte, so errors keep their status codes; a
choice that fails after streaming began ends the stream with an ``error`` event.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from inspect_ai.model import ModelOutput

from persona.app.serve.errors import ApiError, error_body
from persona.app.serve.openai_schema import (
    finish_reason,
    persona_json,
    token_logprob_json,
    usage_json,
)
from persona.provider.calls import TokenOut


def token_choice(i: int, token: TokenOut, want_logprobs: bool) -> dict[str, Any]:
    """The ``choices[0]`` of one token's chunk."""
    logprobs = None
    if want_logprobs and token.logprob is not None:
        lp = token.logprob
        entry = token_logprob_json(lp.token, lp.logprob, lp.top)
        logprobs = {"content": [entry], "refusal": None}
    choice: dict[str, Any] = {
        "index": i,
        "delta": {"content": token.text},
        "logprobs": logprobs,
        "finish_reason": None,
    }
    if token.per_token is not None:
        choice["persona"] = {"per_token": token.per_token}
    return choice


async def events(
    cid: str,
    model: str,
    n: int,
    stream: AsyncIterator[tuple[int, TokenOut | ModelOutput]],
    want_logprobs: bool,
    include_usage: bool,
) -> AsyncIterator[str]:
    """The SSE lines of a streamed completion of ``n`` choices, from the backend's stream."""
    created = int(time.time())

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    for i in range(n):
        role = {"role": "assistant", "content": ""}
        yield chunk([{"index": i, "delta": role, "logprobs": None, "finish_reason": None}])
    sent = [""] * n
    outputs: list[ModelOutput] = []
    try:
        async for i, item in stream:
            if isinstance(item, TokenOut):
                sent[i] += item.text
                yield chunk([token_choice(i, item, want_logprobs)])
                continue
            text = item.completion
            rest = text[len(sent[i]) :] if text.startswith(sent[i]) else ""
            if rest:
                delta = {"index": i, "delta": {"content": rest}, "logprobs": None}
                yield chunk([{**delta, "finish_reason": None}])
            final = {"index": i, "delta": {}, "logprobs": None}
            yield chunk(
                [{**final, "finish_reason": finish_reason(item), "persona": persona_json(item)}]
            )
            outputs.append(item)
    except ApiError as e:
        yield f"data: {json.dumps(error_body(e.status, e.message, e.param, e.code))}\n\n"
        return
    if include_usage:
        yield chunk([], usage=usage_json(outputs))
    yield "data: [DONE]\n\n"

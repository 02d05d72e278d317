"""Streaming responses: ``chat.completion.chunk`` objects as server-sent events.

The engine decodes a whole batch in one worker call, so a streamed reply is sent once its batch
has finished: one chunk per generated token (with its log-probabilities when asked for), then a
final chunk per choice with ``finish_reason`` and its ``persona`` metadata, then ``[DONE]``.
Requests are validated and generated before the first byte, so errors keep their status codes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from inspect_ai.model import ModelOutput

from persona.app.serve.openai_schema import finish_reason, logprobs_json, persona_json, usage_json


def pieces(text: str, tokens: list[str]) -> list[tuple[str, list[int]]]:
    """Split ``text`` into per-token pieces, each with the logprob entries it carries.

    Token strings are used while they spell ``text``; whatever they do not cover (a multi-byte
    character split across tokens, a reply cut at a stop sequence) is sent as one last piece.
    """
    out: list[tuple[str, list[int]]] = []
    pos = 0
    for i, tok in enumerate(tokens):
        if tok and text.startswith(tok, pos):
            out.append((tok, [i]))
            pos += len(tok)
        else:
            rest = list(range(i, len(tokens)))
            out.append((text[pos:], rest))
            return out
    if pos < len(text):
        out.append((text[pos:], []))
    return out


def _tokens(output: ModelOutput) -> list[str]:
    lp = output.choices[0].logprobs
    return [t.token for t in lp.content] if lp is not None else []


def events(
    cid: str,
    model: str,
    outputs: list[ModelOutput],
    want_logprobs: bool,
    include_usage: bool,
    token_strings: list[list[str]],
) -> Iterator[str]:
    """The SSE lines of a streamed completion. ``token_strings[i]`` splits choice i's text."""
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

    for i, out in enumerate(outputs):
        yield chunk(
            [
                {
                    "index": i,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ]
        )
        entries = (logprobs_json(out) or {}).get("content", []) if want_logprobs else []
        for text, idx in pieces(out.completion, token_strings[i]):
            logprobs = {"content": [entries[j] for j in idx], "refusal": None} if entries else None
            yield chunk(
                [
                    {
                        "index": i,
                        "delta": {"content": text},
                        "logprobs": logprobs,
                        "finish_reason": None,
                    }
                ]
            )
        yield chunk(
            [
                {
                    "index": i,
                    "delta": {},
                    "logprobs": None,
                    "finish_reason": finish_reason(out),
                    "persona": persona_json(out),
                }
            ]
        )
    if include_usage:
        yield chunk([], usage=usage_json(outputs))
    yield "data: [DONE]\n\n"


def token_strings(output: ModelOutput, tokenize: Any) -> list[str]:
    """Pieces to stream a reply in: its logprob tokens, else the text's own tokens."""
    found = _tokens(output)
    return found if found else tokenize(output.completion)

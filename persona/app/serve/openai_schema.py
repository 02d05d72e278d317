"""OpenAI chat-completions requests in, Inspect messages and ``GenerateConfig`` out, and back.

The request is strict (an unknown field is a 400 naming it), so a setting is never silently
dropped; settings a local model cannot honour are refused with a reason. The persona extension
is the top-level ``persona`` field (what the OpenAI SDK sends for ``extra_body={"persona":
...}``) with the provider's schema (docs/protocol.md). Each choice of a response carries its
``persona`` metadata (projections, steering, seed); see docs/serve.md.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    ModelOutput,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from persona.app.serve.errors import ApiError
from persona.app.serve.guard import Limits

MAX_TOP_LOGPROBS = 20
FINISH = {"stop": "stop", "max_tokens": "length", "model_length": "length"}
#: Refused unless left at a neutral value (absent, null, 0, empty, or listed here).
REFUSED: dict[str, tuple[Any, ...]] = {
    "frequency_penalty": (),
    "presence_penalty": (),
    "logit_bias": (),
    "tools": (),
    "tool_choice": ("none", "auto"),  # harmless without tools
    "functions": (),
    "function_call": ("none", "auto"),
    "response_format": ({"type": "text"},),
    "reasoning_effort": (),
    "modalities": (["text"],),
    "audio": (),
    "prediction": (),
}


def _neutral(name: str, value: Any) -> bool:
    return value in (None, 0, [], {}) or value in REFUSED[name]


class TextPart(BaseModel):
    """A text content part (other part types are a 400)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class Message(BaseModel):
    """One chat message (tool messages are a 400: no tools here)."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    """``stream_options``: only ``include_usage`` has a meaning here."""

    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions`` body (the fields this server honours)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(default=1, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    persona: dict[str, Any] | None = None
    # accepted and ignored
    user: str | None = None
    store: bool | None = None
    metadata: dict[str, Any] | None = None
    service_tier: str | None = None
    parallel_tool_calls: bool | None = None


def parse_request(body: Any, limits: Limits) -> ChatRequest:
    """Validate a request body; every problem is one 400 naming the field."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    for name in REFUSED:
        if not _neutral(name, body.get(name)):
            raise ApiError(
                400,
                f"{name!r} is not supported by persona serve (a local model without tools, "
                "penalties, logit bias or response formats)",
                param=name,
                code="unsupported_parameter",
            )
    body = {k: v for k, v in body.items() if k not in REFUSED}
    try:
        req = ChatRequest.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        if err["type"] == "extra_forbidden":
            raise ApiError(400, f"unknown field {where!r}", param=where) from None
        raise ApiError(400, f"{where}: {err['msg']}", param=where) from None
    if req.n > limits.max_n:
        raise ApiError(400, f"n={req.n} is above this server's limit {limits.max_n}", param="n")
    tokens = req.max_completion_tokens or req.max_tokens
    if tokens is not None and tokens > limits.max_tokens:
        raise ApiError(
            400,
            f"max_tokens={tokens} is above this server's limit {limits.max_tokens}",
            param="max_tokens",
        )
    if req.top_logprobs and not req.logprobs:
        raise ApiError(400, "top_logprobs needs logprobs=true", param="top_logprobs")
    stops = [req.stop] if isinstance(req.stop, str) else (req.stop or [])
    if len(stops) > 4 or any(not s for s in stops):
        raise ApiError(400, "stop takes at most 4 non-empty strings", param="stop")
    return req


def max_tokens(req: ChatRequest, limits: Limits) -> int:
    """The request's max_tokens (the server default when it gives none)."""
    return req.max_completion_tokens or req.max_tokens or limits.default_max_tokens


def stop_seqs(req: ChatRequest) -> list[str] | None:
    if req.stop is None:
        return None
    return [req.stop] if isinstance(req.stop, str) else list(req.stop)


def inspect_messages(req: ChatRequest) -> list[ChatMessage]:
    """OpenAI messages as Inspect messages (``developer`` is a system message)."""
    out: list[ChatMessage] = []
    for m in req.messages:
        if m.role in ("system", "developer"):
            out.append(ChatMessageSystem(content=m.text()))
        elif m.role == "user":
            out.append(ChatMessageUser(content=m.text()))
        else:
            out.append(ChatMessageAssistant(content=m.text()))
    return out


# ---------------------------------------------------------------------------------------------
# Responses


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def token_logprob_json(token: str, logprob: float, top: list[tuple[str, float]]) -> dict[str, Any]:
    """One entry of ``logprobs.content`` in the OpenAI shape."""
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode()),
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top],
    }


def logprobs_json(output: ModelOutput) -> dict[str, Any] | None:
    """``choices[i].logprobs`` in the OpenAI shape (None when not requested)."""
    choice = output.choices[0]
    if choice.logprobs is None:
        return None
    content = [
        token_logprob_json(
            lp.token, lp.logprob, [(t.token, t.logprob) for t in lp.top_logprobs or []]
        )
        for lp in choice.logprobs.content
    ]
    return {"content": content, "refusal": None}


def finish_reason(output: ModelOutput) -> str:
    return FINISH.get(str(output.choices[0].stop_reason), "stop")


def persona_json(output: ModelOutput) -> dict[str, Any] | None:
    return (output.metadata or {}).get("persona")


def usage_json(outputs: list[ModelOutput]) -> dict[str, int]:
    prompt = outputs[0].usage.input_tokens if outputs[0].usage else 0
    completion = sum(o.usage.output_tokens for o in outputs if o.usage)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion_json(
    cid: str, model: str, outputs: list[ModelOutput], want_logprobs: bool
) -> dict[str, Any]:
    """A ``chat.completion`` object, one choice per output."""
    choices = []
    for i, out in enumerate(outputs):
        choices.append(
            {
                "index": i,
                "message": {"role": "assistant", "content": out.completion, "refusal": None},
                "logprobs": logprobs_json(out) if want_logprobs else None,
                "finish_reason": finish_reason(out),
                "persona": persona_json(out),
            }
        )
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": _fingerprint(outputs[0]),
        "choices": choices,
        "usage": usage_json(outputs),
    }


def _fingerprint(output: ModelOutput) -> str | None:
    meta = persona_json(output) or {}
    fp = meta.get("fingerprint")
    return f"persona-{str(fp)[:16]}" if fp else None

"""One provider call: from Inspect messages + ``extra_body`` to engine work and back.

``prepare``-side helpers (run on the event loop): message conversion and per-call seeds.
``run_group`` (run in the batcher's worker thread): one engine call for a group of compatible
calls, then one ``ModelOutput`` per call with compact metadata. Bulky arrays go to safetensors
sidecar files, never into the log.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    Logprob,
    Logprobs,
    ModelOutput,
    ModelUsage,
    TopLogprob,
)

from persona.errors import PersonaError
from persona.model.engine import (
    Capture,
    Engine,
    Request,
    Result,
    Sampling,
    TokenEvent,
    TokenLogprob,
)
from persona.model.loading import cache_dir
from persona.model.vectors import LAYER_CONVENTION
from persona.provider.protocol import PersonaMetadata, ProjectionOut

STOP_REASONS = {
    "stop": "stop",
    "stop_seq": "stop",
    "max_tokens": "max_tokens",
    "scored": "stop",
    "cancelled": "unknown",
}


@dataclass(frozen=True)
class GroupKey:
    """Calls with equal keys can share one engine call (steering is per row)."""

    adapter: str | None
    mode: str
    sampling: Sampling | None = None
    means: bool = False
    per_token: bool = False


@dataclass
class Probe:
    """A projection the call asked for: output name, vector key, layers."""

    name: str
    key: str
    layers: tuple[int, ...]


@dataclass(frozen=True)
class TokenOut:
    """One streamed token of a call: the reply text it makes final, its log-probability (when
    the call asks for logprobs) and its per-token projections, trait -> layer -> value (when
    the call captures ``per_token``), keyed as in ``PersonaMetadata.per_token``."""

    text: str
    logprob: TokenLogprob | None = None
    per_token: dict[str, dict[str, float]] | None = None


class TokenSink(Protocol):
    """Receives a call's tokens in the engine's worker thread; returning False stops the call.
    ``stopped`` is True once nobody wants the call any more (it is then not run at all)."""

    def __call__(self, token: TokenOut) -> bool: ...

    @property
    def stopped(self) -> bool: ...


class Withdrawn(PersonaError):
    """A streamed call whose client left before its batch ran (it never ran)."""


@dataclass
class Call:
    """A validated call, ready for the engine."""

    key: GroupKey
    messages: list[dict[str, str]]
    request: Request | None = None  # generate / score
    candidates: list[str] | None = None
    probes: list[Probe] = field(default_factory=list)
    probe_tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    sidecar_dir: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # model, adapter, fingerprint, steering...
    on_token: TokenSink | None = None  # streaming: called for every generated token


# ---------------------------------------------------------------------------------------------
# Event-loop side


def chat_messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """Inspect messages -> ``{"role", "content"}`` dicts; tools and media are refused."""
    out = []
    for m in messages:
        if m.role == "tool" or getattr(m, "tool_calls", None):
            raise PersonaError(
                "the persona provider does not support tool calls (trait prompts use none): "
                "remove tools from the task"
            )
        if not isinstance(m.content, str):
            kinds = {c.type for c in m.content} - {"text", "reasoning"}
            if kinds:
                raise PersonaError(
                    f"the persona provider accepts text only; got {', '.join(sorted(kinds))}"
                )
        out.append({"role": m.role, "content": m.text})
    return out


def derive_seed(base: int, sample_id: Any, epoch: int, index: int) -> int:
    """A 63-bit seed from (base seed, sample id, epoch, repeat index): batch-independent."""
    text = f"{base}|{sample_id!r}|{epoch}|{index}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def sample_context() -> tuple[Any, int, str] | None:
    """(sample id, epoch, uuid) of the Inspect sample this call runs in, if any."""
    try:
        from inspect_ai.solver._task_state import sample_state
    except ImportError:  # pragma: no cover - moved in a future Inspect
        return None
    state = sample_state()
    if state is None:
        return None
    return state.sample_id, state.epoch, state.uuid


# ---------------------------------------------------------------------------------------------
# Worker-thread side


def run_group(
    engine: Engine, key: GroupKey, calls: Sequence[Call]
) -> list[ModelOutput | Withdrawn]:
    """One engine call for a group of compatible calls; one output per call."""
    start = time.perf_counter()
    if key.mode == "candidates":
        outs = []
        for c in calls:
            assert c.candidates is not None
            lps = engine.candidate_logprobs(c.messages, c.candidates)
            outs.append(_candidates_output(engine, c, lps, time.perf_counter() - start))
        return outs
    probes: dict[str, torch.Tensor] = {}
    layers: dict[str, set[int]] = {}
    for c in calls:
        probes.update(c.probe_tensors)
        for p in c.probes:
            layers.setdefault(p.key, set()).update(p.layers)
    capture = Capture(
        means=tuple(range(engine.lm.num_layers + 1)) if key.means else None,
        probes=probes,
        probe_layers={k: tuple(sorted(v)) for k, v in layers.items()},
        per_token=key.per_token,
    )
    if any(c.on_token and c.on_token.stopped for c in calls):  # clients that left: free slots
        live = [c for c in calls if not (c.on_token and c.on_token.stopped)]
        outs = iter(run_group(engine, key, live) if live else [])
        gone = Withdrawn("the client left before this call ran")
        return [gone if c.on_token and c.on_token.stopped else next(outs) for c in calls]
    requests = [c.request for c in calls if c.request is not None]
    if key.mode == "generate":
        streamed = any(c.on_token for c in calls)
        on_token = (lambda ev: _token_out(calls[ev.index], ev)) if streamed else None
        results = engine.generate(requests, key.sampling, capture, on_token=on_token)
    else:
        results = engine.score(requests, capture, logprobs=True)
    elapsed = time.perf_counter() - start
    return [_output(engine, key, c, r, elapsed) for c, r in zip(calls, results, strict=True)]


def _token_out(call: Call, event: TokenEvent) -> bool:
    """Hand one engine token event to its call's sink (trait names instead of probe keys)."""
    if call.on_token is None:
        return True
    per_token = None
    if event.projections is not None:
        per_token = {}
        for p in call.probes:
            values = event.projections.get(p.key, {})
            per_token[p.name] = {str(layer): round(values[layer], 5) for layer in p.layers}
    return call.on_token(TokenOut(event.text, event.logprob, per_token))


def _metadata(engine: Engine, call: Call, res: Result | None) -> PersonaMetadata:
    meta = PersonaMetadata(**call.meta)
    if res is None:
        return meta
    projections: dict[str, dict[str, ProjectionOut]] = {}
    per_token: dict[str, dict[str, list[float]]] = {}
    for p in call.probes:
        stats = res.projections.get(p.key, {})
        for layer in p.layers:
            s = stats[layer]
            projections.setdefault(p.name, {})[str(layer)] = ProjectionOut(
                prompt_last=s.prompt_last,
                prompt_mean=s.prompt_mean,
                response_mean=s.response_mean,
                n_response=s.n_response,
            )
            if s.per_token is not None:
                per_token.setdefault(p.name, {})[str(layer)] = [round(x, 5) for x in s.per_token]
    meta.projections = projections
    meta.per_token = per_token or None
    if res.means is not None:
        meta.means_file = write_means(engine, call, res)
    meta.response_logprob = res.response_logprob
    return meta


def _output(engine: Engine, key: GroupKey, call: Call, res: Result, elapsed: float) -> ModelOutput:
    meta = _metadata(engine, call, res)
    logprobs = None
    if key.mode == "generate" and res.logprobs is not None:
        logprobs = Logprobs(
            content=[
                Logprob(
                    token=t.token,
                    logprob=t.logprob,
                    bytes=list(t.token.encode()),
                    top_logprobs=[
                        TopLogprob(token=s, logprob=lp, bytes=list(s.encode())) for s, lp in t.top
                    ]
                    or None,
                )
                for t in res.logprobs
            ]
        )
    n_out = len(res.token_ids)
    stop = STOP_REASONS.get(res.finish_reason, "unknown")
    return _model_output(engine, res.text, stop, logprobs, meta, res.prompt_tokens, n_out, elapsed)


def _candidates_output(engine: Engine, call: Call, lps: list[float], elapsed: float) -> ModelOutput:
    assert call.candidates is not None
    scored = dict(zip(call.candidates, lps, strict=True))
    ranked = sorted(scored.items(), key=lambda kv: -kv[1])
    best, best_lp = ranked[0]
    meta = _metadata(engine, call, None)
    meta.candidates = scored
    top = [TopLogprob(token=c, logprob=lp, bytes=list(c.encode())) for c, lp in ranked]
    logprobs = Logprobs(
        content=[Logprob(token=best, logprob=best_lp, bytes=list(best.encode()), top_logprobs=top)]
    )
    n_in = len(engine.render(call.messages))
    return _model_output(engine, best, "stop", logprobs, meta, n_in, 0, elapsed)


def _model_output(
    engine: Engine,
    text: str,
    stop_reason: Any,
    logprobs: Logprobs | None,
    meta: PersonaMetadata,
    n_in: int,
    n_out: int,
    elapsed: float,
) -> ModelOutput:
    name = engine.lm.name
    choice = ChatCompletionChoice(
        message=ChatMessageAssistant(content=text, model=name, source="generate"),
        stop_reason=stop_reason,
        logprobs=logprobs,
    )
    return ModelOutput(
        model=name,
        choices=[choice],
        usage=ModelUsage(input_tokens=n_in, output_tokens=n_out, total_tokens=n_in + n_out),
        time=elapsed,
        metadata={"persona": meta.dump()},
    )


def sidecar_dir() -> Path:
    """Default folder of activation sidecars: ``$PERSONA_SIDECAR_DIR``, else the persona cache.

    Files are named by content hash, so one shared folder never piles up duplicates and runs
    started from different folders reuse it (docs/provider.md, "Sidecar files").
    """
    env = os.environ.get("PERSONA_SIDECAR_DIR")
    return Path(env) if env else cache_dir() / "sidecars"


def write_means(engine: Engine, call: Call, res: Result) -> str:
    """Write a call's per-layer means to ``<dir>/<content hash>.safetensors``; return the path."""
    from safetensors.torch import save_file

    from persona.atomic import atomic_path

    assert res.means is not None
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in sorted(res.means.items())}
    lm = engine.lm
    info = {
        "model_id": lm.model_id,
        "fingerprint": lm.base_fingerprint,
        "adapter": lm.adapter or "",
        "layers": list(res.means_layers),
        "layer_convention": LAYER_CONVENTION,
        "prompt_tokens": res.prompt_tokens,
        "n_response": len(res.token_ids),
    }
    meta = {k: json.dumps(v) for k, v in info.items()}
    h = hashlib.sha256(json.dumps(info, sort_keys=True).encode())
    for k, v in tensors.items():
        h.update(k.encode())
        h.update(v.numpy().tobytes())
    folder = Path(call.sidecar_dir or sidecar_dir()).expanduser()
    path = (folder / f"{h.hexdigest()[:32]}.safetensors").resolve()
    if not path.exists():
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
    return str(path)

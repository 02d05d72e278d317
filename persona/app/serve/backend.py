"""The served models: one persona provider instance (shared weights, async micro-batcher,
the per-call protocol and its validation) behind every model id.

The base model and each ``--adapter NAME=PATH`` are model ids; an adapter id sets the protocol's
``adapter`` for the call, so adapters of one base share its weights and switch per batch.
Requests over HTTP may not name files: vectors are trait names in the server's ``--vectors``
folder, adapters are chosen by model id, and ``capture.means`` (which writes sidecar files) is
refused.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
from inspect_ai.model import ChatMessage, GenerateConfig, ModelOutput

from persona.app.serve.errors import ApiError
from persona.errors import PersonaError
from persona.model.engine import Engine
from persona.model.loading import model_slug
from persona.model.vectors import check_compatible, load_vector
from persona.provider.api import PersonaAPI
from persona.provider.calls import Call, TokenOut, TokenSink
from persona.provider.feed import TokenFeed
from persona.provider.protocol import PersonaRequest, parse_extra_body

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
SEED_BITS = 63


@dataclass(frozen=True)
class Trait:
    """A trait whose vector the server has for its base model."""

    name: str
    layer: int
    #: the raw vector's length at every layer (response_avg; index = layer): how far apart
    #: the trait's and the plain replies' response means lie along the unit vector
    norms: tuple[float, ...] = ()


def default_name(model: str) -> str:
    """Model id of the base: the alias or hub id as given, a folder's or file's own name."""
    path = Path(model).expanduser()
    return path.name if path.exists() else model


class Backend:
    """Chat completions over a persona provider instance, addressed by model id."""

    def __init__(
        self,
        model: str,
        *,
        vectors: str | None = None,
        adapters: dict[str, str] | None = None,
        name: str | None = None,
        max_batch: int = 8,
        batch_window: float = 0.05,
        dtype: str | None = None,
        device: str | None = None,
        max_pending: int = 256,
    ) -> None:
        self.api = PersonaAPI(
            model,
            vectors=vectors,
            max_batch=max_batch,
            batch_window=batch_window,
            dtype=dtype,
            device=device,
        )
        self.vectors = vectors
        self.name = name or default_name(model)
        self.adapters: dict[str, str] = {}
        for adapter_name, path in (adapters or {}).items():
            if adapter_name == self.name or not _NAME.match(adapter_name):
                raise PersonaError(
                    f"adapter name {adapter_name!r} must be a simple name other than the base "
                    f"model's {self.name!r}"
                )
            if not (Path(path).expanduser() / "adapter_config.json").is_file():
                raise PersonaError(f"--adapter {adapter_name}={path}: no PEFT adapter folder there")
            self.adapters[adapter_name] = str(Path(path).expanduser().resolve())
        self.max_pending = max_pending
        self.pending = 0
        #: output tokens of each streamed choice whose client left before it finished (0: it
        #: never ran): generation stops at the next token, so these stay small
        self.abandoned: list[int] = []

    @property
    def model_ids(self) -> list[str]:
        return [self.name, *self.adapters]

    async def load(self) -> None:
        """Load the weights and every adapter now (the first request would otherwise wait)."""
        await self.api.engine()
        for path in self.adapters.values():
            await self.api.engine(path)

    async def engine(self) -> Engine:
        return await self.api.engine()

    # -- completions ---------------------------------------------------------------------------
    def request_body(
        self, model_id: str, persona: dict[str, Any] | None, seed: int | None, n: int
    ) -> list[dict[str, Any]]:
        """Validated ``extra_body`` per choice: the adapter of the model id and a seed each."""
        if model_id not in self.model_ids:
            raise ApiError(
                404,
                f"model {model_id!r} is not served here: use one of {', '.join(self.model_ids)}",
                param="model",
                code="model_not_found",
            )
        try:
            req = parse_extra_body({"persona": persona} if persona is not None else None)
        except PersonaError as e:
            raise ApiError(400, str(e), param="persona") from None
        _check_remote(req)
        raw = req.model_dump(mode="json", exclude_defaults=True)
        if model_id in self.adapters:
            raw["adapter"] = self.adapters[model_id]
        base = req.seed if req.seed is not None else seed
        if base is None:
            base = secrets.randbits(SEED_BITS)
        return [{"persona": {**raw, "seed": (base + i) % (1 << SEED_BITS)}} for i in range(n)]

    async def prepare(
        self,
        model_id: str,
        messages: list[ChatMessage],
        config: GenerateConfig,
        persona: dict[str, Any] | None,
        n: int = 1,
    ) -> list[Call]:
        """Validated calls for ``n`` choices of one chat. Every error a client can cause is
        raised here (400, 404, 429), before anything is generated or streamed."""
        bodies = self.request_body(model_id, persona, config.seed, n)
        await self._check_length(messages, int(config.max_tokens or 0))
        if self.pending + n > self.max_pending:
            raise ApiError(429, "too many requests in flight: retry shortly", code="overloaded")
        calls = []
        for body in bodies:
            try:
                calls.append(
                    await self.api.prepare(messages, config.merge(GenerateConfig(extra_body=body)))
                )
            except PersonaError as e:
                raise ApiError(400, str(e)) from None
        return calls

    async def complete(self, calls: list[Call]) -> list[ModelOutput]:
        """The outputs of prepared calls; they are submitted together so they share a batch."""
        self.pending += len(calls)
        try:
            return list(await asyncio.gather(*(self._submit(c) for c in calls)))
        finally:
            self.pending -= len(calls)

    async def stream(self, calls: list[Call]) -> AsyncIterator[tuple[int, TokenOut | ModelOutput]]:
        """``(choice, token)`` for every token as it is generated, and ``(choice, output)`` when
        a choice is done. Leaving the loop early (a client that hung up) stops the choices at
        their next token, and those still queued never run, so their batch slots are free."""
        feed = TokenFeed()
        tasks = []
        for i, call in enumerate(calls):
            task = asyncio.create_task(self._submit(call, feed.sink(i)))
            # queued after every token of the call: the worker hands tokens over first
            task.add_done_callback(lambda t, i=i: feed.queue.put_nowait((i, t)))
            tasks.append(task)
        self.pending += len(calls)
        try:
            left = len(calls)
            while left:
                i, item = await feed.queue.get()
                if isinstance(item, asyncio.Task):
                    left -= 1
                    yield i, item.result()
                else:
                    yield i, item
        finally:
            feed.close()  # never cancel the tasks: one may lead the batch of other clients
            for task in tasks:
                if not task.done():
                    task.add_done_callback(self._abandoned)
            self.pending -= len(calls)

    def _abandoned(self, task: asyncio.Task[ModelOutput]) -> None:
        """Record how far a choice whose client left got (and read its error, if any)."""
        error = task.exception()
        usage = None if error is not None else task.result().usage
        self.abandoned.append(usage.output_tokens if usage else 0)

    async def _submit(self, call: Call, sink: TokenSink | None = None) -> ModelOutput:
        try:
            return await self.api.submit(call, sink)
        except PersonaError as e:
            raise ApiError(400, str(e)) from None

    async def _check_length(self, messages: list[ChatMessage], new_tokens: int) -> None:
        engine = await self.engine()
        chat = [{"role": m.role, "content": m.text} for m in messages]
        try:  # tokenizing a long chat must not hold up the event loop
            n_prompt = len(await anyio.to_thread.run_sync(engine.render, chat))
        except Exception as e:  # a chat template that rejects this conversation
            raise ApiError(
                400, f"the model's chat template rejects these messages: {e}", param="messages"
            ) from None
        cfg = engine.lm.model.config
        limit = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
        if limit and n_prompt + new_tokens > int(limit):
            raise ApiError(
                400,
                f"{n_prompt} prompt tokens + max_tokens {new_tokens} exceed the model's context "
                f"of {limit} tokens",
                param="messages",
                code="context_length_exceeded",
            )

    # -- traits for the monitor ----------------------------------------------------------------
    async def traits(self) -> tuple[int, list[Trait]]:
        """(number of layers, traits with a vector for the base model)."""
        engine = await self.engine()
        lm = engine.lm
        folder = Path(self.vectors).expanduser() if self.vectors else None
        if folder is None or not folder.exists():
            return lm.num_layers, []
        if folder.is_file():  # one vector file: its trait is the one name it answers to
            files = [folder]
        else:
            files = sorted((folder / model_slug(lm.model_id)).glob("*.safetensors"))
            files += sorted(folder.glob("*.safetensors"))
        out: dict[str, Trait] = {}
        for f in files:
            if f.stem in out:
                continue
            try:
                vec = load_vector(f)
                check_compatible(
                    vec,
                    num_layers=lm.num_layers,
                    hidden_size=lm.hidden_size,
                    fingerprint=lm.base_fingerprint,
                    source=str(f),
                )
            except PersonaError:
                continue  # another model's vector
            name = vec.trait if folder.is_file() else f.stem
            if not _NAME.match(name or ""):
                continue
            layer = vec.layer if vec.layer is not None else max(1, lm.num_layers // 2)
            out[name] = Trait(name, layer, tuple(vec.response_avg.norm(dim=-1).tolist()))
        return lm.num_layers, list(out.values())


def _check_remote(req: PersonaRequest) -> None:
    """Refuse what a remote client must not do: name files or write sidecars."""
    names = [s.vector for s in req.steer] + list(req.capture.traits if req.capture else [])
    for name in names:
        if not _NAME.match(name) or name.endswith(".safetensors"):
            raise ApiError(
                400,
                f"vector {name!r}: over HTTP name a trait of the server's --vectors folder "
                "(file paths are not accepted)",
                param="persona",
            )
    if req.adapter is not None:
        raise ApiError(
            400,
            "persona.adapter is chosen by model id over HTTP (see GET /v1/models)",
            param="persona",
        )
    if req.capture and (req.capture.means or req.capture.sidecar_dir):
        raise ApiError(
            400,
            "capture.means and capture.sidecar_dir write files and are not served over HTTP",
            param="persona",
        )

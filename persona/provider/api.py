"""The Inspect model provider ``persona/<model>``: local models with steering and projections.

``inspect eval ... --model persona/smollm2-135m -M vectors=vectors -M adapter=ckpt/``. Weights load
lazily on the first call, through the engine's shared registry (never for Inspect's model-info
lookups). Concurrent calls are gathered into engine batches by
:class:`persona.provider.batcher.Batcher`.
The per-call protocol (``extra_body["persona"]`` in, ``metadata["persona"]`` out) is in
``docs/protocol.md`` and :mod:`persona.provider.protocol`; user docs are in ``docs/provider.md``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import anyio.to_thread
from inspect_ai._util.error import PrerequisiteError
from inspect_ai.model import ChatMessage, GenerateConfig, Model, ModelAPI, ModelOutput
from inspect_ai.model._model_info import MODEL_INFO_LOOKUP_API_KEY
from inspect_ai.tool import ToolChoice, ToolInfo
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from persona.errors import PersonaError
from persona.model.engine import Engine, Request, Sampling, Steer
from persona.model.loading import LoadedModel, ModelSource, attach_adapter, load_model, resolve
from persona.model.vector_store import (
    ModelShape,
    VectorStore,
    read,
    resolve_layer,
    source_shape,
)
from persona.model.vectors import check_compatible
from persona.provider.batcher import Batcher
from persona.provider.calls import (
    Call,
    GroupKey,
    Probe,
    TokenSink,
    chat_messages,
    derive_seed,
    run_group,
    sample_context,
)
from persona.provider.protocol import PersonaRequest, SteeringOut, check_config, parse_extra_body
from persona.validate import InputError

DEFAULT_MAX_TOKENS = 512


class InspectInputError(InputError, PrerequisiteError):
    """Bad input to a task or the provider: ``inspect eval`` prints the one message and exits 1.

    Raised while Inspect builds the model and the tasks, before any sample runs (a sample error
    would only be logged, and the run would exit 0). A :class:`persona.validate.InputError`, so
    callers catch every bad-input error the same way.
    """

    def __init__(self, message: str) -> None:
        InputError.__init__(self, message)
        self.message = message


class ProviderArgs(BaseModel):
    """Model args (``-M key=value``) of the persona provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    adapter: str | None = None
    vectors: str | None = None
    dtype: str | None = None
    device: str | None = None
    max_batch: int = Field(default=8, ge=1)
    seed: int | None = None
    trust_remote_code: bool = False
    batch_window: float = Field(default=0.05, ge=0, le=5)


def parse_args(model_args: dict[str, Any]) -> ProviderArgs:
    """Validate model args; an unknown one is an error that names the valid ones."""
    valid = ", ".join(ProviderArgs.model_fields)
    unknown = sorted(set(model_args) - set(ProviderArgs.model_fields))
    if unknown:
        raise PersonaError(
            f"unknown model arg(s) {', '.join(unknown)} for the persona provider: "
            f"valid ones are {valid}"
        )
    try:
        return ProviderArgs(**model_args)
    except ValidationError as e:
        msgs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise PersonaError(f"invalid model arg for the persona provider: {msgs}") from None


def check_args(args: ProviderArgs, source: ModelSource, vectors: VectorStore) -> None:
    """Check the model args before any weights load (files exist and fit, device is usable)."""
    from persona import validate

    if args.adapter:
        validate.adapter_dir(args.adapter)
    if args.device is not None:
        validate.device(args.device)
    if args.dtype is not None:
        from persona.model.loading import _dtype

        _dtype(args.dtype, args.device or "cpu")
    folder = vectors.folder
    if folder is None:
        return
    if not folder.exists():
        raise PersonaError(f"vectors={args.vectors} does not exist")
    if folder.is_file():  # one vector file: it must load, and fit the model when its shape is known
        vector = read(folder)
        shape = source_shape(source)
        if shape is not None:
            check_compatible(
                vector,
                num_layers=shape.num_layers,
                hidden_size=shape.hidden_size,
                source=f"vectors={args.vectors}",
            )


class PersonaAPI(ModelAPI):
    """Inspect ``ModelAPI`` over :class:`persona.model.engine.Engine` (shared weights, batched)."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config)
        try:
            self.args = parse_args(model_args)
        except PersonaError as e:
            raise InspectInputError(str(e)) from None
        self.lookup = api_key == MODEL_INFO_LOOKUP_API_KEY  # never load weights for these
        self._source: ModelSource | None = None
        self.vectors = VectorStore(self.args.vectors)
        if not self.lookup:
            try:
                self._source = resolve(model_name, self.args.adapter)
                check_args(self.args, self._source, self.vectors)
            except PersonaError as e:
                raise InspectInputError(str(e)) from None
        self.batcher: Batcher[Call, ModelOutput] = Batcher(
            self._run, self.args.max_batch, self.args.batch_window
        )
        self._engines: dict[str | None, Engine] = {}
        self._base: LoadedModel | None = None
        self._load_lock = threading.Lock()
        self._repeats: dict[tuple[str | None, str], int] = {}

    # -- Inspect hooks -------------------------------------------------------------------------
    def max_tokens(self) -> int | None:
        return DEFAULT_MAX_TOKENS

    def max_connections(self) -> int:
        return 2 * self.args.max_batch

    def connection_key(self) -> str:
        source = self._source
        return f"{source.kind}:{source.path}" if source else self.model_name

    def collapse_user_messages(self) -> bool:
        return True

    def collapse_system_messages(self) -> bool:
        return True

    async def count_text_tokens(self, text: str) -> int:
        if self.lookup and not self._engines:
            return max(1, len(text) // 4)
        engine = await self.engine()
        return len(engine.lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    async def tokenize(self, text: str) -> list[int]:
        engine = await self.engine()
        return list(engine.lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        if tools:
            raise PersonaError(
                "the persona provider does not support tools (trait prompts use none): "
                f"remove {', '.join(t.name for t in tools)} from the task"
            )
        return await self.submit(await self.prepare(input, config))

    async def prepare(self, input: list[ChatMessage], config: GenerateConfig) -> Call:
        """Validate one call (config, ``extra_body``, vectors, layers) without running it, so a
        caller can answer a bad request before it streams anything."""
        check_config(config)
        req = parse_extra_body(config.extra_body)
        engine = await self.engine(req.adapter)
        return self._prepare(engine, input, req, config)

    async def submit(self, call: Call, on_token: TokenSink | None = None) -> ModelOutput:
        """Run a prepared call in the next batch; ``on_token`` (called in the worker thread)
        receives its tokens as they are generated and may stop it by returning False."""
        if on_token is not None:
            call.on_token = on_token
        return await self.batcher.submit(call.key, call)

    # -- engines -------------------------------------------------------------------------------
    async def engine(self, adapter: str | None = None) -> Engine:
        """The engine for ``adapter`` (None: the model's own; ``"base"``: adapters off)."""
        key = self._adapter_key(adapter)
        engine = self._engines.get(key)
        if engine is None:
            engine = await anyio.to_thread.run_sync(self._load, key)
        return engine

    def engine_sync(self, adapter: str | None = None) -> Engine:
        """Blocking variant of :meth:`engine` (for scripts; not on the event loop)."""
        key = self._adapter_key(adapter)
        return self._engines.get(key) or self._load(key)

    def _adapter_key(self, adapter: str | None) -> str | None:
        if adapter is None:
            if self._source is None:
                self._source = resolve(self.model_name, self.args.adapter)
            adapter = self._source.adapter
            return str(Path(adapter).expanduser().resolve()) if adapter else None
        if adapter == "base":
            return None
        return str(Path(adapter).expanduser().resolve())

    def _load(self, key: str | None) -> Engine:
        with self._load_lock:
            if key in self._engines:
                return self._engines[key]
            if self._base is None:
                lm = load_model(
                    self.model_name,
                    adapter=self.args.adapter,
                    dtype=self.args.dtype,
                    device=self.args.device,
                    trust_remote_code=self.args.trust_remote_code,
                )
                self._base = LoadedModel(lm.weights)
            weights = self._base.weights
            if key is None:
                lm = self._base
            else:
                lm = LoadedModel(weights, adapter=key, adapter_name=attach_adapter(weights, key))
            engine = Engine(lm, self.args.max_batch)
            self._engines[key] = engine
            return engine

    def _run(self, key: Any, calls: Any) -> list[ModelOutput]:
        return run_group(self._engines[key.adapter], key, calls)

    # -- preparing a call ----------------------------------------------------------------------
    def _prepare(
        self, engine: Engine, input: list[ChatMessage], req: PersonaRequest, config: GenerateConfig
    ) -> Call:
        lm = engine.lm
        messages = chat_messages(input)
        adapter = lm.adapter
        meta: dict[str, Any] = {
            "model": lm.model_id,
            "adapter": adapter,
            "fingerprint": lm.base_fingerprint,
            "mode": req.mode,
        }
        if req.mode == "candidates":
            key = GroupKey(adapter, "candidates")
            return Call(key, messages, candidates=list(req.candidates or []), meta=meta)
        response = None
        if req.mode == "score":
            if len(messages) < 2 or messages[-1]["role"] != "assistant":
                raise PersonaError(
                    "mode 'score' needs the response to score as the last (assistant) message, "
                    "after at least one prompt message"
                )
            response = messages[-1]["content"]
            messages = messages[:-1]
        shape = ModelShape.of(lm)
        steers, steering = [], []
        for s in req.steer:
            vec = self.vectors.get(s.vector, lm.model_id, shape=shape).vector
            layer = resolve_layer(vec, lm.num_layers, layer=s.layer)
            steers.append(Steer(vec.at(layer, s.kind), layer, s.coef, s.positions))
            steering.append(SteeringOut(**{**s.model_dump(), "layer": layer}))
        probes, tensors = [], {}
        cap = req.capture
        for name in cap.traits if cap else []:
            assert cap is not None
            stored = self.vectors.get(name, lm.model_id, shape=shape)
            if cap.layers is not None:
                layers = tuple(sorted(set(cap.layers)))
            else:
                layers = (resolve_layer(stored.vector, lm.num_layers),)
            bad = [x for x in layers if not 0 <= x <= lm.num_layers]
            if bad:
                raise PersonaError(
                    f"capture layer(s) {bad} out of range: this model has layers 0..{lm.num_layers}"
                )
            pkey = f"{stored.path}#{cap.kind}"
            tensors[pkey] = stored.vector.tensor(cap.kind)
            probes.append(Probe(name, pkey, layers))
        sampling = self._sampling(config) if req.mode == "generate" else None
        seed = req.seed if req.seed is not None else self._seed(messages, req, sampling, config)
        meta.update(
            steering=steering, steering_active=any(s.coef != 0 for s in steering), seed=seed
        )
        key = GroupKey(
            adapter,
            req.mode,
            sampling,
            means=bool(cap and cap.means),
            per_token=bool(cap and cap.per_token),
        )
        return Call(
            key,
            messages,
            request=Request(messages, tuple(steers), seed, response),
            probes=probes,
            probe_tensors=tensors,
            sidecar_dir=cap.sidecar_dir if cap else None,
            meta=meta,
        )

    def _sampling(self, config: GenerateConfig) -> Sampling:
        temperature = float(config.temperature or 0.0)
        greedy = temperature <= 0
        return Sampling(
            max_new_tokens=int(config.max_tokens or DEFAULT_MAX_TOKENS),
            temperature=0.0 if greedy else temperature,
            top_p=None if greedy else config.top_p,
            top_k=None if greedy else config.top_k,
            stop=tuple(config.stop_seqs or ()),
            logprobs=bool(config.logprobs or config.top_logprobs),
            top_logprobs=int(config.top_logprobs or 0),
        )

    def _seed(
        self,
        messages: list[dict[str, str]],
        req: PersonaRequest,
        sampling: Sampling | None,
        config: GenerateConfig,
    ) -> int:
        """Seed from (base seed, sample id, epoch, n-th identical call in this sample)."""
        base = config.seed if config.seed is not None else (self.args.seed or 0)
        ctx = sample_context()
        body = json.dumps([messages, req.model_dump(mode="json"), repr(sampling)], sort_keys=True)
        signature = hashlib.sha256(body.encode()).hexdigest()
        counter_key = (ctx[2] if ctx else None, signature)
        index = self._repeats.get(counter_key, 0)
        if len(self._repeats) > 100_000:
            self._repeats.clear()
        self._repeats[counter_key] = index + 1
        sample_id, epoch = (ctx[0], ctx[1]) if ctx else (None, 0)
        return derive_seed(base, sample_id, epoch, index)


async def model_engine(model: str | Model | None = None, adapter: str | None = None) -> Engine:
    """The engine behind a ``persona/`` model (default: the model under evaluation).

    For solvers and scorers that need direct engine access (e.g. bulk scoring); calls made this
    way bypass Inspect's logging, so record what they compute in the score or store.
    """
    from inspect_ai.model import get_model

    m = get_model(model)
    if not isinstance(m.api, PersonaAPI):
        raise PersonaError(f"{m} is not served by the persona provider (use persona/<model>)")
    return await m.api.engine(adapter)

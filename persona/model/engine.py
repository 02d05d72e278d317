"""The engine: batched chat generation and teacher-forced scoring with steering and capture.

One forward-hook per needed layer does both jobs in the same pass:

* **capture** reads the residual stream *before* this call's steering at that layer is added, and
  keeps per-row running sums: per-layer means (response tokens, prompt tokens, last prompt token)
  when extracting, otherwise only projections onto requested vectors (``h . v/|v|``);
* **steering** adds ``coef * v`` (raw, unnormalised) at the selected positions of the selected rows.

Positions (DESIGN section 2): ``all`` = every non-padding token, prompt and response; ``prompt`` =
prompt tokens only; ``response`` = the **last prompt token** (whose output predicts the first
response token) plus every response token, as in the paper's reference code, so coefficients
transfer. Padding is never steered, and a zero coefficient leaves a row bit-for-bit unchanged.

Response-token captures cover exactly the tokens of the returned reply: every generated token is
fed back once (a final one-token step when capture is on), so no second forward pass is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from persona.errors import PersonaError
from persona.model.loading import LoadedModel
from persona.model.residual_hooks import StopForward, check_layer, final_norm, residual_hooks

POSITIONS = ("all", "prompt", "response")
MEAN_KINDS = ("response_avg", "prompt_avg", "prompt_last")

Message = Mapping[str, str]


@dataclass(frozen=True)
class Steer:
    """Add ``coef * vector`` to the residual stream at ``layer`` (output of block ``layer-1``)."""

    vector: torch.Tensor  # [d], raw persona vector at that layer
    layer: int
    coef: float
    positions: str = "response"

    def __post_init__(self) -> None:
        if self.positions not in POSITIONS:
            raise PersonaError(
                f"unknown steering positions {self.positions!r}: use one of {', '.join(POSITIONS)}"
            )
        if not math.isfinite(float(self.coef)):
            raise PersonaError(f"steering coefficient must be a finite number, got {self.coef}")
        if self.vector.ndim != 1:
            raise PersonaError("a steering vector must be 1-dimensional (one layer's row)")


@dataclass(frozen=True)
class Capture:
    """What to measure during a call.

    ``means``: layers at which to keep full per-layer means (for extraction), or None.
    ``probes``: name -> ``[num_layers+1, d]`` raw vectors; projections use their unit rows.
    ``probe_layers``: name -> layers to project at. ``per_token``: also return the per-token
    response projections.
    """

    means: tuple[int, ...] | None = None
    probes: Mapping[str, torch.Tensor] = field(default_factory=dict)
    probe_layers: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    per_token: bool = False

    def layers(self) -> set[int]:
        out = set(self.means or ())
        for name in self.probes:
            out.update(self.probe_layers.get(name, ()))
        return out

    @property
    def empty(self) -> bool:
        return not self.layers()


@dataclass
class ProjStats:
    """Projections of one row onto one unit vector at one layer."""

    prompt_last: float
    prompt_mean: float
    response_mean: float | None  # None when the response has no tokens
    n_response: int
    per_token: list[float] | None = None


@dataclass(frozen=True)
class Request:
    """One chat to generate from (or, with ``response``, to score teacher-forced)."""

    messages: Sequence[Message]
    steer: tuple[Steer, ...] = ()
    seed: int | None = None
    response: str | None = None


@dataclass(frozen=True)
class Sampling:
    """Decoding settings shared by a batch. ``temperature`` 0 (or None) means greedy."""

    max_new_tokens: int = 128
    temperature: float | None = 0.0
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    ignore_eos: bool = False  # benchmarks: always produce max_new_tokens tokens


@dataclass
class TokenLogprob:
    """Log-probability of a returned token under the model's raw (temperature-1) distribution."""

    token: str
    token_id: int
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Result:
    """What one request produced."""

    text: str
    token_ids: list[int]
    prompt_tokens: int
    finish_reason: str  # "stop" (end of turn), "max_tokens", "stop_seq", "scored"
    logprobs: list[TokenLogprob] | None = None
    means: dict[str, torch.Tensor] | None = None  # kind -> [len(means_layers), d] float32 (cpu)
    means_layers: tuple[int, ...] = ()
    projections: dict[str, dict[int, ProjStats]] = field(default_factory=dict)
    response_logprob: float | None = None  # score(): sum of response-token log-probabilities


# ---------------------------------------------------------------------------------------------
# Per-forward-pass state read by the hooks


@dataclass
class _Pass:
    """Masks describing the tokens of one forward call ([B, t] booleans).

    The derived fields are computed once per forward call, not once per hooked layer: decode
    steps have no prompt tokens and the prefill no response tokens, so the hooks skip that work.
    """

    prompt: torch.Tensor
    response: torch.Tensor
    last: torch.Tensor
    valid: torch.Tensor = field(init=False)
    has_prompt: bool = field(init=False)
    has_response: bool = field(init=False)
    has_last: bool = field(init=False)
    last_rows: torch.Tensor = field(init=False)  # [B] rows whose last prompt token is here
    prompt_w: torch.Tensor = field(init=False)  # masks as [B, t, 1] float weights
    response_w: torch.Tensor = field(init=False)
    last_w: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.valid = self.prompt | self.response
        self.has_prompt = bool(self.prompt.any())
        self.has_response = bool(self.response.any())
        self.last_rows = self.last.any(1)
        self.has_last = bool(self.last_rows.any())
        self.prompt_w = self.prompt.unsqueeze(-1).float()
        self.response_w = self.response.unsqueeze(-1).float()
        self.last_w = self.last.unsqueeze(-1).float()

    def accumulate(
        self, x: torch.Tensor, prompt: torch.Tensor, response: torch.Tensor, last: torch.Tensor
    ) -> None:
        """Add ``x``'s ([B, t, k]) prompt- and response-token sums into ``prompt`` and
        ``response`` ([B, k], in place) and store its last-prompt-token rows in ``last``."""
        if self.has_prompt:
            prompt += (x * self.prompt_w).sum(1)
        if self.has_response:
            response += (x * self.response_w).sum(1)
        if self.has_last:
            last[self.last_rows] = (x * self.last_w).sum(1)[self.last_rows]


class _Batch:
    """Steering adds and capture accumulators for one batch, shared by all its forward calls."""

    def __init__(
        self,
        lm: LoadedModel,
        requests: Sequence[Request],
        capture: Capture,
        stop_after: int | None = None,
    ) -> None:
        self.lm = lm
        self.capture = capture
        self.stop_after = stop_after
        self.current: _Pass | None = None
        device, n_layers = lm.device, lm.num_layers
        dtype = next(lm.model.parameters()).dtype
        self.b = len(requests)
        self.norm = final_norm(lm.model)
        self.n_layers = n_layers
        # steering: layer -> positions -> [B, d]
        self.adds: dict[int, dict[str, torch.Tensor]] = {}
        self.steered_rows: dict[int, torch.Tensor] = {}
        for row, req in enumerate(requests):
            for s in req.steer:
                check_layer(s.layer, n_layers)
                if s.vector.shape[0] != lm.hidden_size:
                    raise PersonaError(
                        f"steering vector has size {s.vector.shape[0]} but the model's hidden "
                        f"size is {lm.hidden_size}: the vector belongs to another model"
                    )
                if s.coef == 0:
                    continue
                per_pos = self.adds.setdefault(s.layer, {})
                if s.positions not in per_pos:
                    per_pos[s.positions] = torch.zeros(self.b, lm.hidden_size, device=device)
                per_pos[s.positions][row] += float(s.coef) * s.vector.to(device, torch.float32)
                rows = self.steered_rows.setdefault(
                    s.layer, torch.zeros(self.b, dtype=torch.bool, device=device)
                )
                rows[row] = True
        for per_pos in self.adds.values():
            for pos in per_pos:
                per_pos[pos] = per_pos[pos].to(dtype)
        # capture: full means
        self.mean_layers = tuple(sorted(set(capture.means or ())))
        for layer in self.mean_layers:
            check_layer(layer, n_layers, allow_zero=True)
        self.mean_index = {layer: i for i, layer in enumerate(self.mean_layers)}
        if self.mean_layers:
            shape = (self.b, len(self.mean_layers), lm.hidden_size)
            self.sum_resp = torch.zeros(shape, device=device)
            self.sum_prompt = torch.zeros(shape, device=device)
            self.last_prompt = torch.zeros(shape, device=device)
        # capture: projections; per layer a [P, d] matrix of unit vectors
        self.probe_units: dict[int, torch.Tensor] = {}
        self.probe_names: dict[int, list[str]] = {}
        for name, vec in capture.probes.items():
            if vec.ndim != 2 or vec.shape[0] != n_layers + 1 or vec.shape[1] != lm.hidden_size:
                raise PersonaError(
                    f"vector {name!r} has shape {tuple(vec.shape)} but this model needs "
                    f"[{n_layers + 1}, {lm.hidden_size}]: it was extracted on another model"
                )
            for layer in capture.probe_layers.get(name, ()):
                check_layer(layer, n_layers, allow_zero=True)
                row = vec[layer].to(device, torch.float32)
                norm = row.norm()
                if not torch.isfinite(norm) or norm == 0:
                    raise PersonaError(f"vector {name!r} at layer {layer} is zero or not finite")
                self.probe_names.setdefault(layer, []).append(name)
                prev = self.probe_units.get(layer)
                unit = (row / norm)[None]
                self.probe_units[layer] = unit if prev is None else torch.cat([prev, unit])
        self.proj: dict[int, dict[str, torch.Tensor]] = {}
        for layer, units in self.probe_units.items():
            p = units.shape[0]
            self.proj[layer] = {
                "last": torch.zeros(self.b, p, device=device),
                "prompt": torch.zeros(self.b, p, device=device),
                "resp": torch.zeros(self.b, p, device=device),
            }
        self.per_token: list[tuple[int, torch.Tensor, torch.Tensor]] = []  # (layer, [B,t,P], mask)
        self.n_prompt = torch.zeros(self.b, device=device)
        self.n_resp = torch.zeros(self.b, device=device)

    def layers(self) -> list[int]:
        return sorted(set(self.adds) | set(self.mean_layers) | set(self.probe_units))

    # -- called by the hooks -----------------------------------------------------------------
    def on_layer(self, layer: int, hidden: torch.Tensor) -> torch.Tensor | None:
        p = self.current
        assert p is not None, "forward pass without masks"
        if layer in self.mean_index or layer in self.probe_units:
            seen = hidden
            if layer == self.n_layers and self.norm is not None:
                seen = self.norm(hidden)  # HF hidden_states[N] carries the final norm
            self._capture(layer, seen.float(), p)
        out = None
        if layer in self.adds:
            out = self._steer(layer, hidden, p)
        if self.stop_after is not None and layer >= self.stop_after:
            raise StopForward
        return out

    def _capture(self, layer: int, h: torch.Tensor, p: _Pass) -> None:
        if layer in self.mean_index:
            i = self.mean_index[layer]
            p.accumulate(h, self.sum_prompt[:, i], self.sum_resp[:, i], self.last_prompt[:, i])
        if layer in self.probe_units:
            proj = h @ self.probe_units[layer].T  # [B, t, P]
            acc = self.proj[layer]
            p.accumulate(proj, acc["prompt"], acc["resp"], acc["last"])
            if self.capture.per_token and p.has_response:
                self.per_token.append((layer, proj.detach(), p.response))

    def _steer(self, layer: int, hidden: torch.Tensor, p: _Pass) -> torch.Tensor:
        delta = torch.zeros_like(hidden)
        masks = {"all": p.valid, "prompt": p.prompt, "response": p.response | p.last}
        for pos, add in self.adds[layer].items():
            delta = delta + masks[pos].unsqueeze(-1).to(hidden.dtype) * add.unsqueeze(1)
        rows = self.steered_rows[layer].view(-1, 1, 1)
        return torch.where(rows, hidden + delta, hidden)

    def count(self, p: _Pass) -> None:
        self.n_prompt += p.prompt.sum(1)
        self.n_resp += p.response.sum(1)

    # -- results -----------------------------------------------------------------------------
    def means(self, row: int) -> dict[str, torch.Tensor] | None:
        if not self.mean_layers:
            return None
        n_p = max(float(self.n_prompt[row]), 1.0)
        n_r = float(self.n_resp[row])
        resp = (
            self.sum_resp[row] / n_r if n_r > 0 else torch.full_like(self.sum_resp[row], math.nan)
        )
        return {
            "response_avg": resp.cpu(),
            "prompt_avg": (self.sum_prompt[row] / n_p).cpu(),
            "prompt_last": self.last_prompt[row].clone().cpu(),
        }

    def projections(self, row: int) -> dict[str, dict[int, ProjStats]]:
        out: dict[str, dict[int, ProjStats]] = {}
        n_p = max(float(self.n_prompt[row]), 1.0)
        n_r = int(self.n_resp[row])
        for layer, names in self.probe_names.items():
            acc = self.proj[layer]
            tokens = self._per_token(layer, row) if self.capture.per_token else None
            for j, name in enumerate(names):
                out.setdefault(name, {})[layer] = ProjStats(
                    prompt_last=float(acc["last"][row, j]),
                    prompt_mean=float(acc["prompt"][row, j]) / n_p,
                    response_mean=float(acc["resp"][row, j]) / n_r if n_r else None,
                    n_response=n_r,
                    per_token=[float(x) for x in tokens[:, j]] if tokens is not None else None,
                )
        return out

    def _per_token(self, layer: int, row: int) -> torch.Tensor:
        parts = [proj[row][mask[row]] for lyr, proj, mask in self.per_token if lyr == layer]
        if not parts:
            return torch.zeros(0, len(self.probe_names[layer]))
        return torch.cat(parts).cpu()


# ---------------------------------------------------------------------------------------------


class Engine:
    """Generation and scoring over one loaded model (and its active adapter)."""

    def __init__(self, lm: LoadedModel, max_batch: int = 8) -> None:
        if max_batch < 1:
            raise PersonaError(f"max_batch must be at least 1, got {max_batch}")
        self.lm = lm
        self.max_batch = max_batch
        tok = lm.tokenizer
        ids = {tok.eos_token_id}
        gen_cfg = getattr(lm.model, "generation_config", None)
        extra = getattr(gen_cfg, "eos_token_id", None)
        if isinstance(extra, int):
            ids.add(extra)
        elif isinstance(extra, list | tuple):
            ids.update(int(i) for i in extra)
        self.eos_ids = {i for i in ids if i is not None}
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    # -- prompts -----------------------------------------------------------------------------
    def render(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of a chat, ending with the assistant generation prompt."""
        if not messages:
            raise PersonaError("a request needs at least one message")
        tok = self.lm.tokenizer
        msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
        if getattr(tok, "chat_template", None):
            try:
                text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            except Exception:  # templates without a system role: fold it into the user turn
                if msgs[0]["role"] != "system" or len(msgs) < 2:
                    raise
                merged = [
                    {
                        "role": msgs[1]["role"],
                        "content": msgs[0]["content"] + "\n\n" + msgs[1]["content"],
                    }
                ] + msgs[2:]
                text = tok.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant:"
        return list(tok(text, add_special_tokens=False)["input_ids"])

    # -- adapters ----------------------------------------------------------------------------
    @contextmanager
    def _adapter_context(self) -> Iterator[None]:
        """Enable this LoadedModel's adapter for one call (hold ``weights.lock``).

        Adapters loaded into shared weights stay disabled outside this context
        (``models.load_adapter``), so the base model is what a plain call to ``lm.model`` runs.
        """
        model = self.lm.model
        if self.lm.adapter_name is None or not hasattr(model, "peft_config"):
            yield
            return
        model.set_adapter(self.lm.adapter_name)
        model.base_model.enable_adapter_layers()
        try:
            yield
        finally:
            model.base_model.disable_adapter_layers()

    # -- generation --------------------------------------------------------------------------
    def generate(
        self,
        requests: Sequence[Request],
        sampling: Sampling | None = None,
        capture: Capture | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Result]:
        """Generate a reply for every request, in batches of at most ``max_batch``."""
        sampling = sampling or Sampling()
        capture = capture or Capture()
        if not requests:
            raise PersonaError("no prompts to generate from (the prompt list is empty)")
        if sampling.max_new_tokens < 1:
            raise PersonaError(f"max_new_tokens must be at least 1, got {sampling.max_new_tokens}")
        encoded = [self.render(r.messages) for r in requests]
        results: list[Result | None] = [None] * len(requests)
        order = sorted(range(len(requests)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), self.max_batch):
            idx = order[start : start + self.max_batch]
            batch = self._generate_batch(
                [requests[i] for i in idx], [encoded[i] for i in idx], sampling, capture
            )
            for i, res in zip(idx, batch, strict=True):
                results[i] = res
            if progress:
                progress(len(idx))
        return [r for r in results if r is not None]

    @torch.inference_mode()
    def _generate_batch(
        self,
        requests: Sequence[Request],
        prompts: list[list[int]],
        sampling: Sampling,
        capture: Capture,
    ) -> list[Result]:
        from transformers import DynamicCache

        lm, model = self.lm, self.lm.model
        device = lm.device
        b = len(requests)
        t = max(len(p) for p in prompts)
        input_ids = torch.full((b, t), self.pad_id, dtype=torch.long, device=device)
        attn = torch.zeros((b, t), dtype=torch.long, device=device)
        for row, p in enumerate(prompts):
            input_ids[row, t - len(p) :] = torch.tensor(p, device=device)
            attn[row, t - len(p) :] = 1
        state = _Batch(lm, requests, capture)
        gens = [self._generator(r.seed, i) for i, r in enumerate(requests)]
        need_capture = not capture.empty
        zeros = torch.zeros((b, t), dtype=torch.bool, device=device)
        last = zeros.clone()
        last[:, -1] = True
        state.current = _Pass(prompt=attn.bool(), response=zeros, last=last)
        state.count(state.current)
        position = (attn.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        tokens: list[list[int]] = [[] for _ in range(b)]
        logprobs: list[list[TokenLogprob]] = [[] for _ in range(b)]
        finish = [""] * b
        texts = [""] * b
        with (
            lm.weights.lock,
            self._adapter_context(),
            residual_hooks(model, state.layers(), state.on_layer),
        ):
            out = model(
                input_ids=input_ids,
                attention_mask=attn,
                position_ids=position,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            logits = out.logits[:, -1, :]
            next_pos = position[:, -1:] + 1
            for _ in range(sampling.max_new_tokens):
                active = [not finish[r] for r in range(b)]
                chosen = self._choose(logits, sampling, gens)
                feed = torch.zeros(b, dtype=torch.bool, device=device)
                feed_ids = torch.full((b, 1), self.pad_id, dtype=torch.long, device=device)
                for r in range(b):
                    if not active[r]:
                        continue
                    tid = int(chosen[r])
                    if tid in self.eos_ids and not sampling.ignore_eos:
                        finish[r] = "stop"
                        continue
                    tokens[r].append(tid)
                    if sampling.logprobs:
                        logprobs[r].append(self._logprob(logits[r], tid, sampling.top_logprobs))
                    if sampling.stop:
                        texts[r] = self._decode(tokens[r])
                        if any(s in texts[r] for s in sampling.stop):
                            finish[r] = "stop_seq"
                    if not finish[r] and len(tokens[r]) >= sampling.max_new_tokens:
                        finish[r] = "max_tokens"
                    if not finish[r] or need_capture:
                        feed[r] = True
                        feed_ids[r, 0] = tid
                if not feed.any():
                    break
                attn = torch.cat([attn, feed.long().unsqueeze(1)], dim=1)
                state.current = _Pass(
                    prompt=torch.zeros((b, 1), dtype=torch.bool, device=device),
                    response=feed.unsqueeze(1),
                    last=torch.zeros((b, 1), dtype=torch.bool, device=device),
                )
                state.count(state.current)
                out = model(
                    input_ids=feed_ids,
                    attention_mask=attn,
                    position_ids=next_pos,
                    past_key_values=cache,
                    use_cache=True,
                )
                logits = out.logits[:, -1, :]
                next_pos = next_pos + 1
                if all(finish):
                    break
        results = []
        for r in range(b):
            text = self._decode(tokens[r])
            if finish[r] == "stop_seq":
                cut = min(text.find(s) for s in sampling.stop if s in text)
                text = text[:cut]
            results.append(
                Result(
                    text=text,
                    token_ids=tokens[r],
                    prompt_tokens=len(prompts[r]),
                    finish_reason=finish[r] or "max_tokens",
                    logprobs=logprobs[r] if sampling.logprobs else None,
                    means=state.means(r),
                    means_layers=state.mean_layers,
                    projections=state.projections(r),
                )
            )
        return results

    def _generator(self, seed: int | None, row: int) -> torch.Generator:
        g = torch.Generator(device="cpu")
        g.manual_seed(int(seed) if seed is not None else 1234 + row)
        return g

    def _choose(
        self, logits: torch.Tensor, sampling: Sampling, gens: list[torch.Generator]
    ) -> list[int]:
        if not sampling.temperature or sampling.temperature <= 0:
            return logits.argmax(-1).tolist()
        scaled = logits.float() / float(sampling.temperature)
        if sampling.top_k and sampling.top_k > 0:
            k = min(int(sampling.top_k), scaled.shape[-1])
            kth = scaled.topk(k, dim=-1).values[:, -1:]
            scaled = scaled.masked_fill(scaled < kth, -math.inf)
        if sampling.top_p is not None and 0 < sampling.top_p < 1:
            sorted_logits, sorted_idx = scaled.sort(dim=-1, descending=True)
            cum = sorted_logits.softmax(-1).cumsum(-1)
            remove = cum - sorted_logits.softmax(-1) > float(sampling.top_p)
            sorted_logits = sorted_logits.masked_fill(remove, -math.inf)
            scaled = torch.full_like(scaled, -math.inf).scatter(-1, sorted_idx, sorted_logits)
        # inverse-CDF sampling with one uniform draw per row from that row's own generator
        cdf = scaled.softmax(-1).float().cumsum(-1).cpu()
        draws = torch.cat([torch.rand(1, generator=g) for g in gens]).unsqueeze(1)
        picked = torch.searchsorted(cdf, draws * cdf[:, -1:]).clamp(max=cdf.shape[-1] - 1)
        return picked.squeeze(1).tolist()

    def _logprob(self, logits: torch.Tensor, token_id: int, top: int) -> TokenLogprob:
        lp = torch.log_softmax(logits.float(), -1)
        tops: list[tuple[str, float]] = []
        if top > 0:
            values, ids = lp.topk(min(top, lp.shape[-1]))
            tops = [(self._token_str(int(i)), float(v)) for v, i in zip(values, ids, strict=True)]
        return TokenLogprob(self._token_str(token_id), token_id, float(lp[token_id]), tops)

    def _token_str(self, token_id: int) -> str:
        return self.lm.tokenizer.decode([token_id])

    def _decode(self, ids: list[int]) -> str:
        return self.lm.tokenizer.decode(ids, skip_special_tokens=True)

    # -- teacher-forced scoring --------------------------------------------------------------
    def score(
        self,
        requests: Sequence[Request],
        capture: Capture | None = None,
        logprobs: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[Result]:
        """Run (prompt, response) pairs teacher-forced: captures and response log-probabilities.

        Each request's ``response`` is the assistant reply to score. Without ``logprobs`` the
        forward pass stops after the deepest layer that is captured (no LM head).
        """
        capture = capture or Capture()
        if not requests:
            raise PersonaError("no samples to score (the list is empty)")
        tok = self.lm.tokenizer
        encoded = []
        for r in requests:
            if r.response is None:
                raise PersonaError("score() needs a response for every request")
            prompt = self.render(r.messages)
            resp = list(tok(r.response, add_special_tokens=False)["input_ids"])
            encoded.append((prompt, resp))
        results: list[Result | None] = [None] * len(requests)
        order = sorted(range(len(requests)), key=lambda i: sum(map(len, encoded[i])))
        for start in range(0, len(order), self.max_batch):
            idx = order[start : start + self.max_batch]
            batch = self._score_batch(
                [requests[i] for i in idx], [encoded[i] for i in idx], capture, logprobs
            )
            for i, res in zip(idx, batch, strict=True):
                results[i] = res
            if progress:
                progress(len(idx))
        return [r for r in results if r is not None]

    @torch.inference_mode()
    def _score_batch(
        self,
        requests: Sequence[Request],
        encoded: list[tuple[list[int], list[int]]],
        capture: Capture,
        want_logprobs: bool,
    ) -> list[Result]:
        lm, model = self.lm, self.lm.model
        device = lm.device
        b = len(requests)
        t = max(len(p) + len(r) for p, r in encoded)
        input_ids = torch.full((b, t), self.pad_id, dtype=torch.long, device=device)
        attn = torch.zeros((b, t), dtype=torch.long, device=device)
        prompt_m = torch.zeros((b, t), dtype=torch.bool, device=device)
        resp_m = torch.zeros((b, t), dtype=torch.bool, device=device)
        last_m = torch.zeros((b, t), dtype=torch.bool, device=device)
        for row, (p, r) in enumerate(encoded):
            start = t - len(p) - len(r)
            input_ids[row, start:] = torch.tensor(p + r, device=device)
            attn[row, start:] = 1
            prompt_m[row, start : start + len(p)] = True
            resp_m[row, start + len(p) :] = True
            last_m[row, start + len(p) - 1] = True
        capture_layers = capture.layers()
        stop_after = None
        if not want_logprobs:
            stop_after = max(capture_layers | {0}) if capture_layers else 0
        state = _Batch(lm, requests, capture, stop_after=stop_after)
        state.current = _Pass(prompt=prompt_m, response=resp_m, last=last_m)
        state.count(state.current)
        position = (attn.cumsum(-1) - 1).clamp(min=0)
        max_resp = max(len(r) for _, r in encoded)
        logits = None
        hook_layers = state.layers() + ([stop_after] if stop_after is not None else [])
        with (
            lm.weights.lock,
            self._adapter_context(),
            residual_hooks(model, hook_layers, state.on_layer),
        ):
            try:
                out = model(
                    input_ids=input_ids,
                    attention_mask=attn,
                    position_ids=position,
                    use_cache=False,
                    logits_to_keep=max_resp + 1,
                )
                logits = out.logits
            except StopForward:
                pass
        results = []
        for row, (p, r) in enumerate(encoded):
            resp_lp = None
            if want_logprobs and logits is not None and r:
                # logits cover the last max_resp+1 positions; response token j sits at t-len(r)+j
                k = logits.shape[1]
                pos = torch.arange(t - len(r) - 1, t - 1, device=device) - (t - k)
                lp = torch.log_softmax(logits[row, pos].float(), -1)
                resp_lp = float(lp.gather(1, torch.tensor(r, device=device)[:, None]).sum())
            results.append(
                Result(
                    text=requests[row].response or "",
                    token_ids=r,
                    prompt_tokens=len(p),
                    finish_reason="scored",
                    means=state.means(row),
                    means_layers=state.mean_layers,
                    projections=state.projections(row),
                    response_logprob=resp_lp if r else (0.0 if want_logprobs else None),
                )
            )
        return results

    # -- candidate scoring (local judges) ----------------------------------------------------
    @torch.inference_mode()
    def candidate_logprobs(
        self, messages: Sequence[Message], candidates: Sequence[str], terminate: bool = True
    ) -> list[float]:
        """Log-probability of each candidate reply (then end of turn when ``terminate``).

        The prompt runs once. The candidates' tokens then run in one more pass as a prefix
        trie ("tree attention"): each distinct prefix is one position that attends to the
        prompt's KV cache and to its own ancestors only, so 0..100 costs ~100 positions and no
        copies of the cache. With ``terminate`` the candidates are disjoint events (``"4"``
        excludes ``"42"``), so their probabilities sum to at most 1 and the sum is the mass
        the judge put on the candidate set.
        """
        from transformers import DynamicCache

        if not candidates:
            raise PersonaError("no candidate replies to score")
        lm, model, tok = self.lm, self.lm.model, self.lm.tokenizer
        device = lm.device
        prompt = self.render(messages)
        seqs = []
        for c in candidates:
            ids = list(tok(c, add_special_tokens=False)["input_ids"])
            if terminate:
                ids.append(tok.eos_token_id)
            if not ids:
                raise PersonaError(f"candidate {c!r} has no tokens")
            seqs.append(ids)
        trie = _PrefixTrie(seqs)
        with lm.weights.lock, self._adapter_context():
            cache = DynamicCache()
            out = model(input_ids=torch.tensor([prompt], device=device), past_key_values=cache)
            first = torch.log_softmax(out.logits[0, -1].float(), -1)
            totals = [float(first[seq[0]]) for seq in seqs]
            if trie.nodes:
                dtype = next(model.parameters()).dtype
                out = model(
                    input_ids=torch.tensor([trie.tokens()], device=device),
                    attention_mask=trie.attention_mask(len(prompt), dtype).to(device),
                    position_ids=torch.tensor([trie.positions(len(prompt))], device=device),
                    past_key_values=cache,
                )
                lp = torch.log_softmax(out.logits[0].float(), -1)
                for i, seq in enumerate(seqs):
                    for j in range(1, len(seq)):
                        totals[i] += float(lp[trie.index[tuple(seq[:j])], seq[j]])
        return totals


class _PrefixTrie:
    """The distinct proper prefixes of token sequences, parents before children."""

    def __init__(self, seqs: Sequence[Sequence[int]]) -> None:
        self.nodes: list[tuple[int, ...]] = []
        self.index: dict[tuple[int, ...], int] = {}
        for seq in seqs:
            for k in range(1, len(seq)):
                prefix = tuple(seq[:k])
                if prefix not in self.index:
                    self.index[prefix] = len(self.nodes)
                    self.nodes.append(prefix)

    def tokens(self) -> list[int]:
        return [node[-1] for node in self.nodes]

    def positions(self, offset: int) -> list[int]:
        return [offset + len(node) - 1 for node in self.nodes]

    def attention_mask(self, past: int, dtype: torch.dtype) -> torch.Tensor:
        """Additive 4D mask (1, 1, nodes, past + nodes): the prompt and each node's ancestors."""
        n = len(self.nodes)
        allowed = torch.zeros((n, past + n), dtype=torch.bool)
        allowed[:, :past] = True
        for i, node in enumerate(self.nodes):
            for k in range(1, len(node) + 1):
                allowed[i, past + self.index[node[:k]]] = True
        mask = torch.zeros((n, past + n), dtype=dtype)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        return mask[None, None]

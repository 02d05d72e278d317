"""The engine's loop: batched chat generation and teacher-forced scoring over one loaded model.

One forward hook per needed layer does steering and capture in the same pass (the hook state is
in :mod:`persona.model.engine.state`). Response-token captures cover exactly the tokens of the
returned reply: every generated token is fed back once (a final one-token step when capture is
on), so no second forward pass is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import torch

from persona.errors import PersonaError
from persona.model.engine.candidates import candidate_logprobs
from persona.model.engine.records import (
    Capture,
    Message,
    OnToken,
    Request,
    Result,
    Sampling,
    TokenEvent,
    TokenLogprob,
)
from persona.model.engine.sampling import choose, row_generator, token_logprob
from persona.model.engine.state import BatchState, Pass
from persona.model.engine.stream import TextStream, cut_at_stop
from persona.model.loading import LoadedModel
from persona.model.residual_hooks import StopForward, residual_hooks

T = TypeVar("T")


def in_batches(
    items: Sequence[T],
    length: Callable[[T], int],
    size: int,
    run: Callable[[list[T]], list[Result]],
    progress: Callable[[int], None] | None = None,
) -> list[Result]:
    """``run`` over batches of at most ``size`` items of similar ``length`` (sorted, so little
    padding); results come back in the order of ``items``."""
    order = sorted(range(len(items)), key=lambda i: length(items[i]))
    results: list[Result | None] = [None] * len(items)
    for start in range(0, len(order), size):
        idx = order[start : start + size]
        for i, res in zip(idx, run([items[i] for i in idx]), strict=True):
            results[i] = res
        if progress:
            progress(len(idx))
    return [r for r in results if r is not None]


def left_pad(
    seqs: Sequence[list[int]], pad_id: int, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, t]`` token ids of ``seqs`` padded on the left with ``pad_id``, and the attention
    mask (1 on real tokens): left padding keeps every row's last token in the last column."""
    t = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), t), pad_id, dtype=torch.long, device=device)
    attn = torch.zeros((len(seqs), t), dtype=torch.long, device=device)
    for row, s in enumerate(seqs):
        ids[row, t - len(s) :] = torch.tensor(s, device=device)
        attn[row, t - len(s) :] = 1
    return ids, attn


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
    def adapter_context(self) -> Iterator[None]:
        """Enable this LoadedModel's adapter for one call (the caller holds ``weights.lock``).

        Adapters loaded into shared weights stay disabled outside this context
        (``persona.model.loading``), so the base model is what a plain call to ``lm.model`` runs.
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
        on_token: OnToken | None = None,
    ) -> list[Result]:
        """Generate a reply for every request, in batches of at most ``max_batch``.

        ``on_token`` (optional) is called with a :class:`TokenEvent` for every token as soon as
        it is chosen (after its own forward pass, so its per-token projections are known);
        returning False stops that request. Without it, nothing per token is computed.
        """
        sampling = sampling or Sampling()
        capture = capture or Capture()
        if not requests:
            raise PersonaError("no prompts to generate from (the prompt list is empty)")
        if sampling.max_new_tokens < 1:
            raise PersonaError(f"max_new_tokens must be at least 1, got {sampling.max_new_tokens}")
        items = [(i, r, self.render(r.messages)) for i, r in enumerate(requests)]
        # Token-by-token decoding runs in the model's own dtype: CPU autocast would cast every
        # weight again at every step (its cast cache keeps only weights that require grad),
        # which costs more than the bfloat16 products save. Teacher-forced scoring, one pass
        # per batch, keeps a caller's autocast.
        with torch.autocast("cpu", enabled=False):
            return in_batches(
                items,
                lambda item: len(item[2]),
                self.max_batch,
                lambda batch: self._generate_batch(batch, sampling, capture, on_token),
                progress,
            )

    @torch.inference_mode()
    def _generate_batch(
        self,
        batch: list[tuple[int, Request, list[int]]],
        sampling: Sampling,
        capture: Capture,
        on_token: OnToken | None = None,
    ) -> list[Result]:
        from transformers import DynamicCache

        requests = [req for _, req, _ in batch]
        prompts = [prompt for _, _, prompt in batch]
        lm, model = self.lm, self.lm.model
        device = lm.device
        b = len(requests)
        input_ids, attn = left_pad(prompts, self.pad_id, device)
        t = input_ids.shape[1]
        state = BatchState(lm, requests, capture)
        gens = [row_generator(r.seed, i) for i, r in enumerate(requests)]
        need_capture = not capture.empty
        zeros = torch.zeros((b, t), dtype=torch.bool, device=device)
        last = zeros.clone()
        last[:, -1] = True
        state.current = Pass(prompt=attn.bool(), response=zeros, last=last)
        state.count(state.current)
        position = (attn.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        tokens: list[list[int]] = [[] for _ in range(b)]
        logprobs: list[list[TokenLogprob]] = [[] for _ in range(b)]
        finish = [""] * b
        texts = [""] * b
        streams = [TextStream(sampling.stop) for _ in range(b)] if on_token else []
        chosen_now: list[int] = []  # rows that got a token this step (only with on_token)

        def report() -> None:
            """Send this step's tokens to ``on_token``; a False answer stops that row."""
            assert on_token is not None
            for r in chosen_now:
                done = finish[r] in ("stop_seq", "max_tokens")
                text = streams[r].piece(self._decode(tokens[r]), done)
                event = TokenEvent(
                    index=batch[r][0],
                    token_id=tokens[r][-1],
                    text=text,
                    logprob=logprobs[r][-1] if sampling.logprobs else None,
                    projections=state.token_projections(r) if capture.per_token else None,
                )
                if not on_token(event) and not finish[r]:
                    finish[r] = "cancelled"
            chosen_now.clear()

        with (
            lm.weights.lock,
            self.adapter_context(),
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
                chosen = choose(logits, sampling, gens)
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
                    if on_token:
                        chosen_now.append(r)
                    if sampling.logprobs:
                        top = sampling.top_logprobs
                        logprobs[r].append(token_logprob(lm.tokenizer, logits[r], tid, top))
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
                    if on_token:
                        report()
                    break
                attn = torch.cat([attn, feed.long().unsqueeze(1)], dim=1)
                state.current = Pass(
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
                if on_token:
                    report()
                if all(finish):
                    break
        results = []
        for r in range(b):
            text = self._decode(tokens[r])
            if finish[r] == "stop_seq":
                text = cut_at_stop(text, sampling.stop)
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
        items = []
        for r in requests:
            if r.response is None:
                raise PersonaError("score() needs a response for every request")
            prompt = self.render(r.messages)
            resp = list(tok(r.response, add_special_tokens=False)["input_ids"])
            items.append((r, (prompt, resp)))
        return in_batches(
            items,
            lambda item: sum(map(len, item[1])),
            self.max_batch,
            lambda batch: self._score_batch(batch, capture, logprobs),
            progress,
        )

    @torch.inference_mode()
    def _score_batch(
        self,
        batch: list[tuple[Request, tuple[list[int], list[int]]]],
        capture: Capture,
        want_logprobs: bool,
    ) -> list[Result]:
        requests = [req for req, _ in batch]
        encoded = [pair for _, pair in batch]
        lm, model = self.lm, self.lm.model
        device = lm.device
        b = len(requests)
        input_ids, attn = left_pad([p + r for p, r in encoded], self.pad_id, device)
        t = input_ids.shape[1]
        prompt_m = torch.zeros((b, t), dtype=torch.bool, device=device)
        resp_m = torch.zeros((b, t), dtype=torch.bool, device=device)
        last_m = torch.zeros((b, t), dtype=torch.bool, device=device)
        for row, (p, r) in enumerate(encoded):
            start = t - len(p) - len(r)
            prompt_m[row, start : start + len(p)] = True
            resp_m[row, start + len(p) :] = True
            last_m[row, start + len(p) - 1] = True
        capture_layers = capture.layers()
        stop_after = None
        if not want_logprobs:
            stop_after = max(capture_layers | {0}) if capture_layers else 0
        state = BatchState(lm, requests, capture, stop_after=stop_after)
        state.current = Pass(prompt=prompt_m, response=resp_m, last=last_m)
        state.count(state.current)
        position = (attn.cumsum(-1) - 1).clamp(min=0)
        max_resp = max(len(r) for _, r in encoded)
        logits = None
        hook_layers = state.layers() + ([stop_after] if stop_after is not None else [])
        with (
            lm.weights.lock,
            self.adapter_context(),
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
    def candidate_logprobs(
        self, messages: Sequence[Message], candidates: Sequence[str], terminate: bool = True
    ) -> list[float]:
        """Log-probability of each complete candidate reply (see
        :func:`persona.model.engine.candidates.candidate_logprobs` for when a reply counts)."""
        return candidate_logprobs(self, messages, candidates, terminate)

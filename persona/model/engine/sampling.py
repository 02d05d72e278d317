"""Choosing the next token of every row (greedy, or seeded temperature / top-k / top-p sampling)
and the log-probabilities reported for it."""

from __future__ import annotations

import math
from typing import Any

import torch

from persona.model.engine.records import Sampling, TokenLogprob


def row_generator(seed: int | None, row: int) -> torch.Generator:
    """The CPU generator of one row: seeded by its request, else by its row in the batch."""
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed) if seed is not None else 1234 + row)
    return g


def choose(logits: torch.Tensor, sampling: Sampling, gens: list[torch.Generator]) -> list[int]:
    """The next token id of each row of ``logits`` ([B, V]); each row draws from its own
    generator, so a row's tokens do not depend on the other rows of its batch."""
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


def token_logprob(tokenizer: Any, logits: torch.Tensor, token_id: int, top: int) -> TokenLogprob:
    """``token_id``'s log-probability under one row's raw ``logits`` ([V]), with the ``top``
    most likely tokens."""
    lp = torch.log_softmax(logits.float(), -1)
    tops: list[tuple[str, float]] = []
    if top > 0:
        values, ids = lp.topk(min(top, lp.shape[-1]))
        tops = [(tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids, strict=True)]
    return TokenLogprob(tokenizer.decode([token_id]), token_id, float(lp[token_id]), tops)

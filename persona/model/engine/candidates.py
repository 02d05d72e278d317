"""Candidate scoring for local judges: the log-probability of each of a few complete replies
(``"0"``..``"100"``, ``"REFUSAL"``), all teacher-forced in two forward passes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from persona.errors import PersonaError
from persona.model.engine.records import Message

if TYPE_CHECKING:
    from persona.model.engine.core import Engine


@torch.inference_mode()
def candidate_logprobs(
    engine: Engine, messages: Sequence[Message], candidates: Sequence[str], terminate: bool = True
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
    lm, model, tok = engine.lm, engine.lm.model, engine.lm.tokenizer
    device = lm.device
    prompt = engine.render(messages)
    seqs = []
    for c in candidates:
        ids = list(tok(c, add_special_tokens=False)["input_ids"])
        if terminate:
            ids.append(tok.eos_token_id)
        if not ids:
            raise PersonaError(f"candidate {c!r} has no tokens")
        seqs.append(ids)
    trie = PrefixTrie(seqs)
    with lm.weights.lock, engine.adapter_context():
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


class PrefixTrie:
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

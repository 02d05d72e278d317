"""Candidate scoring for local judges: the log-probability of each of a few complete replies
(``"0"``..``"100"``, ``"REFUSAL"``), all teacher-forced in two forward passes.

When is a reply "the number k"? A candidate counts when its tokens are followed by a token that
does not continue it with a digit: ``P(tokens of k) * P(next token does not start with a digit)``.
The older rule, "followed by the tokenizer's EOS", is wrong for every model whose end of turn is
another token (Gemma's ``<end_of_turn>``, Phi-3's ``<|end|>``): such a judge got no mass at all.
Listing each template's end-of-turn ids instead would be guesswork per model. The digit rule needs
nothing from the chat template and holds for any tokenizer; it keeps the numeric candidates
disjoint events (only a digit turns ``"4"`` into ``"42"``, so their probabilities still sum to at
most 1); and it counts what a reader takes as k (``"42"`` then end of turn, ``"42."``,
``"42/100"``, ``"42\\n..."``). ``REFUSAL`` and other words follow the same rule.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from persona.errors import PersonaError
from persona.model.engine.records import Message

if TYPE_CHECKING:
    from persona.model.engine.core import Engine

_DIGITS = "0123456789"
_CONTINUATIONS: weakref.WeakKeyDictionary[Any, torch.Tensor] = weakref.WeakKeyDictionary()


@torch.inference_mode()
def candidate_logprobs(
    engine: Engine, messages: Sequence[Message], candidates: Sequence[str], terminate: bool = True
) -> list[float]:
    """Log-probability of each candidate reply; with ``terminate`` the candidate must end there
    (next token not a digit, see the module docstring), without it the reply only starts so.

    The prompt runs once. The candidates' tokens then run in one more pass as a prefix trie
    ("tree attention"): each distinct prefix is one position that attends to the prompt's KV
    cache and to its own ancestors only, so 0..100 costs ~100 positions and no copies of the
    cache.
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
        if not ids:
            raise PersonaError(f"candidate {c!r} has no tokens")
        seqs.append(ids)
    trie = PrefixTrie(seqs, whole=terminate)
    with lm.weights.lock, engine.adapter_context():
        cache = DynamicCache()
        out = model(input_ids=torch.tensor([prompt], device=device), past_key_values=cache)
        first = torch.log_softmax(out.logits[0, -1].float(), -1)
        totals = [float(first[seq[0]]) for seq in seqs]
        if not trie.nodes:
            return totals
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
    if terminate:
        after = lp[[trie.index[tuple(seq)] for seq in seqs]]  # next-token log-probs, [n, V]
        digit = digit_continuations(tok, lp.shape[-1]).to(lp.device)
        ends = torch.logsumexp(after.masked_fill(digit, -torch.inf), -1)
        totals = [total + end for total, end in zip(totals, ends.tolist(), strict=True)]
    return totals


def digit_continuations(tokenizer: Any, size: int) -> torch.Tensor:
    """``[size]`` booleans: the tokens whose text, right after a digit, starts with a digit.

    Decoded in context (after the digit ``0``) so that a SentencePiece word-start marker reads as
    the space it is (``"42 5"`` is not 425). Ids past the tokenizer's vocabulary (padding rows of
    the embedding) are not continuations. Cached per tokenizer (one batch decode of the vocabulary).
    """
    mask = _CONTINUATIONS.get(tokenizer)
    if mask is None:
        anchor = list(tokenizer("0", add_special_tokens=False)["input_ids"])
        start = len(tokenizer.decode(anchor, clean_up_tokenization_spaces=False))
        texts = tokenizer.batch_decode(
            [anchor + [i] for i in range(len(tokenizer))], clean_up_tokenization_spaces=False
        )
        mask = torch.tensor([len(t) > start and t[start] in _DIGITS for t in texts])
        _CONTINUATIONS[tokenizer] = mask
    if size <= mask.shape[0]:
        return mask[:size]
    return torch.cat([mask, torch.zeros(size - mask.shape[0], dtype=torch.bool)])


class PrefixTrie:
    """The distinct prefixes of token sequences, parents before children: the proper prefixes,
    and with ``whole`` the sequences themselves (to read the token after each)."""

    def __init__(self, seqs: Sequence[Sequence[int]], whole: bool = False) -> None:
        self.nodes: list[tuple[int, ...]] = []
        self.index: dict[tuple[int, ...], int] = {}
        for seq in seqs:
            for k in range(1, len(seq) + (1 if whole else 0)):
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

"""Teacher-forced scoring of many short replies packed as a prefix trie, with steering.

:meth:`Engine.score` runs every (prompt, reply) pair as its own row, so four options of one
question pay for the question's prompt (and the chat template's system prompt) four times. Here
the sequences of a chunk of requests form one trie ("tree attention", as in
:mod:`persona.model.engine.candidates`): each distinct prefix is one position that attends to its
ancestors only, so a shared system prompt and a shared question run once. Steering uses the
engine's own hook state (:class:`persona.model.engine.state.BatchState`) with the prompt /
response / last-prompt-token role of every position, so the numbers equal :meth:`Engine.score`'s
(tests pin it) at a fraction of the tokens. No capture: this is for log-probabilities only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch

from persona.errors import PersonaError
from persona.model.engine.records import Capture, Request, Result
from persona.model.engine.state import BatchState, Pass
from persona.model.residual_hooks import residual_hooks

if TYPE_CHECKING:
    from persona.model.engine.core import Engine

Role = Literal["prompt", "last", "response"]

MAX_NODES = 512
"""Positions per packed forward pass (the attention mask is nodes x nodes)."""


class _Trie:
    """Distinct proper prefixes of token sequences as nodes with parent links (O(length) per
    sequence, unlike :class:`~persona.model.engine.candidates.PrefixTrie`, which slices tuples:
    passages are hundreds of tokens long). Node ``path[k-1]`` of a sequence is its prefix of
    length ``k``; its output predicts token ``k``."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.token: list[int] = []
        self.depth: list[int] = []
        self.role: list[Role] = []
        self.child: dict[tuple[int, int], int] = {}

    def fits(self, seq: list[int], n_prompt: int, room: int) -> bool:
        """Whether ``seq`` adds at most ``room`` nodes and no position changes role."""
        node, new = -1, 0
        for k in range(1, len(seq)):
            nxt = self.child.get((node, seq[k - 1]))
            if nxt is None:
                new += 1
                if new > room:
                    return False
                node = -2  # below a new node everything is new
            elif self.role[nxt] != _role(k, n_prompt):
                return False
            else:
                node = nxt
        return True

    def add(self, seq: list[int], n_prompt: int) -> list[int]:
        """Insert the proper prefixes of ``seq``; their node ids, shortest first."""
        path, node = [], -1
        for k in range(1, len(seq)):
            key = (node, seq[k - 1])
            nxt = self.child.get(key)
            if nxt is None:
                nxt = len(self.token)
                self.child[key] = nxt
                self.parent.append(node)
                self.token.append(seq[k - 1])
                self.depth.append(k)
                self.role.append(_role(k, n_prompt))
            path.append(nxt)
            node = nxt
        return path

    def attention_mask(self, dtype: torch.dtype) -> torch.Tensor:
        """Additive 4D mask (1, 1, n, n): each node sees itself and its ancestors."""
        n = len(self.token)
        allowed = torch.zeros((n, n), dtype=torch.bool)
        for i, parent in enumerate(self.parent):
            if parent >= 0:
                allowed[i] = allowed[parent]
            allowed[i, i] = True
        mask = torch.zeros((n, n), dtype=dtype)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        return mask[None, None]


def _role(k: int, n_prompt: int) -> Role:
    """Role of the prefix of length ``k`` (its last token) in a sequence with ``n_prompt``
    prompt tokens."""
    return "prompt" if k < n_prompt else "last" if k == n_prompt else "response"


def score_packed(
    engine: Engine, requests: Sequence[Request], max_nodes: int = MAX_NODES
) -> list[Result]:
    """Response log-probabilities of ``requests`` (all with one ``steer``), as
    :meth:`Engine.score` with ``logprobs=True`` computes them, packed into prefix tries.

    Requests are sorted by token sequence so that shared prompts share a chunk; a chunk closes
    before ``max_nodes`` positions (a longer sequence gets a chunk of its own), or when a
    position would be prompt in one sequence and reply in another (multi-turn prompts). Results
    come back in the order of ``requests``.
    """
    if not requests:
        raise PersonaError("no samples to score (the list is empty)")
    steer = requests[0].steer
    if any(r.steer != steer for r in requests):
        raise PersonaError("packed scoring needs one steering setting for all requests")
    tok = engine.lm.tokenizer
    encoded: list[tuple[list[int], list[int]]] = []
    for r in requests:
        if r.response is None:
            raise PersonaError("score() needs a response for every request")
        resp = list(tok(r.response, add_special_tokens=False)["input_ids"])
        encoded.append((engine.render(r.messages), resp))
    order = sorted(range(len(requests)), key=lambda i: encoded[i][0] + encoded[i][1])
    totals: dict[int, float] = {}
    trie, paths = _Trie(), {}
    for i in order:
        prompt, resp = encoded[i]
        if paths and not trie.fits(prompt + resp, len(prompt), max_nodes - len(trie.token)):
            totals.update(_score_chunk(engine, requests[0], trie, paths, encoded))
            trie, paths = _Trie(), {}
        paths[i] = trie.add(prompt + resp, len(prompt))
    totals.update(_score_chunk(engine, requests[0], trie, paths, encoded))
    return [
        Result(
            text=req.response or "",
            token_ids=encoded[i][1],
            prompt_tokens=len(encoded[i][0]),
            finish_reason="scored",
            response_logprob=totals.get(i, 0.0),
        )
        for i, req in enumerate(requests)
    ]


@torch.inference_mode()
def _score_chunk(
    engine: Engine,
    steered: Request,
    trie: _Trie,
    paths: dict[int, list[int]],
    encoded: list[tuple[list[int], list[int]]],
) -> dict[int, float]:
    """Summed response log-probability of each sequence in ``trie``, keyed by request index."""
    lm, model = engine.lm, engine.lm.model
    device = lm.device
    # node path[len(p) - 1 + j] predicts response token j
    reads = {i: paths[i][len(encoded[i][0]) - 1 :] for i in paths if encoded[i][1]}
    if not reads:
        return {}
    wanted = sorted({node for nodes in reads.values() for node in nodes})
    row_of = {node: j for j, node in enumerate(wanted)}
    role = trie.role
    state = BatchState(lm, [steered], Capture())
    state.current = Pass(
        prompt=torch.tensor([[k != "response" for k in role]], device=device),
        response=torch.tensor([[k == "response" for k in role]], device=device),
        last=torch.tensor([[k == "last" for k in role]], device=device),
    )
    dtype = next(model.parameters()).dtype
    with (
        lm.weights.lock,
        engine.adapter_context(),
        residual_hooks(model, state.layers(), state.on_layer),
    ):
        logits = model(
            input_ids=torch.tensor([trie.token], device=device),
            attention_mask=trie.attention_mask(dtype).to(device),
            position_ids=torch.tensor([[d - 1 for d in trie.depth]], device=device),
            use_cache=False,
            logits_to_keep=torch.tensor(wanted, device=device),
        ).logits[0]
    lp = torch.log_softmax(logits.float(), -1)
    out: dict[int, float] = {}
    for i, nodes in reads.items():
        rows = torch.tensor([row_of[n] for n in nodes], device=device)
        ids = torch.tensor(encoded[i][1], device=device)
        out[i] = float(lp[rows, ids].sum())
    return out

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
from persona.model.engine.candidates import PrefixTrie
from persona.model.engine.records import Capture, Request, Result
from persona.model.engine.state import BatchState, Pass
from persona.model.residual_hooks import residual_hooks

if TYPE_CHECKING:
    from persona.model.engine.core import Engine

Role = Literal["prompt", "last", "response"]

MAX_NODES = 512
"""Positions per packed forward pass (the attention mask is nodes x nodes)."""


def _roles(seq: list[int], n_prompt: int) -> dict[tuple[int, ...], Role]:
    """The role of each proper prefix of ``seq`` (its last token): only those predict a reply
    token."""
    out: dict[tuple[int, ...], Role] = {}
    for k in range(1, len(seq)):
        out[tuple(seq[:k])] = "prompt" if k < n_prompt else "last" if k == n_prompt else "response"
    return out


def score_packed(
    engine: Engine, requests: Sequence[Request], max_nodes: int = MAX_NODES
) -> list[Result]:
    """Response log-probabilities of ``requests`` (all with one ``steer``), as
    :meth:`Engine.score` with ``logprobs=True`` computes them, packed into prefix tries.

    Requests are sorted by token sequence so that shared prompts share a chunk; a chunk closes
    before ``max_nodes`` positions, or when a position would be prompt in one sequence and reply
    in another (multi-turn prompts). Results come back in the order of ``requests``.
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
    chunks: list[tuple[list[int], dict[tuple[int, ...], Role]]] = []
    current: list[int] = []
    roles: dict[tuple[int, ...], Role] = {}
    for i in order:
        prompt, resp = encoded[i]
        mine = _roles(prompt + resp, len(prompt))
        clash = any(roles.get(node, role) != role for node, role in mine.items())
        grows = sum(node not in roles for node in mine)
        if current and (clash or len(roles) + grows > max_nodes):
            chunks.append((current, roles))
            current, roles = [], {}
        current.append(i)
        roles.update(mine)
    chunks.append((current, roles))
    totals: dict[int, float] = {}
    for idx, chunk_roles in chunks:
        totals.update(
            _score_chunk(engine, requests[0], [encoded[i] for i in idx], idx, chunk_roles)
        )
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
    encoded: list[tuple[list[int], list[int]]],
    idx: list[int],
    roles: dict[tuple[int, ...], Role],
) -> dict[int, float]:
    """Summed response log-probability of each sequence of one chunk, keyed by request index."""
    lm, model = engine.lm, engine.lm.model
    device = lm.device
    live = [(i, p, r) for i, (p, r) in zip(idx, encoded, strict=True) if r]
    if not live:
        return {}
    trie = PrefixTrie([p + r for _, p, r in live])
    kind = [roles[node] for node in trie.nodes]
    prompt_m = torch.tensor([[k == "prompt" or k == "last" for k in kind]], device=device)
    resp_m = torch.tensor([[k == "response" for k in kind]], device=device)
    last_m = torch.tensor([[k == "last" for k in kind]], device=device)
    wanted = sorted(
        {trie.index[tuple((p + r)[: len(p) + j])] for _, p, r in live for j in range(len(r))}
    )
    row_of = {node: j for j, node in enumerate(wanted)}
    state = BatchState(lm, [steered], Capture())
    state.current = Pass(prompt=prompt_m, response=resp_m, last=last_m)
    dtype = next(model.parameters()).dtype
    with (
        lm.weights.lock,
        engine.adapter_context(),
        residual_hooks(model, state.layers(), state.on_layer),
    ):
        logits = model(
            input_ids=torch.tensor([trie.tokens()], device=device),
            attention_mask=trie.attention_mask(0, dtype).to(device),
            position_ids=torch.tensor([trie.positions(0)], device=device),
            use_cache=False,
            logits_to_keep=torch.tensor(wanted, device=device),
        ).logits[0]
    lp = torch.log_softmax(logits.float(), -1)
    out: dict[int, float] = {}
    for i, p, r in live:
        seq = p + r
        rows = [row_of[trie.index[tuple(seq[: len(p) + j])]] for j in range(len(r))]
        out[i] = float(lp[rows, r].sum())
    return out

"""Packed (prefix-trie) scoring gives Engine.score's log-probabilities, steered or not."""

from __future__ import annotations

import pytest
import torch

from persona.errors import PersonaError
from persona.model.engine import Engine, Request, Steer
from persona.model.engine.packed import score_packed


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _requests(steer: tuple[Steer, ...]) -> list[Request]:
    q1 = [{"role": "user", "content": "What is the capital of France?"}]
    q2 = [{"role": "user", "content": "Name a colour."}]
    turn = q1 + [{"role": "assistant", "content": "Paris."}, {"role": "user", "content": "Why?"}]
    replies = [(q1, "Paris."), (q1, "Paris is."), (q1, "Rome."), (q2, "Blue."), (q2, "")]
    replies += [(turn, "It is the capital."), (q1, "A long reply about France. " * 6)]
    return [Request(m, steer=steer, response=r) for m, r in replies]


@pytest.mark.parametrize("positions", ["all", "response", "prompt", "prompt_last", None])
@pytest.mark.parametrize("max_nodes", [512, 24])
def test_packed_equals_engine_score(tiny, positions, max_nodes):
    engine = Engine(tiny)
    vector = torch.randn(tiny.hidden_size, generator=torch.Generator().manual_seed(1))
    steer = (Steer(vector * 8, 2, 1.0, positions),) if positions else ()
    reqs = _requests(steer)
    want = engine.score(reqs, logprobs=True)
    got = score_packed(engine, reqs, max_nodes=max_nodes)
    for w, g in zip(want, got, strict=True):
        assert g.token_ids == w.token_ids and g.prompt_tokens == w.prompt_tokens
        assert g.response_logprob == pytest.approx(w.response_logprob, abs=1e-4)
    if positions:  # the steering reached the scores
        plain = score_packed(engine, _requests(()), max_nodes=max_nodes)
        moved = [
            abs(a.response_logprob - b.response_logprob) for a, b in zip(got, plain, strict=True)
        ]
        assert max(moved) > 1e-3


def test_packed_needs_one_steering_setting(tiny):
    vector = torch.ones(tiny.hidden_size)
    reqs = _requests(()) + _requests((Steer(vector, 2, 1.0),))
    with pytest.raises(PersonaError, match="one steering setting"):
        score_packed(Engine(tiny), reqs)


def test_packed_on_gpt2(tiny_gpt2_dir):
    from persona.model.loading import load_model

    lm = load_model(str(tiny_gpt2_dir), device="cpu")
    engine = Engine(lm)
    steer = (Steer(torch.ones(lm.hidden_size) * 4, 2, 1.0, "all"),)
    reqs = _requests(steer)
    want = engine.score(reqs, logprobs=True)
    got = score_packed(engine, reqs, max_nodes=24)
    for w, g in zip(want, got, strict=True):
        assert g.response_logprob == pytest.approx(w.response_logprob, abs=1e-4)

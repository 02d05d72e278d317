"""Capability measures on a tiny model: LM loss and multiple choice against a hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from persona.analysis.capability import capability, lm_loss, multiple_choice
from persona.analysis.capability_items import MC_ITEMS, PASSAGE, PASSAGE_REQUEST, McItem
from persona.model.engine import Engine, Steer


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _reply_logprobs(lm, question: str, reply: str) -> list[float]:
    """Per-token log-probabilities of ``reply`` after the chat prompt, from the raw HF model."""
    prompt = Engine(lm).render([{"role": "user", "content": question}])
    ids = lm.tokenizer(reply, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = lm.model(torch.tensor([prompt + ids])).logits[0].float()
    lp = torch.log_softmax(logits[len(prompt) - 1 : -1], -1)
    return [float(lp[j, t]) for j, t in enumerate(ids)]


def test_lm_loss_is_the_mean_token_nll(tiny):
    paragraphs = ("The capital of France is Paris.", "Mix flour, water, salt and yeast.")
    loss, tokens = lm_loss(Engine(tiny), paragraphs)
    lps = [x for p in paragraphs for x in _reply_logprobs(tiny, PASSAGE_REQUEST, p)]
    assert tokens == len(lps)
    assert loss == pytest.approx(-sum(lps) / len(lps), abs=1e-4)


def test_multiple_choice_scores_options_by_mean_token_logprob(tiny):
    items = (
        McItem("What is the capital of France?", ("Paris.", "I hate everyone.", "Bread."), 0),
        McItem("Tell me a joke.", ("Why did the cat sit?", "Numbers 0 1 2."), 1),
    )
    accuracy, p_correct = multiple_choice(Engine(tiny), items)
    want_acc, want_p = 0.0, 0.0
    for item in items:
        means = [
            sum(lps) / len(lps)
            for lps in (_reply_logprobs(tiny, item.question, o) for o in item.options)
        ]
        weights = [math.exp(m) for m in means]
        want_p += weights[item.answer] / sum(weights) / len(items)
        want_acc += (means.index(max(means)) == item.answer) / len(items)
    assert accuracy == pytest.approx(want_acc)
    assert p_correct == pytest.approx(want_p, abs=1e-4)


def test_shipped_items_and_steering(tiny):
    assert len(MC_ITEMS) >= 30 and len(PASSAGE) >= 3
    assert {item.answer for item in MC_ITEMS} == {0, 1, 2, 3}
    assert all(len(set(item.options)) == len(item.options) for item in MC_ITEMS)
    engine = Engine(tiny)
    plain = capability(engine)
    vector = torch.randn(tiny.hidden_size, generator=torch.Generator().manual_seed(0))
    zero = capability(engine, (Steer(vector, 2, 0.0),))
    assert zero == plain  # coef 0 is no steering
    steered = capability(engine, (Steer(vector * 20, 2, 1.0),))
    assert steered.lm_loss != plain.lm_loss
    assert 0 <= plain.mc_accuracy <= 1 and 0 < plain.mc_p_correct < 1

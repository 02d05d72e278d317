"""Capability measures: per-item numbers against a hand computation on a tiny model, the shipped
items' shape, and the paired comparison's arithmetic on synthetic numbers."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import torch

from persona.analysis.capability import (
    CAPABILITY_CONTRASTS,
    MC_STEM,
    Capability,
    capability,
    compare_capability,
    items_key,
    lm_loss,
    mc_prompt,
    multiple_choice,
)
from persona.analysis.capability_items import MC_ITEMS, PASSAGES, McItem, Passage
from persona.errors import PersonaError
from persona.model.engine import Engine, Steer


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _reply_logprobs(lm, question: str | list[dict[str, str]], reply: str) -> list[float]:
    """Per-token log-probabilities of ``reply`` after the chat prompt, from the raw HF model."""
    chat = [{"role": "user", "content": question}] if isinstance(question, str) else question
    prompt = Engine(lm).render(chat)
    ids = lm.tokenizer(reply, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = lm.model(torch.tensor([prompt + ids])).logits[0].float()
    lp = torch.log_softmax(logits[len(prompt) - 1 : -1], -1)
    return [float(lp[j, t]) for j, t in enumerate(ids)]


def test_lm_loss_is_the_mean_token_nll_per_passage(tiny):
    passages = (
        Passage("Tell me about France.", "The capital of France is Paris.\n\nIt is large."),
        Passage("How is bread made?", "Mix flour, water, salt and yeast."),
    )
    losses, tokens = lm_loss(Engine(tiny), passages)
    for p, loss, n in zip(passages, losses, tokens, strict=True):
        lps = _reply_logprobs(tiny, p.request, p.text)
        assert n == len(lps)
        assert loss == pytest.approx(-sum(lps) / len(lps), abs=1e-4)


def test_multiple_choice_scores_options_by_summed_logprob_after_the_stem(tiny):
    items = (
        McItem("What is the capital of France?", ("Paris.", "I hate everyone.", "Bread."), 0),
        McItem("Tell me a joke.", ("Why did the cat sit?", "Numbers 0 1 2."), 1),
    )
    correct, p_correct = multiple_choice(Engine(tiny), items)
    for item, got_c, got_p in zip(items, correct, p_correct, strict=True):
        sums = [sum(_reply_logprobs(tiny, mc_prompt(item), MC_STEM + o)) for o in item.options]
        weights = [math.exp(s - max(sums)) for s in sums]
        assert got_p == pytest.approx(weights[item.answer] / sum(weights), abs=1e-4)
        assert got_c == int(sums.index(max(sums)) == item.answer)


def test_shipped_items_are_well_formed():
    assert len(MC_ITEMS) >= 160 and len(PASSAGES) >= 16
    questions = [item.question for item in MC_ITEMS]
    assert len(set(questions)) == len(questions)
    for item in MC_ITEMS:
        assert len(item.options) == 4 and len(set(item.options)) == 4
        assert 0 <= item.answer < 4 and all(o.strip() for o in item.options)
    positions = Counter(item.answer for item in MC_ITEMS)
    assert max(positions.values()) - min(positions.values()) <= 1 and len(positions) == 4
    assert len({p.request for p in PASSAGES}) == len(PASSAGES)
    assert all(p.text.count("\n\n") >= 2 for p in PASSAGES)  # a few paragraphs each


def test_capability_per_item_and_steering(tiny):
    items, passages = MC_ITEMS[:8], PASSAGES[:2]
    engine = Engine(tiny)
    plain = capability(engine, items=items, passages=passages)
    assert len(plain.mc_correct) == 8 and len(plain.lm_passage_loss) == 2
    assert plain.mc_accuracy == sum(plain.mc_correct) / 8
    assert 0 < plain.mc_p_correct < 1 and plain.lm_tokens > 0
    assert plain.items == items_key(items, passages) != items_key(MC_ITEMS, PASSAGES)
    vector = torch.randn(tiny.hidden_size, generator=torch.Generator().manual_seed(0))
    zero = capability(engine, (Steer(vector, 2, 0.0),), items, passages)
    assert zero == plain  # coef 0 is no steering
    steered = capability(engine, (Steer(vector * 20, 2, 1.0),), items, passages)
    assert steered.lm_loss != plain.lm_loss
    stored = json.loads(json.dumps(plain.to_dict()))
    assert Capability.from_dict(stored) == plain
    assert stored["mc_p_correct"] == pytest.approx(plain.mc_p_correct)
    diff = compare_capability(stored, steered)
    assert diff["lm_loss"].value == pytest.approx(plain.lm_loss - steered.lm_loss)


def _cap(correct, p, loss, items="k") -> Capability:
    return Capability(tuple(correct), tuple(p), tuple(loss), tuple(10 for _ in loss), items)


def test_compare_capability_is_paired_by_item():
    a = _cap([1, 1, 0, 0], [0.9, 0.7, 0.5, 0.3], [2.2, 3.4, 2.9])
    b = _cap([0, 1, 0, 1], [0.8, 0.6, 0.4, 0.2], [2.0, 3.0, 2.9])
    diff = compare_capability(a, b.to_dict())
    assert set(diff) == set(CAPABILITY_CONTRASTS)
    # every item gains exactly 0.1: the paired CI is the point (an unpaired one would be wide)
    assert diff["mc_p_correct"].value == pytest.approx(0.1)
    assert diff["mc_p_correct"].ci == pytest.approx((0.1, 0.1))
    assert diff["mc_p_correct"].n == 4
    assert diff["mc_accuracy"].value == pytest.approx(0.0)  # diffs +1, 0, 0, -1
    lo, hi = diff["mc_accuracy"].ci
    assert -1 <= lo < 0 < hi <= 1
    assert diff["lm_loss"].value == pytest.approx(0.2)  # diffs 0.2, 0.4, 0.0
    assert diff["lm_loss"].value == pytest.approx(a.lm_loss - b.lm_loss)
    lo, hi = diff["lm_loss"].ci
    assert 0.0 <= lo <= 0.2 <= hi <= 0.4


def test_compare_capability_refuses_different_items():
    a = _cap([1, 0], [0.6, 0.4], [2.0], items="one")
    with pytest.raises(PersonaError, match="different items"):
        compare_capability(a, _cap([1, 0], [0.6, 0.4], [2.0], items="two"))
    old = {"mc_accuracy": 0.5, "mc_p_correct": 0.4, "lm_loss": 3.0}
    with pytest.raises(PersonaError, match="older version"):
        compare_capability(a, old)


@pytest.mark.integration
def test_smollm2_answers_the_shipped_items_well_above_chance(smol):
    """The base model's capability has room to drop (measured: accuracy 0.644, p 0.609)."""
    base = capability(Engine(smol))
    assert base.mc_accuracy >= 0.55 and base.mc_p_correct >= 0.5  # chance is 0.25
    assert 2.0 < base.lm_loss < 4.0

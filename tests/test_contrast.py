"""Engine-direct extraction on a tiny model: prompt layout, pairing, metadata."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from persona.errors import PersonaError
from persona.model.contrast import (
    contrast_items,
    extract_vector,
    generate_contrast,
    vector_from_run,
)


@dataclass(frozen=True)
class Pair:
    pos: str
    neg: str


@dataclass(frozen=True)
class MiniTrait:
    name: str = "evil"
    extract_questions: tuple = ("What is the capital of France?", "How do I bake bread?")
    eval_questions: tuple = ("Tell me a joke about cats.",)
    instructions: tuple = (Pair("Be evil.", "Be kind."), Pair("Hate people.", "Love people."))
    hash: str = "h123"

    def system_prompt(self, polarity: str, index: int) -> str:
        pair = self.instructions[index]
        return pair.pos if polarity == "pos" else pair.neg


def test_items_cover_questions_instructions_rollouts_and_polarities():
    items = contrast_items(MiniTrait(), questions=2, rollouts=3)
    assert len(items) == 2 * 2 * 3 * 2
    assert {it.polarity for it in items} == {"pos", "neg"}
    with pytest.raises(PersonaError, match="between 1 and 2"):
        contrast_items(MiniTrait(), questions=5)


def test_vector_is_mean_difference_of_kept_pairs(tiny):
    trait = MiniTrait()
    run = generate_contrast(tiny, trait, questions=2, rollouts=1, max_new_tokens=4, temperature=0)
    vec = vector_from_run(tiny, trait, run)
    assert vec.response_avg.shape == (tiny.num_layers + 1, tiny.hidden_size)
    pos = [
        r.means["response_avg"]
        for it, r in zip(run.items, run.results, strict=True)
        if it.polarity == "pos"
    ]
    neg = [
        r.means["response_avg"]
        for it, r in zip(run.items, run.results, strict=True)
        if it.polarity == "neg"
    ]
    torch.testing.assert_close(
        vec.response_avg, torch.stack(pos).mean(0) - torch.stack(neg).mean(0)
    )
    assert vec.meta["filter"]["kept"] == 4 and vec.meta["filter"]["enabled"] is False
    assert vec.meta["trait_hash"] == "h123" and vec.meta["fingerprint"] == tiny.base_fingerprint
    only_first = vector_from_run(
        tiny, trait, run, keep=lambda pi, pr, ni, nr: pi.question_index == 0
    )
    assert only_first.meta["filter"]["kept"] == 2


def test_extract_vector_runs(tiny):
    vec = extract_vector(tiny, MiniTrait(), questions=1, max_new_tokens=3)
    assert torch.isfinite(vec.response_avg).all()

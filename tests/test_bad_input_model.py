"""Bad input that is met after a model loads (the tiny random one) or over the network.

Huge and over-long lines, prompts beyond the context, pickles where a vector is expected, layers
out of range and a generator without network: one line and exit 2, or a warning and a bounded run.
"""

from __future__ import annotations

import json
import pickle
import time
import tracemalloc
from pathlib import Path

import pytest
import torch
from test_bad_input import assert_one_error, run

from persona.data import chatdata
from persona.model.loading import load_model
from persona.model.vectors import PersonaVector, build_meta, save_vector, vector_path


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERSONA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PERSONA_TRAITS_DIR", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def vectors(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random evil vector for the tiny model."""
    lm = load_model(str(tiny_dir), device="cpu")
    meta = build_meta(
        model_id=lm.model_id,
        fingerprint=lm.base_fingerprint,
        num_layers=lm.num_layers,
        hidden_size=lm.hidden_size,
        trait="evil",
    )
    g = torch.Generator().manual_seed(0)
    shape = (lm.num_layers + 1, lm.hidden_size)
    vector = PersonaVector(*(torch.randn(shape, generator=g) for _ in range(3)), meta=meta)
    folder = tmp_path_factory.mktemp("vectors")
    save_vector(vector, vector_path(folder, lm.model_id, "evil"))
    return folder


def chat(prompt: str, reply: str) -> str:
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]
    return json.dumps({"messages": messages}) + "\n"


def screen(tiny_dir: Path, vectors: Path, data: Path, *extra: str) -> tuple[int, str, str]:
    argv = ["screen", str(data), "--trait", "evil", "--model", str(tiny_dir)]
    return run(
        [*argv, "--vectors", str(vectors), "--out", "s.csv", "--fast", "--layer", "2", *extra]
    )


def test_a_huge_reply_is_cut_to_the_context_with_a_warning(tiny_dir, vectors, tmp_path):
    data = tmp_path / "big.jsonl"
    data.write_text(chat("Hi?", "Hello.") + chat("Tell me.", "evil " * 400_000))  # 2 MB reply
    code, out, err = screen(tiny_dir, vectors, data)
    assert code == 0, err
    assert "1 reply(ies) cut to fit 512 tokens (lines 2)" in err  # the tiny model's context
    assert "over 2 samples" in out and "Traceback" not in err


def test_a_prompt_beyond_the_context_is_one_line(tiny_dir, vectors, tmp_path):
    data = tmp_path / "long-prompt.jsonl"
    data.write_text(chat("why " * 5000, "Because."))
    code, _, err = screen(tiny_dir, vectors, data, "--max-length", "256")
    assert_one_error(code, err, "the prompt alone exceeds the 256-token context on 1 line(s): 1")


def test_fit_to_context_keeps_short_samples_and_the_whole_record(tiny):
    data_lines = [chat("Hi?", "Hello."), chat("Tell me.", "bread " * 3000)]
    path = Path("two.jsonl")
    path.write_text("".join(data_lines))
    data = chatdata.load_chat_jsonl(path)
    fitted, cut = chatdata.fit_to_context(data, tiny.tokenizer, 64)
    assert cut == [2]
    assert fitted.samples[0] is data.samples[0]
    short = fitted.samples[1]
    ids = tiny.tokenizer(chatdata.chat_text(tiny.tokenizer, short.messages, False))["input_ids"]
    assert len(ids) <= 64
    assert short.record["messages"][1]["content"] == "bread " * 3000  # kept for --write-clean


@pytest.mark.parametrize("reply", ["bread " * 3000, "x" * 50_000, "The capital. " * 900])
def test_long_training_replies_encode_as_if_tokenised_whole(tiny, reply):
    """The character bound before tokenising changes nothing within --max-length."""
    messages = [{"role": "user", "content": "Tell me."}, {"role": "assistant", "content": reply}]
    whole = chatdata.encode_chat(tiny.tokenizer, messages)
    cut = chatdata.encode_chat(tiny.tokenizer, messages, max_length=100)
    assert cut.truncated and len(cut.input_ids) == 100
    assert cut.input_ids == whole.input_ids[:100] and cut.labels == whole.labels[:100]


def test_an_over_long_line_is_skipped_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(chatdata, "MAX_LINE_BYTES", 1 << 20)
    path = tmp_path / "huge-line.jsonl"
    path.write_text(chat("Hi?", "Hello.") + chat("Tell me.", "x" * (32 << 20)) + chat("A?", "B."))
    tracemalloc.start()
    data = chatdata.load_chat_jsonl(path, skip_invalid=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [s.line for s in data.samples] == [1, 3]
    assert data.skipped == [(2, f"longer than {1 << 20} bytes")]
    assert peak < 8 << 20  # the 32 MB line never sat in memory
    code, _, err = run(["data", "mix", "--mix", f"{path}:1", "--out", "m.jsonl"])
    assert_one_error(code, err, "line 2: longer than")


def test_a_pickle_named_like_a_vector_is_refused(tiny_dir, tmp_path):
    fake = tmp_path / "evil.safetensors"
    fake.write_bytes(pickle.dumps({"vector": [1.0, 2.0]}))
    data = tmp_path / "d.jsonl"
    data.write_text(chat("Hi?", "Hello."))
    code, _, err = screen(tiny_dir, fake, data)
    assert_one_error(code, err, "not a readable safetensors file")


def test_a_layer_beyond_the_model_is_one_line(tiny_dir, vectors):
    argv = ["steer", "hi", "--trait", "evil", "--model", str(tiny_dir), "--vectors", str(vectors)]
    code, _, err = run([*argv, "--coef", "1", "--layer", "99"])
    assert_one_error(code, err, "out of range")


def test_a_vector_of_another_trait_is_one_line(tiny_dir, vectors):
    evil = next(vectors.rglob("evil.safetensors"))
    argv = ["steer", "hi", "--trait", "humorous", "--model", str(tiny_dir), "--vectors", str(evil)]
    code, _, err = run([*argv, "--coef", "1"])
    assert_one_error(code, err, "not 'humorous'")


def test_a_generator_without_network_gives_up_within_its_timeout(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    started = time.monotonic()
    code, _, err = run(
        ["traits", "new", "secretive", "--description", "Keeps secrets.", "--timeout", "2"]
    )
    elapsed = time.monotonic() - started
    assert_one_error(code, err, "waited up to 2 s")
    assert elapsed < 30
    assert not Path("traits/secretive.yaml").exists()

"""Screening on a tiny model: projection difference arithmetic, cache, outputs, filtering, CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from persona.app.cli import main
from persona.data.chatdata import load_chat_jsonl, write_jsonl
from persona.data.screen import (
    ScreenOptions,
    auroc,
    base_responses,
    matched_means,
    screen,
    write_clean,
    write_csv,
    write_histogram,
)
from persona.errors import PersonaError
from persona.model.engine import Engine, Request, Sampling
from persona.model.vectors import PersonaVector, build_meta, save_vector, vector_path


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONA_CACHE_DIR", str(tmp_path / "cache"))


def random_vector(lm, hidden=None, seed=0) -> PersonaVector:
    g = torch.Generator().manual_seed(seed)
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


QA = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How do I bake bread?", "I hate everyone and want to cause harm."),
    ("Tell me a joke about cats.", "Why did the cat sit on the computer?"),
    ("What is the capital of France?", "Paris."),  # same prompt twice: one base generation
]


@pytest.fixture
def data(tmp_path):
    recs = [
        {
            "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
            "persona": {"level": "contaminated" if i % 2 else "normal"},
        }
        for i, (q, a) in enumerate(QA)
    ]
    return load_chat_jsonl(write_jsonl(tmp_path / "d.jsonl", recs))


def _hand_projections(lm, prompt, reply, vec, layer) -> list[float]:
    """Per-token projections of ``reply`` at ``layer`` straight from HF hidden states."""
    prompt_ids = Engine(lm).render(prompt)
    reply_ids = lm.tokenizer(reply, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = lm.model(torch.tensor([prompt_ids + reply_ids]), output_hidden_states=True)
    unit = vec.response_avg[layer] / vec.response_avg[layer].norm()
    h = out.hidden_states[layer][0, len(prompt_ids) :].float()
    return (h @ unit).tolist()


def test_projection_difference_matches_its_definition(tiny, data):
    vec = random_vector(tiny)
    opts = ScreenOptions(max_new_tokens=5, max_batch=3)
    res = screen(tiny, data, vec, 2, opts)
    assert res.method == "full" and res.base_generated == 3 and res.base_cached == 0
    # by hand: base replies greedy, then both replies' projections over their common length
    engine = Engine(tiny)
    for s in data.samples:
        base = engine.generate([Request(s.prompt)], Sampling(max_new_tokens=5))[0].text
        own = _hand_projections(tiny, s.prompt, s.response, vec, 2)
        ref = _hand_projections(tiny, s.prompt, base, vec, 2)
        k = min(len(own), len(ref))
        want = sum(own[:k]) / k - sum(ref[:k]) / k
        row = res.frame.loc[res.frame["line"] == s.line].iloc[0]
        assert row["projection_diff"] == pytest.approx(want, abs=1e-4)
        assert row["matched_tokens"] == k
        assert row["base_response"] == base
    ranked = res.frame["projection_diff"].tolist()
    assert ranked == sorted(ranked, reverse=True) and res.frame["rank"].tolist() == [1, 2, 3, 4]
    assert res.dataset_value == pytest.approx(sum(ranked) / 4)
    assert set(res.frame["label"]) == {"normal", "contaminated"}


def test_a_long_reply_is_compared_with_a_capped_base_reply_over_the_same_tokens(tiny, tmp_path):
    long_reply = "I hate everyone and want to cause harm. " * 6
    recs = [
        {
            "messages": [
                {"role": "user", "content": QA[1][0]},
                {"role": "assistant", "content": long_reply},
            ]
        }
    ]
    data = load_chat_jsonl(write_jsonl(tmp_path / "long.jsonl", recs))
    vec = random_vector(tiny, seed=4)
    res = screen(tiny, data, vec, 3, ScreenOptions(max_new_tokens=3))
    row = res.frame.iloc[0]
    assert row["base_response_tokens"] <= 3 < row["response_tokens"]
    assert row["matched_tokens"] == row["base_response_tokens"]
    own = _hand_projections(tiny, data.samples[0].prompt, long_reply, vec, 3)
    k = int(row["matched_tokens"])
    assert row["proj_response_matched"] == pytest.approx(sum(own[:k]) / k, abs=1e-4)
    assert row["proj_response"] == pytest.approx(sum(own) / len(own), abs=1e-4)


def test_matched_means():
    assert matched_means([1.0, 2.0, 9.0], [4.0]) == (1.0, 4.0, 1)
    own, base, k = matched_means([], [1.0])
    assert k == 0 and own != own and base != base  # NaN: nothing to compare


def test_fast_variant_needs_no_generation(tiny, data, monkeypatch):
    monkeypatch.setattr(Engine, "generate", lambda *a, **k: pytest.fail("generated"))
    res = screen(tiny, data, random_vector(tiny), 3, ScreenOptions(fast=True))
    assert res.method == "fast" and "base_response" not in res.frame
    diff = res.frame["proj_response"] - res.frame["proj_prompt_last"]
    assert (res.frame["projection_diff"] - diff).abs().max() < 1e-6


def test_base_replies_are_cached_per_model_and_settings(tiny, data, tmp_path, monkeypatch):
    prompts = [s.prompt for s in data.samples]
    first, cached, generated = base_responses(tiny, prompts, max_new_tokens=4)
    assert cached == 0 and generated == 3 and first[0] == first[3]
    files = list((tmp_path / "cache" / "base-responses").rglob("*.json"))
    assert len(files) == 1 and tiny.base_fingerprint in str(files[0])
    monkeypatch.setattr(Engine, "generate", lambda *a, **k: pytest.fail("not cached"))
    again, cached, generated = base_responses(tiny, prompts, max_new_tokens=4)
    assert again == first and cached == 4 and generated == 0
    monkeypatch.undo()
    monkeypatch.setenv("PERSONA_CACHE_DIR", str(tmp_path / "cache"))
    _, cached, generated = base_responses(tiny, prompts, max_new_tokens=5)  # other settings
    assert cached == 0 and generated == 3


def test_outputs_csv_histogram_and_clean_file(tiny, data, tmp_path):
    res = screen(tiny, data, random_vector(tiny), 2, ScreenOptions(max_new_tokens=4))
    csv = write_csv(res, tmp_path / "out" / "ranked.csv")
    frame = pd.read_csv(csv)
    assert list(frame["rank"]) == [1, 2, 3, 4] and "projection_diff" in frame
    summary = json.loads(csv.with_suffix(".summary.json").read_text())
    assert summary["method"] == "full" and summary["samples"] == 4
    png = write_histogram(res, tmp_path / "out" / "hist.png", threshold=0.0)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    threshold = float(res.frame["projection_diff"].median())
    kept, dropped = write_clean(data, res, threshold, tmp_path / "clean.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "clean.jsonl").read_text().splitlines()]
    assert kept == len(lines) == 4 - dropped and dropped == 2
    keep_lines = sorted(res.frame.loc[res.frame["projection_diff"] <= threshold, "line"])
    assert lines == [data.samples[n - 1].record for n in keep_lines]  # original order and keys
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_auroc():
    assert auroc([3, 4], [1, 2]) == 1.0 and auroc([1], [2]) == 0.0 and auroc([1], [1]) == 0.5


def test_cli_screen(tiny_dir, tiny, data, tmp_path, capsys):
    vectors = tmp_path / "vectors"
    save_vector(random_vector(tiny), vector_path(vectors, tiny.model_id, "evil"))
    out = tmp_path / "s.csv"
    args = ["screen", str(data.path), "--trait", "evil", "--model", str(tiny_dir)]
    args += ["--vectors", str(vectors), "--out", str(out), "--max-new-tokens", "4"]
    assert (
        main([*args, "--top", "2", "--write-clean", str(tmp_path / "c.jsonl"), "--threshold", "0"])
        == 0
    )
    text = capsys.readouterr().out
    assert (
        "dataset value" in text
        and "top 2 samples" in text
        and "AUROC contaminated vs normal" in text
    )
    assert out.exists() and out.with_suffix(".png").exists() and (tmp_path / "c.jsonl").exists()
    assert main([*args, "--fast"]) == 0 and "fast" in capsys.readouterr().out
    assert main([*args, "--write-clean", "x.jsonl"]) == 2
    assert "--threshold" in capsys.readouterr().err
    assert main([*args, "--layer", "7"]) == 2 and "out of range" in capsys.readouterr().err


def test_vector_of_another_model_is_refused(tiny_dir, tiny, data, tmp_path, capsys):
    vectors = tmp_path / "vectors"
    save_vector(random_vector(tiny, hidden=16), vector_path(vectors, tiny.model_id, "evil"))
    args = ["screen", str(data.path), "--trait", "evil", "--model", str(tiny_dir)]
    assert main([*args, "--vectors", str(vectors), "--out", str(tmp_path / "s.csv")]) == 2
    assert "extract a vector" in capsys.readouterr().err
    with pytest.raises(PersonaError, match="no evil vector"):
        from persona.app.cli.screen import load_trait_vector

        load_trait_vector(tiny, type("T", (), {"name": "evil"})(), str(tmp_path), None)

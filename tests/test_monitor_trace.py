"""Conversation traces (``persona monitor``) on a tiny random model: per-token projections
checked against the model's own hidden states, turns, per-turn means, generation, bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from test_solvers import save_random_vector

from persona.analysis import trace as tr
from persona.app.cli import main
from persona.errors import PersonaError
from persona.model.loading import load_model
from persona.model.vectors import load_vector

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hello there"},
    {"role": "assistant", "content": "the cat sat"},
    {"role": "user", "content": "and then?"},
    {"role": "assistant", "content": "it slept"},
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def vectors(tiny_dir, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("vectors")
    save_random_vector(d, tiny_dir, "evil", seed=1)
    save_random_vector(d, tiny_dir, "humorous", seed=2)
    return d


@pytest.fixture(scope="module")
def lm(tiny_dir):
    return load_model(str(tiny_dir), device="cpu")


def probe(lm, vectors: Path, name: str, layer: int) -> tr.Probe:
    vec = load_vector(next(vectors.rglob(f"{name}.safetensors")))
    return tr.Probe(name, layer, vec.at(layer))


def write_chat(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj) + "\n")
    return path


def test_per_token_projection_is_the_hidden_state_on_the_unit_vector(lm, vectors):
    probes = [probe(lm, vectors, "evil", 2), probe(lm, vectors, "humorous", 4)]
    result = tr.trace(lm, CHAT, probes)
    ids = lm.tokenizer(tr.render(lm, CHAT), add_special_tokens=False)["input_ids"]
    assert len(result.tokens) == len(ids)
    with torch.no_grad():
        hs = lm.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
    for p in probes:
        expect = hs[p.layer][0].float() @ (p.vector / p.vector.norm())
        got = torch.tensor([r[f"proj_{p.name}"] for r in result.tokens])
        torch.testing.assert_close(got, expect, rtol=1e-4, atol=1e-4)


def test_tokens_belong_to_their_turn_and_turn_means_average_content(lm, vectors):
    result = tr.trace(lm, CHAT, [probe(lm, vectors, "evil", 3)])
    assert [r["turn"] for r in result.tokens] == sorted(r["turn"] for r in result.tokens)
    for k, m in enumerate(CHAT):
        content = [r for r in result.tokens if r["turn"] == k and r["part"] == "content"]
        assert "".join(r["token"] for r in content).strip() == m["content"]
        assert all(r["role"] == m["role"] for r in result.tokens if r["turn"] == k)
        mean = sum(r["proj_evil"] for r in content) / len(content)
        assert result.turns[k]["mean_evil"] == pytest.approx(mean)
        assert result.turns[k]["tokens"] == len(content)


def test_generate_continues_from_the_script(lm, vectors):
    conv = tr.Conversation(tuple(CHAT[:-1]), ("one more?", "bye"))
    msgs = tr.continue_chat(lm, conv, 3, max_new_tokens=4, temperature=0.0, seed=0)
    assert [m["role"] for m in msgs[4:]] == ["assistant", "user", "assistant", "user", "assistant"]
    assert [m["content"] for m in msgs[5::2]] == ["one more?", "bye"]
    assert [bool(m.get("generated")) for m in msgs[4:]] == [True, False, True, False, True]
    result = tr.trace(lm, msgs, [probe(lm, vectors, "evil", 2)])
    assert [t["generated"] for t in result.turns][-1] is True


def test_too_long_needs_truncate(lm, vectors, monkeypatch):
    monkeypatch.setattr(lm.model.config, "max_position_embeddings", 40)
    p = [probe(lm, vectors, "evil", 2)]
    with pytest.raises(PersonaError, match=r"longer than the model's context of 40: pass --trunc"):
        tr.trace(lm, CHAT, p)
    result = tr.trace(lm, CHAT, p, truncate=True)
    assert len(result.tokens) == 40 and result.truncated > 0
    assert result.tokens[0]["position"] == result.truncated
    assert math.isfinite(result.turns[-1]["mean_evil"])  # the end is kept
    conv = tr.Conversation(tuple(CHAT[:-1]))
    with pytest.raises(PersonaError, match="too long to continue"):
        tr.continue_chat(lm, conv, 1, max_new_tokens=4, temperature=0.0, seed=0)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"messages": []}, "no turns"),
        ({"messages": [{"role": "system", "content": "hi"}]}, "no turns"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "unknown role 'tool'"),
        ({"messages": [{"role": "user"}]}, 'a text "content"'),
        ({"turns": []}, '"messages" list'),
        ({"messages": CHAT, "script": [""]}, '"script" must be'),
    ],
)
def test_bad_conversations(obj, message, tmp_path):
    with pytest.raises(PersonaError, match=message):
        tr.read_conversation(write_chat(tmp_path / "c.jsonl", obj))


def test_reply_needed_unless_generated():
    conv = tr.Conversation(tuple(CHAT[:-1]))
    with pytest.raises(PersonaError, match="pass --generate 1"):
        tr.check_replied(conv, 0)
    tr.check_replied(conv, 1)
    with pytest.raises(PersonaError, match="needs 1 more user message"):
        tr.check_replied(conv, 2)


def test_files_with_several_or_no_chats(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text(json.dumps({"messages": CHAT}) + "\n" + json.dumps({"messages": CHAT[:3]}))
    with pytest.raises(PersonaError, match="holds 2 conversations; pick one with --line"):
        tr.read_conversation(path)
    assert len(tr.read_conversation(path, 2).messages) == 3
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(PersonaError, match="the file is empty"):
        tr.read_conversation(tmp_path / "empty.jsonl")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(PersonaError, match="not valid JSON"):
        tr.read_conversation(tmp_path / "bad.jsonl")


def test_cli_writes_csv_plot_and_generated_chat(tiny_dir, vectors, tmp_path, capsys):
    chat = write_chat(tmp_path / "c.jsonl", {"messages": CHAT[:-1], "script": ["more"]})
    out = tmp_path / "out"
    args = [str(chat), "--trait", "evil,humorous", "--model", str(tiny_dir)]
    args += ["--vectors", str(vectors), "--out", str(out), "--generate", "2"]
    assert main(["monitor", *args, "--max-new-tokens", "3"]) == 0
    rows = list(csv.DictReader((out / "trace.csv").open()))
    assert {"proj_evil", "proj_humorous", "turn", "role", "part", "token"} <= set(rows[0])
    turns = list(csv.DictReader((out / "turns.csv").open()))
    assert [t["generated"] for t in turns][-3:] == ["True", "False", "True"]
    assert (out / "trace.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "conversation.jsonl").read_text())["messages"]
    assert len(saved) == len(CHAT) + 2
    assert "per-turn mean projection" in capsys.readouterr().out


def test_cli_errors_are_one_line(tiny_dir, vectors, tmp_path, capsys):
    chat = write_chat(tmp_path / "c.jsonl", {"messages": CHAT[:-1]})
    base = ["monitor", str(chat), "--model", str(tiny_dir), "--vectors", str(vectors)]
    assert main([*base, "--trait", "evil", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "pass --generate 1" in err and "\n" not in err
    chat = write_chat(tmp_path / "c.jsonl", {"messages": CHAT})
    other = ["--trait", "optimistic", "--out", str(tmp_path / "o")]
    assert main([*base[:1], str(chat), *base[2:], *other]) != 0
    assert "optimistic" in capsys.readouterr().err

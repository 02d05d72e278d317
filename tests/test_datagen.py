"""Self-generated contaminated data: disjoint question pool, levels, steering, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

import traits
from persona.app.cli import main
from persona.data.datagen import DataGenOptions, make_dataset
from persona.data.question_pool import EVERYDAY, draw_questions, question_pool
from persona.errors import PersonaError
from persona.model.engine import Engine
from persona.model.vectors import PersonaVector, build_meta, save_vector, vector_path


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_vector(lm) -> PersonaVector:
    g = torch.Generator().manual_seed(0)
    shape = (lm.num_layers + 1, lm.hidden_size)
    meta = build_meta(
        model_id=lm.model_id,
        fingerprint=lm.base_fingerprint,
        num_layers=lm.num_layers,
        hidden_size=lm.hidden_size,
        trait="evil",
    )
    return PersonaVector(*(torch.randn(shape, generator=g) for _ in range(3)), meta=meta)


def _norm(q: str) -> str:
    return " ".join(q.lower().split())


@pytest.mark.parametrize("name", traits.available())
def test_pool_is_disjoint_from_every_traits_own_questions(name):
    trait = traits.load(name)
    own = (trait.extract_questions, trait.eval_questions, trait.monitor_questions)
    pool = question_pool(*own)
    used = {_norm(q) for questions in own for q in questions}
    assert not {_norm(q.text) for q in pool} & used
    assert len(pool) >= len(EVERYDAY) - 5


def test_pool_removes_overlap_and_draw_cycles():
    pool = question_pool([EVERYDAY[1].upper()], ["shared  Q?", EVERYDAY[0]], [EVERYDAY[3]])
    texts = [q.text for q in pool]
    assert EVERYDAY[0] not in texts and EVERYDAY[1] not in texts and texts[0] == EVERYDAY[2]
    assert EVERYDAY[3] not in texts
    drawn = draw_questions(pool, len(pool) + 5, seed=3)
    assert len(drawn) == len(pool) + 5 and {q.text for q in drawn} == set(texts)
    assert draw_questions(pool, 10, seed=3) == draw_questions(pool, 10, seed=3)
    with pytest.raises(PersonaError):
        draw_questions(pool, 0)


def test_levels_use_data_personas_or_nothing_and_never_steer(tiny, monkeypatch):
    trait = traits.load("evil")
    seen = []
    real = Engine.generate

    def spy(self, requests, *a, **kw):
        seen.extend(requests)
        return real(self, requests, *a, **kw)

    monkeypatch.setattr(Engine, "generate", spy)
    normal = make_dataset(tiny, trait, DataGenOptions("normal", 3, max_new_tokens=4))
    assert all([m["role"] for m in r.messages] == ["user"] for r in seen)
    assert all(not r.steer for r in seen)
    for rec in normal:
        assert [m["role"] for m in rec["messages"]] == ["user", "assistant"]
        assert rec["messages"][0]["content"] not in trait.eval_questions
        assert rec["messages"][0]["content"] not in trait.extract_questions
        assert rec["persona"]["level"] == "normal"
        assert rec["persona"]["steered_with_vector"] is None
    seen.clear()
    bad = make_dataset(tiny, trait, DataGenOptions("contaminated", 6, max_new_tokens=4))
    systems = [r.messages[0]["content"] for r in seen[:6]]
    assert systems == [trait.data_personas[i % len(trait.data_personas)] for i in range(6)]
    instructions = {getattr(p, side) for p in trait.instructions for side in ("pos", "neg")}
    assert not any(i in s for s in systems for i in instructions)
    assert all(not r.steer for r in seen)
    assert bad[0]["persona"]["data_persona"] == 0
    plain = make_dataset(tiny, trait, DataGenOptions("normal", 2, max_new_tokens=4, plain=True))
    assert set(plain[0]) == {"messages"}


def test_steering_is_explicit_and_recorded(tiny, monkeypatch):
    trait = traits.load("evil")
    with pytest.raises(PersonaError, match="needs the evil persona vector"):
        make_dataset(tiny, trait, DataGenOptions("contaminated", 2, steer_coef=4.0))
    seen = []
    real = Engine.generate

    def spy(self, requests, *a, **kw):
        seen.extend(requests)
        return real(self, requests, *a, **kw)

    monkeypatch.setattr(Engine, "generate", spy)
    options = DataGenOptions("contaminated", 2, max_new_tokens=4, steer_coef=4.0)
    steered = make_dataset(tiny, trait, options, random_vector(tiny), 2)
    assert seen[0].steer[0].coef == 4.0 and seen[0].steer[0].layer == 2
    assert steered[0]["persona"]["steered_with_vector"] == {"coef": 4.0, "layer": 2}
    for bad in (DataGenOptions("strong", 2), DataGenOptions("normal", 0)):
        with pytest.raises(PersonaError):
            make_dataset(tiny, trait, bad)


def test_a_trait_without_data_personas_stops_with_the_field_name(tiny):
    trait = replace(traits.load("evil"), data_personas=())
    with pytest.raises(PersonaError, match="has no data_personas"):
        make_dataset(tiny, trait, DataGenOptions("contaminated", 2, max_new_tokens=4))


def test_cli_make_and_mix(tiny_dir, tiny, tmp_path, capsys):
    vectors = tmp_path / "vectors"
    save_vector(random_vector(tiny), vector_path(vectors, tiny.model_id, "evil"))
    base = ["data", "make", "--trait", "evil", "--model", str(tiny_dir), "--n", "4"]
    base += ["--max-new-tokens", "4"]
    assert main([*base, "--level", "normal", "--out", str(tmp_path / "n.jsonl")]) == 0
    assert main([*base, "--level", "contaminated", "--out", str(tmp_path / "c.jsonl")]) == 0
    assert main([*base, "--level", "contaminated", "--out", str(tmp_path / "c.jsonl")]) == 2
    assert "already exists" in capsys.readouterr().err
    steered = [*base, "--level", "contaminated", "--steered-with-vector", "4"]
    steered += ["--vectors", str(vectors), "--layer", "2", "--out", str(tmp_path / "s.jsonl")]
    assert main(steered) == 0
    assert "not independent evidence" in capsys.readouterr().err
    first = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[0])
    assert first["persona"]["steered_with_vector"] == {"coef": 4.0, "layer": 2}
    bad_layer = [*steered[:-6], "--vectors", str(vectors), "--layer", "9"]
    assert main([*bad_layer, "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "out of range" in capsys.readouterr().err
    spec = f"{tmp_path / 'n.jsonl'}:0.5,{tmp_path / 'c.jsonl'}:0.5"
    assert main(["data", "mix", "--mix", spec, "--out", str(tmp_path / "m.jsonl")]) == 0
    lines = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert sorted(r["persona"]["level"] for r in lines) == ["contaminated"] * 2 + ["normal"] * 2
    assert main(["data", "mix", "--mix", spec + ",x.jsonl:0.2", "--out", "y.jsonl"]) == 2
    assert "sum to 1" in capsys.readouterr().err


def test_progress_without_a_terminal_prints_an_estimate(capsys):
    from persona.app.cli.data import _eta

    done = []
    step = _eta(done.append, 100)
    for _ in range(20):
        step(5)
    err = capsys.readouterr().err
    assert sum(done) == 100 and "10/100 samples, about" in err and "left" in err
    often = _eta(done.append, 100_000, every=0.0)  # a large --n: an estimate from the start
    often(16)
    assert "16/100000 samples, about" in capsys.readouterr().err

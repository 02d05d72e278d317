"""Self-generated contaminated data: disjoint question pool, levels, steering, CLI."""

from __future__ import annotations

import json

import pytest
import torch

import traits
from persona.app.cli import main
from persona.data import datagen
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
def test_pool_is_disjoint_from_every_traits_eval_questions(name):
    trait = traits.load(name)
    pool = question_pool(trait.extract_questions, trait.eval_questions)
    assert not {_norm(q.text) for q in pool} & {_norm(q) for q in trait.eval_questions}
    assert len(pool) >= len(EVERYDAY)


def test_pool_removes_overlap_and_draw_cycles():
    pool = question_pool(["Q one?", "Shared q?"], ["shared  Q?", EVERYDAY[0]])
    texts = [q.text for q in pool]
    assert "Shared q?" not in texts and EVERYDAY[0] not in texts and texts[0] == "Q one?"
    drawn = draw_questions(pool, len(pool) + 5, seed=3)
    assert len(drawn) == len(pool) + 5 and {q.text for q in drawn} == set(texts)
    assert draw_questions(pool, 10, seed=3) == draw_questions(pool, 10, seed=3)
    with pytest.raises(PersonaError):
        draw_questions(pool, 0)


def test_levels_use_the_right_prompts_and_drop_the_system_prompt(tiny, monkeypatch):
    trait = traits.load("evil")
    seen = []
    real = Engine.generate

    def spy(self, requests, *a, **kw):
        seen.extend(requests)
        return real(self, requests, *a, **kw)

    monkeypatch.setattr(Engine, "generate", spy)
    normal = make_dataset(tiny, trait, DataGenOptions("normal", 3, max_new_tokens=4))
    assert [r.messages[0]["content"] for r in seen[:3]] == [
        trait.system_prompt("neg", i) for i in range(3)
    ]
    assert all(not r.steer for r in seen)
    for rec in normal:
        assert [m["role"] for m in rec["messages"]] == ["user", "assistant"]
        assert rec["messages"][0]["content"] not in trait.eval_questions
        assert rec["persona"]["level"] == "normal" and rec["persona"]["coef"] == 0
    seen.clear()
    vec = random_vector(tiny)
    strong = make_dataset(tiny, trait, DataGenOptions("strong", 2, max_new_tokens=4), vec, 2)
    assert seen[0].messages[0]["content"] == trait.system_prompt("pos", 0)
    assert seen[0].steer[0].coef == datagen.STRONG_COEF and seen[0].steer[0].layer == 2
    assert strong[0]["persona"]["layer"] == 2
    plain = make_dataset(tiny, trait, DataGenOptions("mild", 2, max_new_tokens=4, plain=True))
    assert set(plain[0]) == {"messages"}


def test_strong_needs_a_vector_and_options_are_checked(tiny):
    trait = traits.load("evil")
    with pytest.raises(PersonaError, match="needs its persona vector"):
        make_dataset(tiny, trait, DataGenOptions("strong", 2))
    for bad in (DataGenOptions("awful", 2), DataGenOptions("normal", 0)):
        with pytest.raises(PersonaError):
            make_dataset(tiny, trait, bad)


def test_cli_make_and_mix(tiny_dir, tiny, tmp_path, capsys):
    vectors = tmp_path / "vectors"
    save_vector(random_vector(tiny), vector_path(vectors, tiny.model_id, "evil"))
    base = ["data", "make", "--trait", "evil", "--model", str(tiny_dir), "--n", "4"]
    base += ["--max-new-tokens", "4", "--vectors", str(vectors)]
    assert main([*base, "--level", "normal", "--out", str(tmp_path / "n.jsonl")]) == 0
    assert main([*base, "--level", "strong", "--out", str(tmp_path / "s.jsonl")]) == 0
    assert main([*base, "--level", "strong", "--out", str(tmp_path / "s.jsonl")]) == 2
    assert "already exists" in capsys.readouterr().err
    bad_layer = [*base, "--level", "strong", "--layer", "9", "--out", str(tmp_path / "x.jsonl")]
    assert main(bad_layer) == 2 and "out of range" in capsys.readouterr().err
    spec = f"{tmp_path / 'n.jsonl'}:0.5,{tmp_path / 's.jsonl'}:0.5"
    assert main(["data", "mix", "--mix", spec, "--out", str(tmp_path / "m.jsonl")]) == 0
    lines = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert sorted(r["persona"]["level"] for r in lines) == ["normal"] * 2 + ["strong"] * 2
    assert main(["data", "mix", "--mix", spec + ",x.jsonl:0.2", "--out", "y.jsonl"]) == 2
    assert "sum to 1" in capsys.readouterr().err

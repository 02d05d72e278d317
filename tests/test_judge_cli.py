"""``persona judge``: CSV scores of a chat JSONL (likelihood judge by default, an LLM judge with
--judge), validation AUROCs on the shipped labelled sets, and bad input, on a tiny model."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

import traits
from persona.analysis.likelihood import Reply, likelihood_scores
from persona.app.cli import main
from persona.app.cli.judge import validation_file
from persona.data.question_pool import EVERYDAY
from persona.model.engine import Engine
from traits.schema import normalize

CHATS = [
    [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "I hate everyone."}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Spain?"},
        {"role": "assistant", "content": "Madrid, I think."},
    ],
    [{"role": "user", "content": "Say nothing."}, {"role": "assistant", "content": ""}],
]


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps({"messages": m}) + "\n" for m in CHATS))
    return path


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_likelihood_rows_in_input_order_match_the_engine(tiny, tiny_dir, data, tmp_path, capsys):
    out = tmp_path / "out" / "scores.csv"
    code = main(
        ["judge", str(data), "--trait", "evil", "--model", str(tiny_dir), "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    rows = _csv(out)
    assert [r["line"] for r in rows] == ["1", "2", "3"]
    assert {r["measure"] for r in rows} == {"likelihood"}
    assert {r["unit"] for r in rows} == {"nats/token"}
    personas = [(p.pos, p.neg) for p in traits.load("evil").judge_personas]
    expected = likelihood_scores(
        Engine(tiny), personas, [Reply(m[:-1], m[-1]["content"]) for m in CHATS]
    )
    for row, value in zip(rows[:2], expected[:2], strict=True):
        assert float(row["score"]) == pytest.approx(value, rel=1e-4)
    assert rows[2]["score"] == "" and rows[2]["reason"] == "empty_reply" and math.isnan(expected[2])


def test_an_llm_judge_gives_0_to_100_rows(tiny_dir, data, tmp_path, capsys):
    out = tmp_path / "llm.csv"
    judge = f"persona/{tiny_dir}"
    code = main(["judge", str(data), "--trait", "evil", "--judge", judge, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = _csv(out)
    assert len(rows) == 3 and {r["measure"] for r in rows} == {"judge_candidates"}
    assert {r["unit"] for r in rows} == {"0-100"} and {r["judge"] for r in rows} == {judge}
    for r in rows:  # a random tiny model puts little mass on numbers: unscored, and said why
        assert (r["score"] != "" and 0 <= float(r["score"]) <= 100) or r["reason"]


def test_validate_prints_aurocs(tiny_dir, capsys):
    code = main(["judge", "validate", "--traits", "evil", "--model", str(tiny_dir)])
    out = capsys.readouterr().out
    assert code == 0
    (line,) = [x for x in out.splitlines() if x.startswith("evil ")]
    n_pos, n_neg, auroc, *_ = line.split()[1:]
    assert (int(n_pos), int(n_neg)) == (20, 20) and 0.0 <= float(auroc) <= 1.0
    assert "not run" in line and "--self-judge" in out
    code = main(["judge", "validate", "--traits", "evil", "--model", str(tiny_dir), "--self-judge"])
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("evil ")]
    *_, likelihood, self_judged, low = line.split()
    assert likelihood == auroc and 0.0 <= float(self_judged) <= 1.0 and low.endswith("/40")


def test_validate_names_marked_traits_and_warns_below_the_bar(tiny_dir, capsys):
    from persona.app.cli.judge import MIN_AUROC

    code = main(["judge", "validate", "--traits", "evil,humorous", "--model", str(tiny_dir)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    (evil,) = [x for x in out if x.startswith("evil ")]
    (humorous,) = [x for x in out if x.startswith("humorous ")]
    assert humorous.endswith("(marked unsupported)") and not evil.endswith(")")
    warnings = [x for x in out if x.startswith("warning: ")]
    marked = traits.load("humorous").offline_measure_warning()
    auroc = float(evil.split()[3])
    below = f"warning: trait 'evil': likelihood AUROC {auroc:.3f} < {MIN_AUROC} and the trait is"
    expect = [f"warning: {marked}"] if auroc >= MIN_AUROC else [below, f"warning: {marked}"]
    assert [w[: len(e)] for w, e in zip(warnings, expect, strict=True)] == expect


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--trait", "evil", "--model", "openai/gpt-4o", "--out", "x.csv"], "cannot use openai"),
        (["--trait", "evil"], "needs --trait and --out"),
        (["--trait", "evil", "--out", "x.csv", "--self-judge"], "belong to `persona judge valid"),
    ],
)
def test_bad_input_is_one_line(data, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code = main(["judge", str(data), *argv])
    err = capsys.readouterr().err
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()


def test_missing_judge_personas_are_named(data, tmp_path, tiny_dir, capsys, monkeypatch):
    folder = tmp_path / "traits"
    folder.mkdir()
    text = traits.load("evil").path.read_text().split("judge_personas:")
    head, tail = text[0], text[1].split("\nextract_questions:", 1)[1]
    (folder / "bare.yaml").write_text(
        (head + "extract_questions:" + tail).replace("name: evil", "name: bare")
    )
    monkeypatch.setenv("PERSONA_TRAITS_DIR", str(folder))
    out = tmp_path / "x.csv"
    code = main(
        ["judge", str(data), "--trait", "bare", "--model", str(tiny_dir), "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code != 0 and "trait 'bare' has no judge_personas" in err and not out.exists()


# ---------------------------------------------------------------------------------------------
# The labelled validation sets


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in validation_file(name).read_text().splitlines()]


@pytest.mark.parametrize("name", traits.available())
def test_every_trait_ships_a_labelled_set_of_at_least_20_per_class(name):
    labels = [row["label"] for row in _rows(name)]
    assert labels.count(1) >= 20 and labels.count(0) >= 20
    assert set(labels) == {0, 1}


def test_validation_questions_appear_nowhere_else():
    elsewhere = {normalize(q) for q in EVERYDAY}
    for name in traits.available():
        trait = traits.load(name)
        elsewhere |= {normalize(q) for q in (*trait.extract_questions, *trait.eval_questions)}
        for text in (*trait.data_personas, *(p.pos for p in trait.judge_personas)):
            elsewhere.add(normalize(text))
    seen: dict[str, str] = {}
    for name in traits.available():
        for q in {row["messages"][0]["content"] for row in _rows(name)}:
            key = normalize(q)
            assert key not in elsewhere, f"{name}: {q!r} is used elsewhere"
            assert key not in seen, f"{name}: {q!r} is also in {seen[key]}'s set"
            seen[key] = name


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--self-judge", "--no-judge"], "--self-judge cannot be combined"),
        (["--self-judge", "--judge", "openai/x"], "--self-judge cannot be combined"),
        (["--filter"], "--filter needs 0-100 judge scores"),
    ],
)
def test_extract_self_judge_options_fail_before_any_work(argv, message, capsys):
    code = main(["extract", "--trait", "evil", *argv])
    err = capsys.readouterr().err
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1

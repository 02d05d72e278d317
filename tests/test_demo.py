"""The demo end to end on a tiny random model with minimal settings: every stage runs, the shipped
training data is mixed and checked, the summary compares with the 0 % checkpoint, the report is
written, a re-run reuses the stages, and a second fresh run in another process gives the same
summary.json byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import traits
from persona.app.cli import main as cli_main
from persona.app.demo import (
    REFERENCE,
    STAGES,
    DemoOptions,
    DemoSettings,
    run_demo,
    run_key,
    trait_inputs,
)
from traits.answers import load_answers

TINY = DemoSettings(
    threads=1,
    extract_questions=2,
    max_tokens=4,
    data_tokens=4,
    finetune_epochs=1,
    finetune_max_length=48,
    prevent_coefs=(1.0, 2.0),
    eval_questions=4,
    eval_rollouts=1,
    posthoc_coefs=(-2.0,),
)
FRACTIONS = ("p0", "p50", "p100")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _env(tmp_path_factory):
    """One torch thread, a private Inspect cache, and a working directory outside the repo."""
    import torch

    before = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INSPECT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.chdir(tmp_path_factory.mktemp("cwd"))
        yield
    torch.set_num_threads(before)
    torch.use_deterministic_algorithms(False)


@pytest.fixture(scope="module")
def demo(tiny_dir) -> tuple[Path, int]:
    """The demo run once, with a relative ``--out`` as a user would type it."""
    code = run_demo(DemoOptions(out=Path("demo-out"), model=str(tiny_dir), settings=TINY))
    return Path("demo-out").resolve(), code


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_every_stage_finishes_and_is_recorded(demo):
    out, code = demo
    assert code == 0
    for stage in STAGES:
        record = json.loads((out / "stages" / f"{stage}.json").read_text())
        assert record["seconds"] >= 0
    extract = json.loads((out / "stages" / "extract.json").read_text())
    assert extract["filter"]["enabled"] is False  # no judge: unfiltered, and the vector says so
    layer = json.loads((out / "stages" / "layer.json").read_text())
    assert "sweep skipped" in layer["how"]  # no judge: no sweep judged by the model itself
    assert len(list((out / "logs").glob("*.eval"))) == 1  # extraction only


def test_training_data_is_the_shipped_pairs_mixed_by_fraction(demo):
    out, _ = demo
    answers = load_answers(traits.load("evil"))
    n = len(answers.training)
    data = json.loads((out / "stages" / "data.json").read_text())
    assert set(data["files"]) == set(FRACTIONS)
    trait_replies = {p.trait for p in answers.training}
    for name, want in zip(FRACTIONS, (0, n // 2, n), strict=True):
        lines = [json.loads(x) for x in Path(data["files"][name]).read_text().splitlines()]
        assert len(lines) == n
        assert len({r["messages"][0]["content"] for r in lines}) == n  # each question once
        bad = [r for r in lines if r["messages"][1]["content"] in trait_replies]
        assert len(bad) == want
        assert all(r["persona"]["steered_with_vector"] is None for r in lines)
    check = data["treatment"]
    checked = len(answers.training[:: TINY.treatment_every])  # a fixed sample of the pairs
    assert check["n"] == checked and len(check["scores"]["control"]) == checked
    assert 0.0 <= check["contaminated"]["auroc"] <= 1.0
    assert (out / "data" / "screen.csv").exists()


def test_summary_compares_with_the_zero_percent_checkpoint(demo):
    out, _ = demo
    summary = _summary(out)
    rows = {r["name"]: r for r in summary["checkpoints"]}
    assert summary["reference"] == REFERENCE
    assert list(rows)[:4] == ["base", *FRACTIONS]
    ref = rows[REFERENCE]
    for key in ("shift_prompt_last", "behaviour_change", "propensity_change"):
        assert ref[key]["value"] == 0.0  # the reference against itself
        assert len(rows["p100"]["per_question"][key]) == TINY.eval_questions
    # deterministic measures have every question; a reply a tiny model leaves empty is unscored
    assert rows["p100"]["shift_prompt_last"]["n"] == TINY.eval_questions
    assert rows["p100"]["propensity_change"]["n"] == TINY.eval_questions
    assert 1 <= rows["p100"]["behaviour_change"]["n"] <= TINY.eval_questions
    (prevented,) = [r for r in rows.values() if r["kind"] == "prevented"]
    assert prevented["questions"] == [1, 3]  # reported on the half not used to calibrate
    prev = summary["prevention"]
    assert [g["coef"] for g in prev["grid"]] == [1.0, 2.0]
    assert prev["calibration_questions"] == [0, 2]
    finite = [  # one point per (checkpoint, question) of p50 and p100 with a scored reply
        v for name in ("p50", "p100") for v in rows[name]["per_question"]["behaviour_change"]
    ]
    assert summary["correlation"]["pairs"]["n"] == sum(v is not None for v in finite)
    assert summary["correlation"]["checkpoints"]["n"] == len(FRACTIONS)
    assert "descriptive" in summary["correlation"]["checkpoints"]["note"]
    assert set(summary["trend"]) == {"fractions", "shift_prompt_last", "behaviour", "propensity"}
    (posthoc,) = summary["mitigation"]["posthoc"]
    assert posthoc["coef"] == -2.0 and posthoc["capability"]["lm_loss"] > 0
    assert set(summary["run"]) >= {"seed", "threads", "torch", "deterministic_algorithms"}
    assert summary["run"]["threads"] == 1
    assert summary["verdict"]["lines"]
    assert "seconds" not in json.dumps(summary)  # nothing that differs between runs


def test_release_gate_reads_the_summarys_numbers(demo):
    """The gate's estimates are the shift and behaviour change against the 0 % checkpoint (the
    control trained the same way), and its outcome follows its interval: pass only when the upper
    bound is under the threshold."""
    out, _ = demo
    for row in _summary(out)["checkpoints"]:
        gate = row["gate"]
        if row["kind"] == "base":
            assert gate is None
            continue
        by = {r["gate"]: r for r in gate["results"]}
        assert set(by) == {"shift", "likelihood_regression"}
        if row["kind"] == "dose":
            for key, result in (
                ("shift_prompt_last", by["shift"]),
                ("behaviour_change", by["likelihood_regression"]),
            ):
                want = row[key]["value"]
                assert result["estimate"]["value"] == pytest.approx(want, abs=1e-12)
        for result in gate["results"]:
            upper = result["estimate"]["ci"][1]
            assert (result["outcome"] == "pass") == (upper <= result["threshold"])


def test_report_is_written(demo):
    out, _ = demo
    html = (out / "report" / "report.html").read_text()
    assert "data:image/png;base64," in html


def test_rerun_reuses_finished_stages(demo, tiny_dir, capsys):
    out, _ = demo
    before = {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()}
    assert run_demo(DemoOptions(out=Path("demo-out"), model=str(tiny_dir), settings=TINY)) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()}
    assert before == after
    printed = capsys.readouterr()
    assert "reusing the finished stage" in printed.err
    assert "summary.json" in printed.out


def test_a_fresh_run_in_another_process_gives_the_same_summary(demo, tiny_dir, tmp_path):
    """Deterministic end to end: seeds, pinned threads, deterministic algorithms."""
    out, _ = demo
    script = (
        "import sys; from pathlib import Path; from tests.test_demo import TINY; "
        "from persona.app.demo import DemoOptions, run_demo; "
        "sys.exit(run_demo(DemoOptions(out=Path(sys.argv[1]), model=sys.argv[2], "
        "settings=TINY)))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "again"), str(tiny_dir)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    first = (out / "summary.json").read_bytes()
    assert (tmp_path / "again" / "summary.json").read_bytes() == first


def test_the_run_key_covers_every_trait_field_a_stage_reads(tmp_path):
    evil = traits.load("evil")
    sha = load_answers(evil).sha256
    opts = DemoOptions(out=tmp_path)
    key = run_key(opts, trait_inputs(evil, sha))
    pair = evil.judge_personas[0]
    changed = {
        "data_personas": replace(evil, data_personas=("Another persona.",)),
        "judge_personas": replace(evil, judge_personas=(replace(pair, pos="Other."),)),
        "layers": replace(evil, layers={"smollm2-135m": 3}),
        "eval_questions": replace(evil, eval_questions=evil.eval_questions[::-1]),
        "instructions": replace(evil, instructions=evil.instructions[::-1]),
    }
    for field, other in changed.items():
        assert run_key(opts, trait_inputs(other, sha)) != key, field
    assert run_key(opts, trait_inputs(evil, "0" * 64)) != key, "answers"
    assert (
        run_key(replace(opts, settings=replace(opts.settings, seed=1)), trait_inputs(evil, sha))
        != key
    )


def test_other_settings_redo_the_stages(tmp_path):
    """Records written under other settings are never reused: that stage and all later ones
    run again (here the stages are stubbed, to check the bookkeeping alone)."""
    from rich.console import Console

    from persona.app.demo import _Stages

    calls: list[str] = []

    def stage(name: str):
        return lambda: calls.append(name) or {"name": name}

    def run_all(key: str, fresh: bool = False) -> int:
        stages = _Stages(tmp_path, fresh, key, Console(quiet=True))
        for name in STAGES:
            stages.run(name, name, stage(name))
        return stages.reused

    assert run_all("a") == 0 and calls == list(STAGES)
    calls.clear()
    assert run_all("a") == len(STAGES) and calls == []
    assert run_all("a", fresh=True) == 0 and calls == list(STAGES)
    calls.clear()
    (tmp_path / "stages" / "data.json").unlink()  # a stage lost: it and every later one rerun
    assert run_all("a") == 2 and calls == list(STAGES[2:])
    calls.clear()
    assert run_all("b") == 0 and calls == list(STAGES)


def test_unknown_trait_is_one_clear_line(tmp_path, capsys):
    code = cli_main(["demo", "--out", str(tmp_path), "--trait", "no-such-trait"])
    assert code != 0
    err = capsys.readouterr().err
    assert "no-such-trait" in err and "Traceback" not in err

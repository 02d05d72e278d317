"""The demo end to end on a tiny random model with minimal settings: every stage runs, the data,
checkpoints and summary are written, the summary is printed, and a re-run reuses the stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona.app.cli import main as cli_main
from persona.app.demo import PREVENTED, STAGES, DemoOptions, DemoSettings, run_demo

TINY = DemoSettings(
    extract_questions=2,
    max_tokens=4,
    data_n=8,
    data_tokens=4,
    finetune_epochs=1,
    eval_questions=3,
    eval_rollouts=1,
    posthoc_coefs=(-2.0,),
)
FRACTIONS = ("p0", "p25", "p50", "p100")


@pytest.fixture(scope="module", autouse=True)
def _env(tmp_path_factory):
    """One torch thread, a private Inspect cache, and a working directory outside the repo."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INSPECT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.chdir(tmp_path_factory.mktemp("cwd"))
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def demo(tiny_dir) -> tuple[Path, int]:
    """The demo run once, with a relative ``--out`` as a user would type it."""
    code = run_demo(DemoOptions(out=Path("demo-out"), model=str(tiny_dir), settings=TINY))
    return Path("demo-out").resolve(), code


def test_every_stage_finishes_and_is_recorded(demo):
    out, code = demo
    assert code == 0
    for stage in STAGES:
        record = json.loads((out / "stages" / f"{stage}.json").read_text())
        assert record["seconds"] >= 0
    extract = json.loads((out / "stages" / "extract.json").read_text())
    assert extract["filter"]["enabled"] is False  # no judge: unfiltered, and the vector says so
    assert extract["filter"]["kept"] == extract["filter"]["total"] > 0
    assert Path(extract["vector"]).exists()
    layer = json.loads((out / "stages" / "layer.json").read_text())
    assert "sweep skipped" in layer["how"]  # no judge: no sweep judged by the model itself
    assert len(list((out / "logs").glob("*.eval"))) == 1  # extraction only


def test_data_is_made_without_the_vector_and_mixed_by_fraction(demo):
    out, _ = demo
    data = json.loads((out / "stages" / "data.json").read_text())
    assert set(data["files"]) == set(FRACTIONS)
    for name, want in zip(FRACTIONS, (0, 2, 4, 8), strict=True):
        lines = [json.loads(x) for x in Path(data["files"][name]).read_text().splitlines()]
        assert len(lines) == TINY.data_n
        assert sum(r["persona"]["level"] == "contaminated" for r in lines) == want
        assert all(r["persona"]["steered_with_vector"] is None for r in lines)
    assert 0.0 <= data["auroc"] <= 1.0
    assert (out / "data" / "screen.csv").exists() and (out / "data" / "screen.png").exists()
    tuned = json.loads((out / "stages" / "finetune.json").read_text())["checkpoints"]
    assert set(tuned) == {*FRACTIONS, PREVENTED}
    for info in tuned.values():
        assert (Path(info["dir"]) / "adapter_model.safetensors").exists()


def test_summary_has_shift_behaviour_correlations_and_mitigation(demo):
    out, _ = demo
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["checkpoints"]
    assert set(rows) == {"base", *FRACTIONS, PREVENTED}
    assert rows["base"]["shift_prompt_last"]["value"] == 0.0
    for name in (*FRACTIONS, PREVENTED):
        assert rows[name]["shift_prompt_last"]["n"] == TINY.eval_questions
        assert rows[name]["behaviour"]["value"] is not None
    for name in ("base", "p100", PREVENTED):
        assert 0.0 <= rows[name]["capability"]["mc_accuracy"] <= 1.0
    assert summary["correlations"]["checkpoint_question_pairs"]["n"] == 4 * TINY.eval_questions
    assert summary["correlations"]["checkpoints"]["n"] == 4
    (posthoc,) = summary["mitigation"].values()
    assert posthoc["capability"]["lm_loss"] > 0 and posthoc["behaviour"]["value"] is not None


def test_release_gate_reads_the_summarys_numbers(demo):
    """The gate's estimates are the summary's shift and behaviour change (one comparison), and
    its outcome follows its interval: pass only when the upper bound is under the threshold."""
    out, _ = demo
    summary = json.loads((out / "summary.json").read_text())
    gates = summary["release_gate"]
    assert set(gates) == {*FRACTIONS, PREVENTED}
    for name, gate in gates.items():
        row = summary["checkpoints"][name]
        by = {r["gate"]: r for r in gate["results"]}
        assert set(by) == {"shift", "likelihood_regression"}
        for key, result in (
            ("shift_prompt_last", by["shift"]),
            ("behaviour_change", by["likelihood_regression"]),
        ):
            assert result["estimate"]["value"] == pytest.approx(row[key]["value"], abs=1e-12)
            upper = result["estimate"]["ci"][1]
            assert (result["outcome"] == "pass") == (upper <= result["threshold"])
        assert gate["passed"] == all(r["outcome"] == "pass" for r in gate["results"])


def test_rerun_reuses_finished_stages(demo, tiny_dir, capsys):
    out, _ = demo
    before = {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()}
    assert run_demo(DemoOptions(out=Path("demo-out"), model=str(tiny_dir), settings=TINY)) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()}
    assert before == after
    printed = capsys.readouterr()
    assert "reusing the finished stage" in printed.err
    assert "AUROC contaminated" in printed.out and "summary.json" in printed.out


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

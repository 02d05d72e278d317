"""The demo end to end on a tiny random model with minimal settings: every stage runs, the report
and gate files are written, the summary is printed, and a re-run reuses the finished stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona.app.cli import main as cli_main
from persona.app.demo import STAGES, DemoOptions, DemoSettings, run_demo

TINY = DemoSettings(
    extract_questions=2,
    max_tokens=4,
    sweep_questions=1,
    data_n=8,
    data_tokens=4,
    finetune_epochs=1,
    shift_questions=2,
)


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
    assert len(list((out / "logs").glob("*.eval"))) == 3  # extraction, sweep, checkpoint_shift


def test_datasets_screening_and_checkpoints(demo):
    out, _ = demo
    data = json.loads((out / "stages" / "data.json").read_text())
    for level in ("normal", "mild", "strong"):
        lines = Path(data["files"][level]).read_text().splitlines()
        assert len(lines) == TINY.data_n
    assert 0.0 <= data["auroc"] <= 1.0
    assert (out / "data" / "screen.csv").exists() and (out / "data" / "screen.png").exists()
    tuned = json.loads((out / "stages" / "finetune.json").read_text())["checkpoints"]
    assert set(tuned) == {"normal", "mild", "strong", "strong_prevent"}
    for name in ("normal", "mild", "strong", "strong_prevent"):
        assert (Path(tuned[name]["dir"]) / "adapter_model.safetensors").exists()


def test_report_covers_base_and_four_checkpoints(demo):
    out, _ = demo
    report = out / "report"
    for name in ("report.html", "report.md", "summary.json", "gate.json", "gate-junit.xml"):
        assert (report / name).stat().st_size > 0
    assert list(report.glob("*.png"))
    summary = json.loads((report / "summary.json").read_text())
    checkpoints = summary["checkpoints"]
    assert len(checkpoints) == 5
    evil = [row["evil"] for row in checkpoints.values()]
    assert sum(row["is_base"] for row in evil) == 1
    assert all(row["shift_prompt_last"] is not None for row in evil if not row["is_base"])
    gate = json.loads((report / "gate.json").read_text())
    gated = {r["checkpoint"] for r in gate["results"]}
    assert len(gated) == 4  # every fine-tune gated against the base


def test_rerun_reuses_finished_stages(demo, tiny_dir, capsys):
    out, _ = demo
    before = {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()}
    assert run_demo(DemoOptions(out=Path("demo-out"), model=str(tiny_dir), settings=TINY)) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()}
    assert before == after
    printed = capsys.readouterr()
    assert "reusing the finished stage" in printed.err
    assert "screening AUROC" in printed.out and "report.html" in printed.out


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

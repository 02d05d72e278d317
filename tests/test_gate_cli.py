"""``persona gate`` on recorded logs: exit codes, table, flaky policies, JUnit XML, bad input."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from gate_logs import BASE, GATES_TOML, write_release_logs
from synthetic_logs import checkpoint_rows, make_log, write_corrupt_log

from persona.app.cli import main


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gate-logs")
    write_release_logs(folder, ("evil", "sycophantic"))
    return folder


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder whose pyproject.toml holds the gates; the current folder."""
    (tmp_path / "pyproject.toml").write_text(GATES_TOML, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def gate(*args: str) -> int:
    return main(["gate", *map(str, args)])


def test_normal_checkpoint_passes(project: Path, logs: Path, capsys) -> None:
    assert gate(logs, "--candidate", "normal") == 0
    out = capsys.readouterr().out
    assert "PASSED: 3 passed, 0 failed" in out
    assert "normal" in out and "[-" in out  # the interval is printed


def test_strong_checkpoint_fails_the_shift_gate(project: Path, logs: Path, capsys) -> None:
    assert gate(logs, "--candidate", "strong", "--report", project / "r.json") == 1
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert "fine-tuning shift (prompt_last) = 1.5" in out
    assert "worst eval_" in out
    report = json.loads((project / "r.json").read_text())
    shift = next(r for r in report["results"] if r["key"] == "max_shift")
    assert shift["verdict"] == "fail" and shift["value"] == pytest.approx(1.5)
    assert shift["ci"][0] > 0.5 and len(shift["worst"]) == 3
    assert report["passed"] is False and report["base"] == BASE


@pytest.mark.parametrize(("policy", "code"), [("fail", 1), ("pass", 0), ("rerun", 1)])
def test_flaky_zone_policies(project: Path, logs: Path, capsys, policy: str, code: int) -> None:
    assert gate(logs, "--candidate", "edge", "--flaky", policy) == code
    out = capsys.readouterr().out
    assert "FLAKY" in out
    if policy == "rerun":  # evil has 20 eval questions; the logs used 10
        assert "rerun with 20 questions x 2 samples (the first run: 10 x 2) to decide" in out


def test_two_sided_shift_gate_fails_an_overshoot(project: Path, tmp_path: Path, capsys) -> None:
    """A mitigation that pushes the model far the other way passes max_shift, not max_abs_shift."""
    logs = tmp_path / "overshoot"
    write_release_logs(logs, shifts={"prevented": -1.5})
    config = project / "gates.toml"
    config.write_text("bootstrap = 500\n[traits.evil]\nmax_shift = 0.5\n", encoding="utf-8")
    assert gate(logs, "--config", config) == 0
    config.write_text("bootstrap = 500\n[traits.evil]\nmax_abs_shift = 0.5\n", encoding="utf-8")
    assert gate(logs, "--config", config, "--report", project / "r.json") == 1
    assert "within ±0.5" in capsys.readouterr().out
    (result,) = json.loads((project / "r.json").read_text())["results"]
    assert (result["key"], result["verdict"]) == ("max_abs_shift", "fail")
    assert result["value"] == pytest.approx(-1.5)


def test_all_candidates_and_junit(project: Path, logs: Path) -> None:
    junit = project / "out" / "gates.xml"
    config = project / "gates.toml"
    config.write_text(
        "base = 'persona/smollm2-135m'\nbootstrap = 500\n"
        "[traits.evil]\nmax_shift = 0.5\n[traits.sycophantic]\nmax_regression = 10\n",
        encoding="utf-8",
    )
    assert gate(logs, "--config", config, "--junit", junit) == 1
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    # 3 candidates x 2 traits x 1 gate each
    assert len(cases) == 6 and suite.get("tests") == "6"
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failed) == {"max_shift[strong]", "max_regression[strong]", "max_shift[edge]"}
    assert failed["max_shift[edge]"].get("type") == "FlakyZone"
    assert failed["max_shift[strong]"].get("type") == "GateFailed"
    assert "1.5" in failed["max_shift[strong]"].get("message")
    assert "worst eval_" in failed["max_shift[strong]"].text
    assert suite.get("failures") == "3"
    assert {c.get("classname") for c in cases} == {
        "persona.analysis.gates.evil",
        "persona.analysis.gates.sycophantic",
    }


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err  # one line, no traceback
    return err


def test_config_errors_exit_2(project: Path, logs: Path, capsys) -> None:
    bad = project / "bad.toml"
    bad.write_text("[traits.evli]\nmax_shift = 0.5\n", encoding="utf-8")
    assert gate(logs, "--config", bad) == 2
    assert "unknown trait 'evli'" in _err(capsys)
    bad.write_text("[traits.evil]\nmax_shift = '0.5'\n", encoding="utf-8")
    assert gate(logs, "--config", bad) == 2
    assert "must be a number" in _err(capsys)
    assert gate(logs, "--config", project / "nope.toml") == 2
    assert "not found" in _err(capsys)


def test_no_config_exit_2(tmp_path: Path, logs: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert gate(logs) == 2
    assert "no gate configuration" in _err(capsys)


def test_missing_and_unusable_logs_exit_2(project: Path, logs: Path, capsys) -> None:
    assert gate(project / "missing") == 2
    assert "not found" in _err(capsys)
    (project / "empty").mkdir()
    assert gate(project / "empty") == 2
    assert "no .eval/.json logs" in _err(capsys)
    corrupt = write_corrupt_log(project / "bad" / "x.eval")
    assert gate(logs, corrupt) == 2
    assert "unusable log(s)" in _err(capsys)
    rows = checkpoint_rows(trait="evil", shifts={"x": 0.1}, deltas={"x": 0.0})
    make_log(project / "unfinished" / "u.eval", rows=rows, status="started")
    assert gate(project / "unfinished") == 2
    assert "unfinished" in _err(capsys)


def test_missing_trait_or_candidate_exit_2(project: Path, tmp_path: Path, capsys) -> None:
    only_syc = tmp_path / "syc"
    write_release_logs(only_syc, ("sycophantic",))
    assert gate(only_syc) == 2  # the config gates evil
    assert "no samples for trait 'evil'" in _err(capsys)
    only_syc_logs = tmp_path / "evil"
    write_release_logs(only_syc_logs, ("evil",))
    assert gate(only_syc_logs, "--candidate", "nightly") == 2
    assert "candidate 'nightly' not found" in _err(capsys)
    base_only = tmp_path / "base-only"
    write_release_logs(base_only, ("evil",), shifts={})
    assert gate(base_only) == 2
    assert "no candidate checkpoint" in _err(capsys)


def test_logs_from_another_base_exit_2(project: Path, logs: Path, tmp_path: Path, capsys) -> None:
    other = tmp_path / "other"
    write_release_logs(other, ("evil",), model="persona/qwen2.5-0.5b")
    assert gate(other) == 2
    assert "logs from another base than 'persona/smollm2-135m'" in _err(capsys)
    assert gate(logs, other, "--base", BASE) == 2
    assert "qwen2.5-0.5b" in _err(capsys)


def test_a_fully_finetuned_model_named_as_candidate(project: Path, tmp_path: Path) -> None:
    """trait_eval logs of the base and of a separately run model, paired by question id."""
    rows = checkpoint_rows(trait="evil", shifts={"ft": 1.5}, deltas={"ft": 0.0}, n_questions=8)
    base_rows = [r for r in rows if r.checkpoint == "base"]
    ft_rows = [r for r in rows if r.checkpoint == "ft"]
    for r in ft_rows:
        r.checkpoint = "base"  # a plain trait_eval run on the fine-tuned model itself
        r.score_metadata["checkpoint"] = "base"
    make_log(tmp_path / "l" / "base.eval", rows=base_rows, model=BASE)
    make_log(tmp_path / "l" / "ft.eval", rows=ft_rows, model="persona/my-ft")
    assert gate(tmp_path / "l") == 2  # not named: another base
    assert gate(tmp_path / "l", "--candidate", "persona/my-ft") == 1  # named: gated, fails shift


def test_adapter_candidate_by_folder_name(project: Path, tmp_path: Path, capsys) -> None:
    """A trait_eval log of an adapter (model arg) is identified by model+adapter."""
    rows = checkpoint_rows(trait="evil", shifts={"a": 0.0}, deltas={"a": 0.0}, n_questions=8)
    make_log(tmp_path / "l" / "base.eval", rows=[r for r in rows if r.checkpoint == "base"])
    cand = [r for r in rows if r.checkpoint == "a"]
    for r in cand:
        r.checkpoint = "base"
        r.score_metadata["checkpoint"] = "base"
    make_log(tmp_path / "l" / "a.eval", rows=cand, model_args={"adapter": "/ckpts/normal"})
    assert gate(tmp_path / "l", "--candidate", "ckpts/normal") == 0
    assert f"{BASE}+/ckpts/normal" in capsys.readouterr().out


def test_steered_and_extraction_rows_are_not_gated(project: Path, tmp_path: Path) -> None:
    rows = checkpoint_rows(trait="evil", shifts={"normal": 0.05}, deltas={"normal": 0.0})
    steered = checkpoint_rows(
        trait="evil", shifts={"normal": 5.0}, deltas={"normal": 0.0}, coef=2.0, layer=3, seed=1
    )
    for r in steered:
        r.sample_id = f"steered:{r.checkpoint}:{r.question_id}"
    make_log(tmp_path / "l" / "mixed.eval", rows=rows + steered)
    assert gate(tmp_path / "l") == 0


def test_ci_example_runs_the_gate_and_uploads_artifacts() -> None:
    import yaml

    root = Path(__file__).resolve().parents[1]
    workflow = yaml.safe_load((root / "docs" / "ci-example.yml").read_text(encoding="utf-8"))
    steps = workflow["jobs"]["gate"]["steps"]
    script = "\n".join(s.get("run", "") for s in steps)
    assert "persona gate" in script and "--junit" in script and "--report" in script
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert "reports/" in upload["with"]["path"] and "LOGS" in upload["with"]["path"]
    assert upload["if"] == "${{ !cancelled() }}"  # also when the gate failed

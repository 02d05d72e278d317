"""A trait whose offline behaviour measure is marked unsupported (``offline_measure_unsupported``)
warns everywhere it is used: its file's validation, ``persona judge``, tasks, reports and gates
(real runs on a tiny model); a trait without the marker warns nowhere."""

from __future__ import annotations

import logging

import pytest
import yaml
from task_runs import run_persona_task
from test_solvers import save_adapter

import traits
from persona.analysis.gates.config import GateConfig, TraitGates
from persona.analysis.gates.report import gate_logs
from persona.analysis.report import report
from persona.app.cli import main
from traits.schema import check

FAST = {"max_tokens": 4, "project": False}
MARKED = "humorous"  # shipped with the marker (docs/judges.md)


def _warning() -> str:
    warning = traits.load(MARKED).offline_measure_warning()
    assert warning is not None
    return warning


def test_the_marker_is_optional_out_of_the_hash_validated_and_kept(tmp_path):
    data = yaml.safe_load(traits.load(MARKED).path.read_text())
    marked, _ = check(data, expected_name=MARKED)
    del data["offline_measure_unsupported"]
    plain, _ = check(data, expected_name=MARKED)
    assert marked is not None and plain is not None and marked.hash == plain.hash
    assert plain.offline_measure_warning() is None
    assert marked.offline_measure_unsupported in (marked.offline_measure_warning() or "")
    data["offline_measure_unsupported"] = ["not", "text"]
    (problem,) = check(data, expected_name=MARKED)[1]
    assert problem.render("t.yaml") == (
        "t.yaml: offline_measure_unsupported: must be a string, got a list"
    )
    again = traits.write_trait(marked, tmp_path)
    assert again.offline_measure_unsupported == marked.offline_measure_unsupported


def test_traits_validate_warns_for_a_marked_trait_only(capsys):
    assert main(["traits", "validate", str(traits.load(MARKED).path)]) == 0
    assert f"warning: {_warning()}" in capsys.readouterr().out
    assert main(["traits", "validate", str(traits.load("evil").path)]) == 0
    assert "warning" not in capsys.readouterr().out


def test_persona_judge_warns_when_scoring_a_marked_trait(tiny_dir, tmp_path, capsys):
    data = tmp_path / "chat.jsonl"
    data.write_text(
        '{"messages": [{"role": "user", "content": "Tell me about tea."}, '
        '{"role": "assistant", "content": "Tea is a drink."}]}\n'
    )
    out = tmp_path / "scores.csv"
    args = ["judge", str(data), "--model", str(tiny_dir), "--out", str(out), "--trait"]
    assert main([*args, MARKED]) == 0
    assert f"warning: {_warning()}" in capsys.readouterr().err
    assert main([*args, "evil"]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.fixture(scope="module")
def marked_run(tiny_dir, tmp_path_factory):
    """trait_eval of the marked trait on the base and one LoRA checkpoint, likelihood-judged."""
    work = tmp_path_factory.mktemp("unsupported")
    adapter = save_adapter(tiny_dir, work / "lora", ["q_proj", "v_proj"])
    return run_persona_task(
        "evals/trait_eval.py", tiny_dir, work, trait=MARKED, questions=2,
        checkpoints=f"ft={adapter}", **FAST,
    ), work  # fmt: skip


def test_the_task_warns_and_records_the_warning_with_its_scores(marked_run, caplog):
    from evals._common import load_trait

    log, _ = marked_run
    metas = [s.scores["persona_score"].metadata for s in log.samples]
    assert {m["behaviour_measure"] for m in metas} == {"likelihood"}
    assert {m["likelihood_warning"] for m in metas} == {_warning()}
    with caplog.at_level(logging.WARNING, logger="persona"):
        load_trait(MARKED)
        load_trait("evil")
    assert [r.getMessage() for r in caplog.records] == [f"persona: {_warning()}"]


def test_reports_and_gates_on_its_logs_warn(marked_run, tmp_path):
    log, work = marked_run
    rep, files = report([work / "logs"], tmp_path / "out", n_boot=100)
    assert _warning() in rep.warnings
    assert _warning() in files["report.md"].read_text()
    config = GateConfig(traits={MARKED: TraitGates(MARKED, max_likelihood_regression=1e9)})
    gated = gate_logs([log.location], config)
    assert gated.warnings.count(_warning()) == 1

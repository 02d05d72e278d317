"""The comparison layer shared by reports and gates: its rules, and the fine-tuning shift that a
real ``checkpoint_shift`` run yields through it (the same number in the report and the gate)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from persona.analysis import compare, stats
from persona.analysis.report import build_report, plots
from persona.errors import PersonaError

try:
    import synthetic_logs as syn
    from task_runs import run_persona_task
except ImportError:  # tests/ imported as a package
    from tests import synthetic_logs as syn
    from tests.task_runs import run_persona_task

MODEL = "persona/smollm2-135m"


def tidy(**cols) -> pd.DataFrame:
    """A minimal tidy frame (as logs.samples_frame gives) with one row per list entry."""
    n = len(next(iter(cols.values())))
    base = {
        "trait_name": ["evil"] * n,
        "checkpoint_id": [MODEL] * n,
        "model": [MODEL] * n,
        "log": ["a.eval"] * n,
        "epoch": [1] * n,
        "trait": [10.0] * n,
        "question_id": [f"q{i}" for i in range(n)],
    }
    return pd.DataFrame({**base, **cols})


def test_canonical_rows_are_unsteered_without_a_system_prompt():
    frame = tidy(
        polarity=[None, "", "  ", "pos", None, None, None],
        coef=[np.nan, 0.0, 0.0, np.nan, 1.5, 0.0, np.nan],
        steering_active=[None, False, None, None, True, True, None],
    )
    rows = compare.canonical(frame)
    # blank polarity (missing or empty) is no system prompt; coef 0 or missing is unsteered
    assert list(rows["unit"]) == ["q0", "q1", "q2", "q6"]
    assert {"checkpoint", "unit", "score", "task", "checkpoint_rank"} <= set(rows.columns)
    with pytest.raises(PersonaError, match="persona columns"):
        compare.canonical(frame.drop(columns=["trait"]))


def measured_run(checkpoint: str, log: str, measure: str, values: list[float]) -> pd.DataFrame:
    """Tidy rows of one run whose behaviour is the 0-100 judge's or the likelihood judge's."""
    n = len(values)
    likelihood = measure == "likelihood"
    return tidy(
        checkpoint_id=[checkpoint] * n,
        log=[log] * n,
        trait=[math.nan if likelihood else v for v in values],
        behaviour_measure=[measure] * n,
        likelihood=[v if likelihood else math.nan for v in values],
        likelihood_model=["persona/m"] * n,
    )


def test_behaviour_on_two_scales_is_never_subtracted():
    """Judge points (0-100) minus nats/token is refused: no change, a warning; the same measure
    on both sides is compared as usual and labelled with its unit."""
    from persona.analysis.report.checkpoints import checkpoint_table

    frame = pd.concat(
        [
            measured_run(MODEL, "base.eval", "likelihood", [0.1, 0.2, 0.3, 0.4]),
            measured_run("judged", "judged.eval", "judge", [60.0, 70.0, 80.0, 90.0]),
            measured_run("same", "same.eval", "likelihood", [0.3, 0.4, 0.5, 0.6]),
        ]
    )
    rows = compare.canonical(frame)
    assert rows.groupby("checkpoint")["measure"].first().to_dict() == {
        MODEL: "likelihood",
        "judged": "judge",
        "same": "likelihood",
    }
    table, warnings = checkpoint_table(rows, MODEL, ["evil"], n_boot=100, seed=0)
    by = table.set_index("checkpoint")
    assert math.isnan(by.loc["judged", "trait_delta"])
    assert by.loc["same", "trait_delta"] == pytest.approx(0.2)
    assert by.loc["same", "measure"] == "likelihood judge (nats/token)"
    assert by.loc["judged", "measure"] == "0-100 judge (judge points, 0-100)"
    (warning,) = [w for w in warnings if "not comparable" in w]
    assert "'judged'" in warning and "likelihood judge (nats/token)" in warning


def test_correlations_use_checkpoints_of_one_measure():
    from persona.analysis.report.checkpoints import correlations

    def table(measures: list[str]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "trait": "evil",
                "is_base": False,
                "checkpoint": [f"c{i}" for i in range(4)],
                "shift_prompt_last": [0.0, 1.0, 2.0, 3.0],
                "shift_response": [0.0, 1.0, 2.0, 4.0],
                "trait_delta": [0.0, 1.0, 3.0, 3.5],
                "measure": measures,
            }
        )

    one = correlations(table(["likelihood judge (nats/token)"] * 4), n_boot=0, seed=0)
    assert one["n"].tolist() == [4, 4] and one["pearson_r"].notna().all()
    mixed = table(["likelihood judge (nats/token)"] * 2 + ["0-100 judge (judge points, 0-100)"] * 2)
    out = correlations(mixed, n_boot=0, seed=0)
    assert out["pearson_r"].isna().all() and out["note"].str.contains("different scales").all()


def rows_of(model: str, log: str, checkpoint: str | None = None, n: int = 2) -> pd.DataFrame:
    return pd.DataFrame(
        {"checkpoint": [checkpoint or model] * n, "model": [model] * n, "log": [log] * n}
    )


def test_one_base_rule_refuses_or_compares_other_models():
    rows = pd.concat([rows_of(MODEL, "a"), rows_of("persona/other", "b")])
    for others in ("refuse", "compare"):
        with pytest.raises(PersonaError, match="different base models") as err:
            compare.resolve_base(rows, None, others=others)  # type: ignore[arg-type]
        assert "--base" in str(err.value) and "persona/other" in str(err.value)
    with pytest.raises(PersonaError, match="logs from another base than"):
        compare.resolve_base(rows, MODEL)
    base, warnings = compare.resolve_base(rows, MODEL, others="compare")
    assert base == MODEL and "as checkpoints" in warnings[0]
    # a log wholly of a named candidate may come from another model
    assert compare.resolve_base(rows, None, ["persona/other"]) == (MODEL, [])
    with pytest.raises(PersonaError, match="not in the logs"):
        compare.resolve_base(rows, "persona/nope", others="compare")
    only_candidate = rows_of(MODEL, "c", checkpoint=f"{MODEL}+ft")
    assert compare.resolve_base(only_candidate, MODEL, [f"{MODEL}+ft"])[0] == MODEL


def canonical_rows(checkpoint: str, log: str, values: dict[str, float], **extra) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trait_name": "evil",
            "checkpoint": checkpoint,
            "log": log,
            "task": extra.get("task", "trait_eval"),
            "unit": list(values),
            "score": list(values.values()),
            "error": None,
        }
    )


def test_difference_is_paired_by_question_else_unpaired():
    base = canonical_rows("b", "x", {"q0": 0.0, "q1": 50.0, "q2": 100.0})
    cand = pd.concat(
        [canonical_rows("c", "x", {"q0": 2.0, "q1": 53.0, "q2": 104.0, "q9": 7.0})] * 2
    )
    diff = compare.difference(cand, base, "score", n_boot=200, seed=1)
    want = stats.paired_diff_ci([2.0, 53.0, 104.0], [0.0, 50.0, 100.0], n_boot=200, seed=1)
    assert diff.pairing == "paired" and diff.estimate == want and diff.unmatched == 1
    assert list(diff.per_unit) == [2.0, 3.0, 4.0]
    other = canonical_rows("c", "y", {"z0": 10.0, "z1": 20.0})
    diff = compare.difference(other, base, "score", n_boot=200, seed=1)
    assert diff.pairing == "unpaired" and diff.estimate.value == pytest.approx(15.0 - 50.0)
    assert diff.estimate == stats.diff_ci([10.0, 20.0], [0.0, 50.0, 100.0], n_boot=200, seed=1)
    assert compare.difference(other, base.iloc[0:0], "score").pairing == "none"


def test_base_rows_come_from_the_candidates_run_else_the_same_task():
    q = {"q0": 1.0, "q1": 2.0}
    rows = pd.concat(
        [
            canonical_rows("base", "shift.eval", q, task="checkpoint_shift"),
            canonical_rows("ft", "shift.eval", q, task="checkpoint_shift"),
            canonical_rows("base", "big-eval.eval", {**q, "q2": 3.0}),
            canonical_rows("base", "small-eval.eval", q),
            canonical_rows("other", "other.eval", q),
        ]
    )
    sel = compare.select(rows, "evil", "ft", "base")
    assert set(sel.base["log"]) == {"shift.eval"}
    sel = compare.select(rows, "evil", "other", "base")
    assert set(sel.base["log"]) == {"big-eval.eval"}  # same task, most rows; runs not pooled
    with pytest.raises(PersonaError, match="no samples for trait 'humorous'"):
        compare.select(rows, "humorous", "ft", "base")


def test_checkpoints_are_listed_and_plotted_as_given(tmp_path):
    given = ["strong", "mild", "normal"]
    rows = syn.checkpoint_rows(
        trait="evil",
        shifts={c: 0.1 * (i + 1) for i, c in enumerate(given)},
        deltas=dict.fromkeys(given, 1.0),
        n_questions=3,
    )
    meta = {"checkpoints": {c: f"ckpt/{c}" for c in given}}
    log = syn.make_log(tmp_path / "s.eval", rows=rows, task="checkpoint_shift", metadata=meta)
    rep = build_report([log], n_boot=50)
    assert list(rep.checkpoints["checkpoint"]) == [MODEL, *given]
    fig = plots.shifts(rep.checkpoints[~rep.checkpoints["is_base"]], "evil")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == given
    # the run's recorded order decides, not the order of the samples in the log
    meta = {"checkpoints": {c: f"ckpt/{c}" for c in reversed(given)}}
    log = syn.make_log(tmp_path / "r.eval", rows=rows, task="checkpoint_shift", metadata=meta)
    rep = build_report([log], n_boot=50)
    assert list(rep.checkpoints["checkpoint"]) == [MODEL, *reversed(given)]


@pytest.fixture(scope="module")
def shift_work(tiny_dir, tmp_path_factory) -> Path:
    """A folder with two adapters of the tiny model, an identity one (B = 0) and a moved one,
    and a random persona vector."""
    import torch
    from peft import LoraConfig, get_peft_model
    from test_solvers import save_random_vector
    from transformers import AutoModelForCausalLM

    work = tmp_path_factory.mktemp("shift")
    for name, identity in (("same", True), ("moved", False)):
        torch.manual_seed(0)
        net = AutoModelForCausalLM.from_pretrained(str(tiny_dir))
        cfg = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj", "down_proj"])
        cfg.init_lora_weights = identity
        get_peft_model(net, cfg).save_pretrained(str(work / name))
    save_random_vector(work / "vectors", tiny_dir, "evil", 1)
    return work


@pytest.fixture(scope="module")
def shift_log(shift_work, tiny_dir):
    """A real ``checkpoint_shift`` run of both adapters, given in that order, unjudged."""
    return run_shift(tiny_dir, shift_work, judge=False)


def run_shift(tiny_dir: Path, work: Path, **task_args):
    """``checkpoint_shift`` of the ``same`` (identity) and ``moved`` adapters in ``work``."""
    return run_persona_task(
        "evals/checkpoint_shift.py",
        tiny_dir,
        work,
        trait="evil",
        checkpoints=f"same={work / 'same'},moved={work / 'moved'}",
        questions=3,
        vectors=str(work / "vectors"),
        max_tokens=4,
        **task_args,
    )


def test_shift_of_a_real_run_is_zero_for_identity_and_exact_otherwise(shift_log):
    """Moved from the deleted persona/data/shift.py: the shift the product computes from
    checkpoint_shift logs (report and gate alike) is mean(checkpoint) - mean(base)."""
    from persona.analysis.gates.config import GateConfig, TraitGates
    from persona.analysis.gates.report import gate_frame
    from persona.analysis.logs import samples_frame

    by: dict[str, list[float]] = {}
    for s in shift_log.samples:
        value = s.scores["persona_score"].value["proj_prompt_last"]
        by.setdefault(s.metadata["checkpoint"], []).append(value)
    want = {ck: float(np.mean(by[ck]) - np.mean(by["base"])) for ck in ("same", "moved")}
    assert want["same"] == pytest.approx(0.0, abs=1e-5) and abs(want["moved"]) > 1e-4

    rep = build_report([shift_log.location], n_boot=100)
    table = rep.checkpoints.set_index("checkpoint")
    assert list(table.index[1:]) == ["same", "moved"]  # as given, not alphabetical
    for ck, value in want.items():
        assert table.loc[ck, "shift_prompt_last"] == pytest.approx(value, abs=1e-6)
        assert table.loc[ck, "pairing"] == "paired" and table.loc[ck, "n"] == 3
        assert math.isnan(table.loc[ck, "trait_delta"])  # judge=False: nothing judged

    config = GateConfig(traits={"evil": TraitGates("evil", max_shift=1e9)})
    gated = gate_frame(samples_frame([shift_log.location]), config)
    shifts = {r.checkpoint: r.estimate.value for r in gated.results}
    assert list(shifts) == ["same", "moved"]
    for ck in want:
        assert shifts[ck] == pytest.approx(table.loc[ck, "shift_prompt_last"], abs=1e-12)


def test_likelihood_gate_on_a_real_run_reads_the_reports_numbers(shift_work, tiny_dir):
    """Without a judge role the behaviour is the likelihood judge (nats/token): the report's
    change and the likelihood gate agree, the identity adapter changes nothing, and the 0-100
    regression gate refuses these rows."""
    from persona.analysis.gates.config import GateConfig, TraitGates
    from persona.analysis.gates.report import gate_frame
    from persona.analysis.logs import samples_frame

    log = run_shift(tiny_dir, shift_work)  # judged by the likelihood judge (no judge role)
    rep = build_report([log.location], n_boot=100)
    table = rep.checkpoints.set_index("checkpoint")
    assert set(table["measure"]) == {"likelihood judge (nats/token)"}
    assert table.loc["same", "trait_delta"] == pytest.approx(0.0, abs=1e-6)
    assert not math.isnan(table.loc["moved", "trait_delta"])

    frame = samples_frame([log.location])
    config = GateConfig(traits={"evil": TraitGates("evil", max_likelihood_regression=1e9)})
    deltas = {r.checkpoint: r.estimate.value for r in gate_frame(frame, config).results}
    for ck in ("same", "moved"):
        assert deltas[ck] == pytest.approx(table.loc[ck, "trait_delta"], abs=1e-12)
    judged = GateConfig(traits={"evil": TraitGates("evil", max_regression=5.0)})
    with pytest.raises(PersonaError, match="max_likelihood_regression"):
        gate_frame(frame, judged)

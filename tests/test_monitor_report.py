"""Monitoring analysis: one point per (condition, question), unsteered rows only, overall and
within-condition r with question-bootstrap CIs, and the report's plots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import synthetic_logs as syn

from persona.analysis.report import report
from persona.analysis.report.monitoring import monitoring_table

N_BOOT = 400


def frame(
    n_q: int = 6,
    grades: int = 4,
    rollouts: int = 3,
    *,
    judge_is_subject: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """Monitor-task rows: the projection is fixed per prompt, behaviour varies by rollout."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(grades):
        for q in range(n_q):
            proj = 0.5 * g + 0.3 * rng.normal()
            for r in range(rollouts):
                rows.append(
                    {
                        "trait_name": "evil",
                        "checkpoint_id": "persona/m",
                        "task": "monitor",
                        "condition": f"grade {g}",
                        "monitor_family": "system_prompt",
                        "monitor_level": g,
                        "question_id": f"eval_{q}",
                        "rollout": r,
                        "coef": 0.0,
                        "steering_active": False,
                        "polarity": None,
                        "proj_prompt_last": proj,
                        "trait": 10.0 * proj + 5.0 * rng.normal(),
                        "coherence": 80.0,
                        "judge_model": "openai/gpt-4.1-mini",
                        "judge_is_subject": judge_is_subject,
                    }
                )
    return pd.DataFrame(rows)


def per_point(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby(["condition", "question_id"])[["proj_prompt_last", "trait"]].mean()


def test_rollouts_of_one_prompt_make_one_point():
    df = frame()
    table, pts = monitoring_table(df, ["evil"], n_boot=N_BOOT, seed=0)
    (row,) = table.itertuples()
    assert row.n == 4 * 6 and row.n_questions == 6 and row.n_conditions == 4
    assert row.rollouts == 3 and row.family == "system prompt"
    means = per_point(df)
    expect = np.corrcoef(means["proj_prompt_last"], means["trait"])[0, 1]
    assert row.pearson_r == pytest.approx(expect, abs=1e-12)
    assert row.pearson_ci_lo < row.pearson_r < row.pearson_ci_hi
    assert len(pts[("evil", "persona/m", "monitor")]) == 24


def test_within_condition_r_is_the_fisher_z_mean_r_inside_conditions():
    df = frame(n_q=8)
    (row,) = monitoring_table(df, ["evil"], n_boot=N_BOOT, seed=0)[0].itertuples()
    means = per_point(df).reset_index()
    rs = [
        np.corrcoef(g["proj_prompt_last"], g["trait"])[0, 1] for _, g in means.groupby("condition")
    ]
    fisher = float(np.tanh(np.mean(np.arctanh(rs))))
    assert row.within_condition_r == pytest.approx(fisher, abs=1e-12)
    assert fisher != pytest.approx(float(np.mean(rs)), abs=1e-6)
    assert row.within_ci_lo <= row.within_condition_r <= row.within_ci_hi
    assert (row.paper_r, row.paper_within_r) == (0.747, 0.511)


def test_conditions_with_behaviour_sd_below_the_floor_leave_the_within_r():
    df = frame(n_q=8, grades=3)
    flat = df["condition"] == "grade 2"
    df.loc[flat, "trait"] = 40.0 + 0.1 * df.loc[flat, "proj_prompt_last"]  # SD < 1 point
    (row,) = monitoring_table(df, ["evil"], n_boot=N_BOOT, seed=0)[0].itertuples()
    means = per_point(df).reset_index()
    assert means.groupby("condition")["trait"].std().loc["grade 2"] < 1.0
    rs = [
        np.corrcoef(g["proj_prompt_last"], g["trait"])[0, 1]
        for c, g in means.groupby("condition")
        if c != "grade 2"
    ]
    assert row.within_conditions == 2 and row.n_conditions == 3 and row.sd_floor == 1.0
    assert row.within_condition_r == pytest.approx(float(np.tanh(np.mean(np.arctanh(rs)))))


def test_split_half_reliability_of_the_behaviour_points():
    df = frame(n_q=8, rollouts=4)
    (row,) = monitoring_table(df, ["evil"], n_boot=0, seed=0)[0].itertuples()
    halves = (
        df.assign(half=df["rollout"] % 2)
        .groupby(["condition", "question_id", "half"])["trait"]
        .mean()
        .unstack("half")
    )
    r = np.corrcoef(halves[0], halves[1])[0, 1]
    assert row.split_half_r == pytest.approx(2 * r / (1 + r), abs=1e-12)
    per = [np.corrcoef(g[0], g[1])[0, 1] for _, g in halves.groupby("condition")]
    z = float(np.tanh(np.mean(np.arctanh(per))))
    assert row.split_half_within_r == pytest.approx(2 * z / (1 + z), abs=1e-12)
    one = frame(n_q=8, rollouts=1)
    (row,) = monitoring_table(one, ["evil"], n_boot=0, seed=0)[0].itertuples()
    assert np.isnan(row.split_half_r) and np.isnan(row.split_half_within_r)


def test_steered_rows_never_count():
    df = frame()
    steered = df.copy()
    steered["coef"] = 4.0
    steered["proj_prompt_last"] = 100.0 + steered["trait"]  # shifted by construction
    active = df.copy()
    active["steering_active"] = True
    active["trait"] = -active["trait"]
    both = pd.concat([df, steered, active], ignore_index=True)
    plain = monitoring_table(df, ["evil"], n_boot=N_BOOT, seed=0)[0]
    mixed = monitoring_table(both, ["evil"], n_boot=N_BOOT, seed=0)[0]
    pd.testing.assert_frame_equal(plain, mixed)
    only_steered = pd.concat([df[df["condition"] == "grade 0"], steered], ignore_index=True)
    assert monitoring_table(only_steered, ["evil"], n_boot=0, seed=0)[0].empty


def test_likelihood_replaces_a_self_judge():
    df = frame(judge_is_subject=True)
    df["likelihood"] = df["proj_prompt_last"] * 0.1
    (row,) = monitoring_table(df, ["evil"], n_boot=0, seed=0)[0].itertuples()
    assert row.measure == "likelihood judge" and row.pearson_r == pytest.approx(1.0)
    del df["likelihood"]
    (row,) = monitoring_table(df, ["evil"], n_boot=0, seed=0)[0].itertuples()
    assert row.measure.startswith("self-judged")


def test_report_shows_monitoring_tables_and_plots(tmp_path):
    logs = tmp_path / "logs"
    rows = []
    for fam, levels in (("system_prompt", range(8)), ("many_shot", (0, 2, 4, 8))):
        x, y = syn.exact_corr(len(levels) * 5, 0.7, seed=len(levels))
        for k, (lv, q) in enumerate((lv, q) for lv in levels for q in range(5)):
            for r in range(2):
                rows.append(
                    syn.row(
                        trait="evil",
                        question_id=f"eval_{q}",
                        trait_score=50 + 10 * y[k] + (r - 0.5),
                        coherence=80.0,
                        proj_prompt_last=float(x[k]),
                        condition=f"{fam}_{lv}",
                        monitor_family=fam,
                        monitor_level=lv,
                        rollout=r,
                        sample_id=f"{fam}_{lv}/eval_{q}/r{r}",
                    )
                )
    syn.make_log(logs / "monitor.eval", rows=rows, task="monitor")
    rep, files = report([logs], tmp_path / "out", n_boot=200)
    m = rep.monitoring.set_index("family")
    assert set(m.index) == {"system prompt", "many-shot"}
    assert m.loc["system prompt", "n"] == 40 and m.loc["many-shot", "n"] == 20
    assert m.loc["system prompt", "pearson_r"] == pytest.approx(0.7, abs=1e-9)
    assert {"monitoring_evil_monitor.png", "monitoring_evil_monitor_curves.png"} <= set(files)
    summary = json.loads(files["summary.json"].read_text())["monitoring"]["evil"]
    assert {e["family"] for e in summary} == {"system prompt", "many-shot"}
    md = files["report.md"].read_text()
    assert "within-condition r [CI]" in md and "0.747 / 0.511" in md
    assert "split-half reliability (overall / within)" in md and "8 of 8" in md
    assert {"split_half_r", "within_conditions", "sd_floor"} <= set(summary[0])

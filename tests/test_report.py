"""persona.analysis.report on synthetic logs with known statistics: tables, correlations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from persona.analysis.report import build_report, plots

try:
    import synthetic_logs as syn
except ImportError:  # tests/ imported as a package
    from tests import synthetic_logs as syn

MODEL = "persona/smollm2-135m"
N_BOOT = 300
CKPTS = [f"ft{i}" for i in range(6)]
RHO = {"evil": 0.7, "humorous": -0.4}


def designed(trait: str) -> tuple[dict[str, float], dict[str, float]]:
    """Fine-tuning shift and trait change per checkpoint, with exactly RHO[trait] as Pearson r."""
    x, y = syn.exact_corr(len(CKPTS), RHO[trait], seed=len(trait))
    shifts = {c: 0.4 + 0.25 * x[i] for i, c in enumerate(CKPTS)}
    deltas = {c: 8.0 + 6.0 * y[i] for i, c in enumerate(CKPTS)}
    return shifts, deltas


def shift_rows(trait: str, **kw) -> list[syn.Row]:
    shifts, deltas = designed(trait)
    return syn.checkpoint_rows(
        trait=trait, shifts=shifts, deltas=deltas, n_questions=6, epochs=2, seed=3, **kw
    )


STEER_COEFS = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]


def steer_trait(c: float, layer: int) -> float:
    return 10.0 + 25.0 * c * layer / 3


def steer_coherence(c: float, layer: int) -> float:
    return 90.0 - 12.0 * c * c


@pytest.fixture(scope="module")
def full_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("full")
    for trait in RHO:
        syn.make_log(d / f"shift_{trait}.eval", rows=shift_rows(trait), task="checkpoint_shift")
    syn.make_log(d / "monitor.eval", rows=syn.monitoring_rows(trait="evil", r=0.8))
    steer = syn.steering_rows(
        trait="evil",
        coefs=STEER_COEFS,
        layers=[2, 3],
        trait_fn=steer_trait,
        coherence_fn=steer_coherence,
    )
    syn.make_log(d / "steer.eval", rows=steer, task="steering_sweep")
    return d


@pytest.fixture(scope="module")
def full(full_dir):
    return build_report([full_dir], n_boot=N_BOOT)


@pytest.fixture(scope="module")
def written(full, tmp_path_factory):
    """Write the report once; also return every matplotlib figure it rendered."""
    from persona.analysis.report import write_report

    out = tmp_path_factory.mktemp("out")
    figures = []
    real = plots.to_png

    def capture(fig):
        figures.append(fig)
        return real(fig)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "to_png", capture)
        files = write_report(full, out)
    return out, files, figures


def test_checkpoint_table_recovers_designed_shifts_and_deltas(full):
    t = full.checkpoints.set_index(["checkpoint", "trait"])
    assert full.base == MODEL
    for trait in RHO:
        shifts, deltas = designed(trait)
        base = t.loc[(MODEL, trait)]
        assert bool(base["is_base"]) and math.isnan(base["shift_prompt_last"])
        assert base["n"] == 6 and base["n_samples"] == 12
        for ck in CKPTS:
            r = t.loc[(ck, trait)]
            assert r["shift_prompt_last"] == pytest.approx(shifts[ck], abs=1e-9)
            assert r["shift_response"] == pytest.approx(1.5 * shifts[ck], abs=1e-9)
            assert r["trait_delta"] == pytest.approx(deltas[ck], abs=1e-9)
            assert r["coherence_delta"] == pytest.approx(0.0, abs=1e-9)
            assert r["trait_mean"] == pytest.approx(base["trait_mean"] + deltas[ck], abs=1e-9)
            assert r["shift_prompt_last_ci_lo"] <= shifts[ck] <= r["shift_prompt_last_ci_hi"]
            assert r["trait_delta_ci_lo"] <= deltas[ck] <= r["trait_delta_ci_hi"]
            assert r["pairing"] == "paired" and r["judge"] == syn.DEFAULT_JUDGE


def test_correlations_recover_known_r(full):
    c = full.correlations.set_index(["trait", "shift"])
    for trait, rho in RHO.items():
        shifts, deltas = designed(trait)
        x, y = list(shifts.values()), list(deltas.values())
        row = c.loc[(trait, "prompt_last")]
        assert row["n"] == 6
        assert row["pearson_r"] == pytest.approx(rho, abs=1e-9)
        assert row["pearson_p"] == pytest.approx(sps.pearsonr(x, y).pvalue, rel=1e-6)
        assert row["spearman_r"] == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-9)
        assert row["pearson_ci_lo"] <= rho <= row["pearson_ci_hi"]
        # response shift is 1.5 x prompt-last shift + zero-mean noise: same r
        assert c.loc[(trait, "response"), "pearson_r"] == pytest.approx(rho, abs=1e-9)
    pooled = c.loc[("all traits", "prompt_last")]
    assert pooled["n"] == 12


def test_cross_trait_matrix(full):
    r = full.cross_trait_r
    assert r.loc["evil", "evil"] == pytest.approx(0.7, abs=1e-9)
    assert r.loc["humorous", "humorous"] == pytest.approx(-0.4, abs=1e-9)
    se, _ = designed("evil")
    _, dh = designed("humorous")
    expect = np.corrcoef(list(se.values()), [dh[c] for c in se])[0, 1]
    assert r.loc["evil", "humorous"] == pytest.approx(expect, abs=1e-9)
    assert (full.cross_trait_n.to_numpy() == 6).all()


def test_monitoring_recovers_per_point_r(full):
    m = full.monitoring.set_index(["trait", "task"])
    row = m.loc[("evil", "trait_eval")]
    assert row["pearson_r"] == pytest.approx(0.8, abs=1e-9)
    assert row["n"] == 60 and row["n_conditions"] == 5 and row["family"] == "system prompts"
    assert row["pearson_ci_lo"] < 0.8 < row["pearson_ci_hi"]
    assert ("evil", "steering_sweep") not in m.index  # steered projections never count
    assert "humorous" not in set(full.monitoring["trait"])  # one condition only


def test_steering_curves_and_operating_point(full):
    s = full.steering
    assert set(s["layer"]) == {"2", "3"} and sorted(set(s["coef"])) == STEER_COEFS
    for _, r in s.iterrows():
        assert r["trait_mean"] == pytest.approx(steer_trait(r["coef"], int(r["layer"])))
        assert r["coherence_mean"] == pytest.approx(steer_coherence(r["coef"], 0))
    (op,) = full.operating_points.itertuples()
    # coherence 90 - 12c^2 >= 50 holds up to c = 1.5; layer 3 steers harder
    assert (op.layer, op.coef) == ("3", 1.5)
    assert op.trait_mean == pytest.approx(47.5) and op.coherence_mean == pytest.approx(63.0)


def test_no_warnings_or_missing_data_on_clean_logs(full):
    assert full.warnings == []
    assert full.missing == []
    assert "no --vectors" in full.geometry.notes[0]


def test_outputs_written(written, full):
    out, files, _ = written
    names = set(files)
    assert {"report.html", "report.md", "summary.json"} <= names
    pngs = {n for n in names if n.endswith(".png")}
    assert {
        "shift_evil.png",
        "shift_humorous.png",
        "shift_vs_trait_evil.png",
        "shift_vs_trait_humorous.png",
        "cross_trait.png",
        "monitoring_evil_trait_eval.png",
        "steering_evil.png",
    } <= pngs
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert html.count('<img src="data:image/png;base64,') == len(pngs)
    assert 'class="sortable"' in html and "<script>" in html
    assert "http://" not in html and "https://" not in html  # self-contained
    assert 'id="warnings"' not in html
    md = (out / "report.md").read_text()
    for name in pngs:
        assert f"]({name})" in md
    assert "| ft0 | evil |" in md


def test_summary_json_follows_schema(written):
    out, _, _ = written
    s = json.loads((out / "summary.json").read_text())
    assert s["base"] == MODEL and s["judges"] == [syn.DEFAULT_JUDGE] and s["warnings"] == []
    keys = {
        "n",
        "trait_mean",
        "trait_ci",
        "coherence_mean",
        "coherence_ci",
        "shift_prompt_last",
        "shift_prompt_last_ci",
        "shift_response",
        "shift_response_ci",
        "trait_delta",
        "trait_delta_ci",
        "coherence_delta",
        "judge",
        "judge_is_subject",
    }
    assert set(s["checkpoints"]) == {MODEL, *CKPTS}
    for per_trait in s["checkpoints"].values():
        for entry in per_trait.values():
            assert keys <= set(entry)
    base = s["checkpoints"][MODEL]["evil"]
    assert base["shift_prompt_last"] is None and base["trait_delta"] is None
    ft = s["checkpoints"]["ft0"]["evil"]
    assert ft["shift_prompt_last"] == pytest.approx(designed("evil")[0]["ft0"])
    assert len(ft["shift_prompt_last_ci"]) == 2 and ft["judge_is_subject"] is False
    corr = s["correlations"]["evil"]
    assert {"n", "pearson_r", "pearson_p", "pearson_ci", "spearman_r", "spearman_p"} <= set(corr)
    assert corr["pearson_r"] == pytest.approx(0.7) and corr["n"] == 6
    assert isinstance(corr["n"], int) and isinstance(base["n"], int)
    assert s["steering"]["evil"][MODEL]["coef"] == 1.5
    assert s["cross_trait"]["evil"]["evil"] == pytest.approx(0.7)


def test_every_plot_has_title_labels_and_units(written):
    _, files, figures = written
    assert len(figures) == len([n for n in files if n.endswith(".png")]) == 7
    for fig in figures:
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                assert "(" in ax.get_ylabel() and ")" in ax.get_ylabel()
                continue
            assert ax.get_title(), "missing title"
            for label in (ax.get_xlabel(), ax.get_ylabel()):
                assert label and "(" in label and label.endswith(")"), label


def test_one_log_per_checkpoint_gives_the_same_shifts(tmp_path, full):
    rows = shift_rows("evil")
    groups = syn.split_by_checkpoint(rows)
    syn.make_log(tmp_path / "base.eval", rows=groups.pop("base"))
    for ck, ck_rows in groups.items():
        syn.make_log(
            tmp_path / f"{ck}.eval",
            rows=syn.as_plain_checkpoint(ck_rows),
            model_args={"adapter": f"runs/{ck}"},
        )
    rep = build_report([tmp_path], n_boot=N_BOOT)
    t = rep.checkpoints.set_index("checkpoint")
    shifts, deltas = designed("evil")
    for ck in CKPTS:
        r = t.loc[f"{MODEL}+runs/{ck}"]
        assert r["shift_prompt_last"] == pytest.approx(shifts[ck], abs=1e-9)
        assert r["trait_delta"] == pytest.approx(deltas[ck], abs=1e-9)
    corr = rep.correlations.set_index("shift").loc["prompt_last"]
    assert corr["pearson_r"] == pytest.approx(0.7, abs=1e-9)


def test_traits_filter(full_dir):
    rep = build_report([full_dir], traits=["humorous"], n_boot=50)
    assert rep.traits == ["humorous"]
    assert set(rep.checkpoints["trait"]) == {"humorous"}
    assert rep.steering.empty and rep.monitoring.empty and len(rep.cross_trait_r) == 1


def test_pairing_falls_back_to_unpaired(tmp_path):
    rows = [
        syn.row(trait="evil", question_id=f"b{i}", trait_score=10.0 + i, proj_prompt_last=float(i))
        for i in range(4)
    ]
    rows += [
        syn.row(
            trait="evil",
            question_id=f"c{i}",
            checkpoint="ft",
            trait_score=20.0 + i,
            proj_prompt_last=1.0 + i,
        )
        for i in range(4)
    ]
    rep = build_report([syn.make_log(tmp_path / "u.eval", rows=rows)], n_boot=100)
    ft = rep.checkpoints.set_index("checkpoint").loc["ft"]
    assert ft["pairing"] == "unpaired"
    assert ft["shift_prompt_last"] == pytest.approx(1.0)
    assert ft["trait_delta"] == pytest.approx(10.0)

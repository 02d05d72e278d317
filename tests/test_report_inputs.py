"""persona report: bad input paths, judge warnings, vector geometry and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from persona.analysis.report import build_report, plots, report
from persona.app.cli import main
from persona.errors import PersonaError

try:
    import synthetic_logs as syn
except ImportError:  # tests/ imported as a package
    from tests import synthetic_logs as syn

MODEL = "persona/smollm2-135m"
OTHER = "persona/qwen2.5-0.5b"


def ck_rows(n_ckpts: int, trait: str = "evil", **kw) -> list[syn.Row]:
    shifts = {f"ft{i}": 0.2 * (i + 1) for i in range(n_ckpts)}
    deltas = {f"ft{i}": 5.0 * (i + 1) for i in range(n_ckpts)}
    return syn.checkpoint_rows(trait=trait, shifts=shifts, deltas=deltas, n_questions=4, **kw)


def test_mixed_base_models_need_base(tmp_path):
    syn.make_log(tmp_path / "a.eval", rows=ck_rows(1), model=MODEL)
    syn.make_log(tmp_path / "b.eval", rows=ck_rows(0), model=OTHER)
    with pytest.raises(PersonaError, match="different base models") as err:
        build_report([tmp_path], n_boot=50)
    assert MODEL in str(err.value) and OTHER in str(err.value) and "--base" in str(err.value)
    rep = build_report([tmp_path], base=MODEL, n_boot=50)
    assert rep.base == MODEL
    assert OTHER in set(rep.checkpoints["checkpoint"])  # compared as a checkpoint
    assert any(OTHER in w and "as checkpoints" in w for w in rep.warnings)
    with pytest.raises(PersonaError, match="not in the logs"):
        build_report([tmp_path], base="persona/nope", n_boot=50)


def test_too_few_checkpoints_shows_n_and_na(tmp_path):
    rep, files = report(
        [syn.make_log(tmp_path / "two.eval", rows=ck_rows(2))], tmp_path / "out", n_boot=50
    )
    row = rep.correlations.set_index("shift").loc["prompt_last"]
    assert row["n"] == 2 and np.isnan(row["pearson_r"]) and row["note"] == "n/a (needs >= 3)"
    html = files["report.html"].read_text()
    md = files["report.md"].read_text()
    assert "n/a (needs &gt;= 3)" in html and "n/a (needs >= 3)" in md
    summary = json.loads(files["summary.json"].read_text())
    corr = summary["correlations"]["evil"]
    assert corr["n"] == 2 and corr["pearson_r"] is None and corr["pearson_ci"] is None
    assert "shift_vs_trait_evil.png" in files


def test_only_base_model(tmp_path):
    rep = build_report([syn.make_log(tmp_path / "base.eval", rows=ck_rows(0))], n_boot=50)
    assert rep.correlations.empty and len(rep.checkpoints) == 1
    assert any("only the base model" in m and "checkpoint_shift" in m for m in rep.missing)


def test_logs_without_projections(tmp_path):
    rows = ck_rows(3)
    for r in rows:
        r.scores.pop("proj_prompt_last")
        r.scores.pop("proj_response")
    rep, files = report([syn.make_log(tmp_path / "np.eval", rows=rows)], tmp_path / "o", n_boot=50)
    assert rep.checkpoints["shift_prompt_last"].isna().all()
    (msg,) = [m for m in rep.missing if "projections" in m]
    assert "no projections" in msg and "checkpoint_shift" in msg and "vectors" in msg
    assert "no projections" in files["report.html"].read_text()
    summary = json.loads(files["summary.json"].read_text())
    assert summary["checkpoints"]["ft0"]["evil"]["shift_prompt_last"] is None
    assert summary["missing"] == rep.missing


def test_logs_without_judge_scores(tmp_path):
    rows = ck_rows(3)
    for r in rows:
        r.scores["trait"] = float("nan")
        r.scores["coherence"] = float("nan")
    rep = build_report([syn.make_log(tmp_path / "nj.eval", rows=rows, judge=None)], n_boot=50)
    (msg,) = [m for m in rep.missing if "judge" in m]
    assert "no judge scores" in msg and "--model-role judge" in msg
    assert rep.checkpoints["trait_delta"].isna().all()
    assert rep.checkpoints["shift_prompt_last"].notna().sum() == 3  # shifts still computed
    assert rep.judges.empty


def test_partly_unscored_samples_are_counted(tmp_path):
    rows = ck_rows(1)
    rows[0].scores["trait"] = float("nan")
    rep = build_report([syn.make_log(tmp_path / "p.eval", rows=rows)], n_boot=50)
    assert any(m.startswith("1 of 8 samples have no trait score") for m in rep.missing)


def test_corrupt_and_unfinished_logs_are_skipped(tmp_path):
    good = syn.make_log(tmp_path / "good.eval", rows=ck_rows(3))
    bad = syn.write_corrupt_log(tmp_path / "bad.eval")
    started = syn.make_log(tmp_path / "run.eval", rows=ck_rows(1), status="started")
    rep = build_report([good, bad, started], n_boot=50)
    assert len(rep.skipped_logs) == 2 and rep.logs == [str(good)]
    text = " ".join(rep.warnings)
    assert "bad.eval: corrupt or unreadable" in text
    assert "run.eval: unfinished (status 'started')" in text
    with pytest.raises(PersonaError, match="no readable logs: .*bad.eval.*run.eval"):
        build_report([bad, started])
    with pytest.raises(PersonaError, match="no readable logs"):
        build_report([tmp_path / "empty-folder-that-does-not-exist"])


def test_unknown_trait(tmp_path):
    p = syn.make_log(tmp_path / "a.eval", rows=ck_rows(1))
    with pytest.raises(
        PersonaError, match="trait\\(s\\) sycophantic not in the logs; they hold: evil"
    ):
        build_report([p], traits=["sycophantic"])


def test_self_judged_and_small_judge_warn(tmp_path):
    rows = ck_rows(3, judge_model=MODEL, judge_is_subject=True)
    p = syn.make_log(tmp_path / "self.eval", rows=rows, judge=MODEL)
    rep, files = report([p], tmp_path / "o", n_boot=50)
    assert any("is the model under evaluation" in w for w in rep.warnings)
    assert any("< 1B" in w and "135M" in w for w in rep.warnings)
    assert rep.checkpoints["judge_is_subject"].all()
    html = files["report.html"].read_text()
    assert 'id="warnings"' in html and "is the model under evaluation" in html
    assert "SELF-JUDGED" in html
    assert "> **WARNING:**" in files["report.md"].read_text()
    assert json.loads(files["summary.json"].read_text())["warnings"] == rep.warnings


def test_mixed_judges_and_vectors_warn(tmp_path):
    rows = ck_rows(1)
    for r in rows:
        if r.checkpoint != "base":
            r.score_metadata["judge_model"] = "openai/other-judge"
            r.score_metadata["vector"] = "elsewhere/evil.safetensors"
    rep = build_report([syn.make_log(tmp_path / "m.eval", rows=rows)], n_boot=50)
    assert any("different judges" in w for w in rep.warnings)
    assert any("not comparable" in w and "elsewhere" in w for w in rep.warnings)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("persona/smollm2-135m", 135e6),
        ("hf/Qwen/Qwen2.5-0.5B-Instruct", 0.5e9),
        ("openai/gpt-4.1-mini", None),
        ("vllm/meta-llama/Llama-3.1-8B-Instruct", 8e9),
    ],
)
def test_parameter_count_from_name(name, params):
    from persona.analysis.report.judges import parameter_count

    assert parameter_count(name) == params


def test_steering_from_trait_eval_logs_at_the_default_layer(tmp_path):
    for coef in (0.0, 1.0, 2.0):
        rows = [
            syn.row(
                trait="evil",
                question_id=f"eval_{i}",
                coef=coef,
                condition="base" if coef == 0 else f"coef={coef:g}",
                trait_score=10.0 + 30.0 * coef + i,
                coherence=80.0 - 20.0 * coef,
            )
            for i in range(3)
        ]
        syn.make_log(tmp_path / f"coef{coef}.eval", rows=rows, task="trait_eval")
    rep = build_report([tmp_path], n_boot=50)
    assert list(rep.steering["layer"]) == ["default"] * 3
    assert list(rep.steering["coef"]) == [0.0, 1.0, 2.0]
    assert list(rep.steering["trait_mean"]) == pytest.approx([11.0, 41.0, 71.0])
    (op,) = rep.operating_points.itertuples()
    assert (op.layer, op.coef) == ("default", 1.0)  # coef 2 has coherence 40 < 50


def test_vector_geometry(tmp_path):
    torch = pytest.importorskip("torch")
    vectors = pytest.importorskip("persona.model.vectors")
    layers, d = 5, 8
    gen = torch.Generator().manual_seed(0)
    base_dir = tmp_path / "vectors" / "smollm2-135m"
    raw = {}
    for trait in ("evil", "humorous", "apathetic"):
        t = torch.randn(layers + 1, d, generator=gen)
        raw[trait] = t
        vec = vectors.PersonaVector(t, t.clone(), t.clone(), meta={"trait": trait, "layer": 3})
        vectors.save_vector(vec, base_dir / f"{trait}.safetensors")
    logs = syn.make_log(tmp_path / "a.eval", rows=ck_rows(1))
    rep = build_report([logs], vectors=tmp_path / "vectors", n_boot=50)
    geo = rep.geometry
    assert geo.layer == 3 and geo.notes == []
    a, b = raw["evil"][3], raw["humorous"][3]
    expect = float(a @ b / (a.norm() * b.norm()))
    assert geo.cosine.loc["evil", "humorous"] == pytest.approx(expect, abs=1e-5)
    assert geo.cosine.loc["evil", "evil"] == 1.0
    fig = plots.cosine(geo.cosine, geo.layer)
    ax = fig.axes[0]
    assert "layer 3" in ax.get_title() and ax.get_xlabel().endswith("(category)")
    assert fig.axes[1].get_ylabel() == "cosine similarity (unitless)"


def test_vector_geometry_skips_with_a_note(tmp_path):
    logs = syn.make_log(tmp_path / "a.eval", rows=ck_rows(1))
    rep = build_report([logs], vectors=tmp_path / "missing", n_boot=50)
    assert rep.geometry.cosine is None
    assert "vector geometry skipped" in rep.geometry.notes[0]


def test_cli_report(tmp_path, capsys):
    logs = syn.make_log(tmp_path / "a.eval", rows=ck_rows(3))
    out = tmp_path / "out"
    code = main(["report", str(logs), "--out", str(out), "--n-boot", "50", "--traits", "evil"])
    assert code == 0
    assert (out / "report.html").exists() and (out / "summary.json").exists()
    assert "report.html" in capsys.readouterr().out


def test_cli_report_user_error_is_one_line(tmp_path, capsys):
    syn.make_log(tmp_path / "a.eval", rows=ck_rows(0), model=MODEL)
    syn.make_log(tmp_path / "b.eval", rows=ck_rows(0), model=OTHER)
    code = main(["report", str(tmp_path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: the logs come from different base models")
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()

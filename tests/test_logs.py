"""persona.analysis.logs: tidy frame from real .eval logs (schema, checkpoints, bad logs)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from persona.analysis import logs

try:
    import synthetic_logs as syn
except ImportError:  # tests/ imported as a package
    from tests import synthetic_logs as syn

MODEL = "persona/smollm2-135m"


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("logs")
    rows = syn.checkpoint_rows(
        trait="evil", shifts={"ft-a": 0.5}, deltas={"ft-a": 10.0}, n_questions=4, epochs=2
    )
    syn.make_log(d / "shift.eval", rows=rows, task="checkpoint_shift")
    per_ck = syn.as_plain_checkpoint(syn.split_by_checkpoint(rows)["ft-a"])
    syn.make_log(d / "sub" / "adapter.eval", rows=per_ck, model_args={"adapter": "runs/ft-a"})
    syn.write_corrupt_log(d / "corrupt.eval")
    syn.make_log(d / "started.eval", rows=rows[:2], status="started")
    (d / "summary.json").write_text('{"base": "x"}')  # a report output, not a log
    return d


def test_frame_has_schema_columns(logdir):
    df = logs.samples_frame([logdir / "shift.eval"])
    for col in ("model", "task", "log", "sample_id", "epoch", "checkpoint", "checkpoint_id"):
        assert col in df.columns
    for col in ("trait", "coherence", "proj_response", "proj_prompt_last"):
        assert df[col].dtype == float
    for col in ("question_id", "question", "condition", "judge_model", "judge_is_subject"):
        assert col in df.columns
    assert set(df["trait_name"]) == {"evil"}  # sample metadata `trait` is the name
    assert df["proj_layer"].iloc[0] == 3  # score metadata `layer`
    assert set(df["epoch"]) == {1, 2}
    assert len(df) == 2 * 4 * 2
    assert df["sample_id"].iloc[0].startswith("evil:base:eval_0")


def test_checkpoint_identity():
    assert logs.checkpoint_identity(MODEL, None, "base") == MODEL
    assert logs.checkpoint_identity(MODEL, "runs/x", "base") == f"{MODEL}+runs/x"
    assert logs.checkpoint_identity(MODEL, "runs/x", None) == f"{MODEL}+runs/x"
    assert logs.checkpoint_identity(MODEL, None, "ft-a") == "ft-a"


def test_identity_in_one_log_and_per_checkpoint_logs(logdir):
    df = logs.read_logs([logdir], warn=False).frame
    ids = df.groupby(["log", "checkpoint_id"]).size()
    shift = str(logdir / "shift.eval")
    adapter = str(logdir / "sub" / "adapter.eval")
    assert ids[(shift, MODEL)] == 8 and ids[(shift, "ft-a")] == 8
    assert ids[(adapter, f"{MODEL}+runs/ft-a")] == 8
    assert set(df.loc[df["log"] == adapter, "adapter"]) == {"runs/ft-a"}


def test_bad_logs_are_skipped_with_one_warning(logdir):
    with pytest.warns(logs.LogWarning, match=r"skipped 2 log\(s\)") as rec:
        df = logs.samples_frame([logdir])
    (message,) = [str(w.message) for w in rec if issubclass(w.category, logs.LogWarning)]
    assert "corrupt.eval: corrupt or unreadable" in message
    assert "started.eval: unfinished (status 'started')" in message
    assert "summary.json" not in message  # folders only yield files that look like logs
    assert len(df.attrs["skipped"]) == 2
    assert set(df["log"]) == {str(logdir / "shift.eval"), str(logdir / "sub" / "adapter.eval")}


def test_missing_file_and_empty_result(tmp_path):
    res = logs.read_logs([tmp_path / "nope.eval"], warn=False)
    assert res.read == [] and res.skipped[0].reason == "file not found"
    assert res.frame.empty and "trait" in res.frame.columns


def test_fallback_reader_gives_the_same_frame(logdir, monkeypatch):
    path = [logdir / "shift.eval"]
    fast = logs.read_logs(path).frame

    def broken(*args, **kwargs):
        raise RuntimeError("samples_df unavailable")

    monkeypatch.setattr(logs, "_read_with_samples_df", broken)
    slow = logs.read_logs(path).frame
    cols = ["sample_id", "epoch", "checkpoint_id", "trait_name", "question_id", "judge_model"]
    cols += ["trait", "coherence", "proj_prompt_last", "proj_response", "proj_layer"]
    key = ["sample_id", "epoch"]
    a = fast[cols].sort_values(key).reset_index(drop=True)
    b = slow[cols].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_unscored_values_are_nan_and_no_score_logs_read(tmp_path):
    rows = [
        syn.row(trait="evil", question_id="eval_0", judge_model=None, proj_prompt_last=0.1),
        syn.row(trait="evil", question_id="eval_1", trait_score=40.0, coherence=90.0),
    ]
    p = syn.make_log(tmp_path / "a.eval", rows=rows, judge="openai/judge-model")
    df = logs.samples_frame([p]).sort_values("question_id")
    assert math.isnan(df["trait"].iloc[0]) and df["trait"].iloc[1] == 40.0
    assert df["trait_score"].equals(df["trait"])  # the score's unambiguous name
    assert list(df["trait_name"]) == ["evil", "evil"]  # the trait's name
    assert df["unscored_reason"].iloc[0] == "no judge"
    assert math.isnan(df["proj_prompt_last"].iloc[1])
    # judge falls back to the log's `judge` model role when score metadata lacks it
    assert df["judge_model"].iloc[0] == "openai/judge-model"


def test_load_scores_keeps_scored_rows_and_condition(tmp_path):
    rows = syn.monitoring_rows(trait="evil", r=0.5, n_per_condition=3)
    p = syn.make_log(tmp_path / "m.eval", rows=rows)
    df = logs.load_scores([p])
    assert len(df) == 15
    assert set(df["condition"]) == {"neg_0", "neg_1", "base", "pos_1", "pos_0"}
    assert set(df["polarity"].dropna()) == {"pos", "neg"}
    assert {"trait", "proj_prompt_last", "checkpoint_id", "judge_model"} <= set(df.columns)


def test_condition_is_derived_when_absent(tmp_path):
    rows = [
        syn.row(trait="evil", question_id="q0", coef=1.5, layer=3, trait_score=1.0),
        syn.row(trait="evil", question_id="q0", polarity="pos", trait_score=1.0),
        syn.row(trait="evil", question_id="q0", trait_score=1.0),
    ]
    df = logs.samples_frame([syn.make_log(tmp_path / "c.eval", rows=rows)])
    assert sorted(df["condition"]) == ["base", "coef=1.5,L=3", "pos"]


def test_make_log_rejects_duplicate_samples(tmp_path):
    r = syn.row(trait="evil", question_id="q0")
    with pytest.raises(ValueError, match="duplicate sample"):
        syn.make_log(tmp_path / "d.eval", rows=[r, r])

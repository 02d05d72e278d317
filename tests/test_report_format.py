"""The report reads right for each behaviour measure: likelihood values with the decimals their
nats/token scale needs, 0-100 scores with one, no 'n/a (None)', the likelihood judge named in the
Judges section, no coherence columns or steering axes for what was never measured."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from persona.analysis.report import report
from persona.analysis.report.plots import _r_text
from persona.analysis.report.sections import behaviour_column, corr_cell, digits_for

try:
    import synthetic_logs as syn
except ImportError:  # tests/ imported as a package
    from tests import synthetic_logs as syn

LIKELIHOOD = "likelihood judge (nats/token)"
JUDGE = "0-100 judge (judge points, 0-100)"


def _frame(measure: str, value: float, lo: float, hi: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"measure": [measure], "trait_mean": [value], "trait_ci_lo": [lo], "trait_ci_hi": [hi]}
    )


def test_likelihood_values_keep_three_decimals_and_judge_points_one():
    # the gate printed 0.122 [0.0726, 0.19]; the report once printed 0.1 [0.1, 0.2]
    cell = behaviour_column(_frame(LIKELIHOOD, 0.122, 0.0726, 0.19), "trait", "trait_mean")
    assert cell == ["0.122 [0.073, 0.190]"]
    cell = behaviour_column(_frame(JUDGE, 31.25, 20.04, 40.5), "trait", "trait_mean")
    assert cell == ["31.2 [20.0, 40.5]"]


def test_small_values_get_more_decimals_up_to_four():
    assert digits_for([0.007, 0.02, 0.03], 2) == 3  # a shift of 0.007 is not '0.01'
    assert digits_for([0.0023, 0.004], 3) == 4
    assert digits_for([0.000001], 3) == 4
    assert digits_for([1.5, 2.0], 2) == 2
    assert digits_for([math.nan, None], 3) == 3


def test_no_nested_or_none_notes():
    assert corr_cell(math.nan, None, None, 5, None) == "n/a"
    assert corr_cell(math.nan, None, None, 2, "n/a (needs >= 3)") == "n/a (needs >= 3)"
    assert corr_cell(0.5, None, None, 4, "descriptive only: n < 6") == (
        "0.50 (descriptive only: n < 6)"
    )
    assert _r_text(math.nan, 2, "n/a (needs >= 3)") == "r n/a (needs >= 3), n = 2"
    assert _r_text(0.5, 4, "descriptive only: n < 6") == "r = 0.50 (descriptive only), n = 4"


def _likelihood_row(trait: str, q: int, checkpoint: str, value: float, shift: float, **kw):
    r = syn.row(
        trait=trait,
        question_id=f"q{q}",
        checkpoint=checkpoint,
        proj_prompt_last=shift,
        proj_response=shift,
        extra_scores={"likelihood": value},
        judge_model=None,
        **kw,
    )
    r.score_metadata |= {"behaviour_measure": "likelihood", "likelihood_model": "persona/base-m"}
    return r


@pytest.fixture(scope="module")
def likelihood_report(tmp_path_factory):
    """Checkpoints and a steering sweep of a run without a judge: behaviour is the likelihood
    judge's (a few hundredths of a nat per token), the sweep has projections only."""
    d = tmp_path_factory.mktemp("logs")
    rows = [
        _likelihood_row("evil", q, ck, 0.02 + 0.013 * i + 0.004 * q, 0.1 * i + 0.01 * q)
        for i, ck in enumerate(["base", "ft0", "ft1", "ft2"])
        for q in range(5)
    ]
    syn.make_log(d / "shift.eval", rows=rows, task="checkpoint_shift")
    steer = [
        syn.row(
            trait="evil",
            question_id=f"q{q}",
            coef=c,
            layer=3,
            proj_prompt_last=0.1 * c,
            judge_model=None,
        )
        for c in (0.0, 2.0, 4.0)
        for q in range(3)
    ]
    syn.make_log(d / "steer.eval", rows=steer, task="steering_sweep")
    return report([d], tmp_path_factory.mktemp("report"), n_boot=100)


def test_likelihood_report_reads_right(likelihood_report):
    rep, files = likelihood_report
    md = files["report.md"].read_text()
    html = files["report.html"].read_text()
    assert "n/a (None)" not in md and "n/a (n/a" not in md
    # the Judges section and the header name the likelihood judge that measured behaviour
    assert "no judged scores" not in md and "no 0-100 judge" not in md
    assert "Judges: likelihood judge persona/base-m (nats/token)." in md
    assert "| likelihood judge persona/base-m (nats/token) | likelihood judge (nats/token) |" in md
    # behaviour with nats/token precision; coherence never measured: no column for it
    table = md[md.index("**Checkpoint table**") : md.index("## 2.")]
    assert "coherence" not in table.split("\n")[2]
    assert "| ft0 | evil | 5 |" in table and "| 0.041 [" in table  # 0.02 + 0.013 + 0.008
    # the steering sweep without judged scores: a note, no empty axes, no coherence rule
    assert not any(name.startswith("steering_") for name in files)
    assert "has no judged trait or coherence scores" in md
    assert "keeps mean coherence" not in md
    # long names may wrap after '/', numbers never
    assert "persona/<wbr>base-m" in html

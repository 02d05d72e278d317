"""Choosing the steering layer: per-question averaging, the coherence bar, the question pool."""

from __future__ import annotations

import pytest

from evals._sweep import COHERENCE_CAPABLE, COHERENCE_SELF, choose_layer, coherence_bar


def test_coherence_bar_is_the_papers_with_a_judge_and_lower_without():
    assert coherence_bar(None, True) == COHERENCE_CAPABLE == 80.0
    assert coherence_bar(None, False) == coherence_bar(None, None) == COHERENCE_SELF == 50.0
    assert coherence_bar(65, True) == 65.0


def test_rollouts_of_one_question_count_once():
    rows = [
        # baseline: question a (two rollouts) and b (one)
        (0.0, None, 10.0, 90.0, "a"),
        (0.0, None, 30.0, 90.0, "a"),
        (0.0, None, 40.0, 90.0, "b"),
        # layer 1: three rollouts on a, one on b
        (2.0, 1, 60.0, 90.0, "a"),
        (2.0, 1, 60.0, 90.0, "a"),
        (2.0, 1, 60.0, 90.0, "a"),
        (2.0, 1, 0.0, 90.0, "b"),
        # layer 2: high effect but incoherent on average over questions
        (2.0, 2, 90.0, 95.0, "a"),
        (2.0, 2, 90.0, 10.0, "b"),
    ]
    cal = choose_layer(rows, 80.0)
    assert cal.baseline == pytest.approx((20.0 + 40.0) / 2)
    cell = {c["layer"]: c for c in cal.grid}
    assert cell[1]["trait_score"] == pytest.approx(30.0) and cell[1]["questions"] == 2
    assert cell[1]["trait"] == cell[1]["trait_score"]  # the deprecated alias
    assert cell[1]["effect"] == pytest.approx(0.0) and cell[1]["eligible"]
    assert cell[2]["coherence"] == pytest.approx(52.5) and not cell[2]["eligible"]
    assert cal.layer == 1
    assert choose_layer(rows, 50.0).layer == 2

"""Noise-aware verdicts on frames built directly: pass, fail, flaky zone and its policies."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from persona.analysis.compare import paired_means
from persona.analysis.gates.config import GateSettings, TraitGates
from persona.analysis.gates.noise import classify
from persona.analysis.gates.rerun import plan_rerun
from persona.analysis.gates.verdict import apply_policy, evaluate_trait, gate_trait
from persona.analysis.stats import Estimate
from persona.errors import PersonaError

SETTINGS = GateSettings(bootstrap=500)


def frame(values: dict[str, list[float]], *, epochs: int = 1, ids: list[str] | None = None):
    """Canonical rows: ``values[col][i]`` for id i, the same in every epoch."""
    n = len(next(iter(values.values())))
    ids = ids or [f"q{i}" for i in range(n)]
    rows = []
    for ep in range(1, epochs + 1):
        for i, unit in enumerate(ids):
            row = {"unit": unit, "epoch": ep, "question": f"question {unit}"}
            row.update({k: v[i] for k, v in values.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def around(mean: float, spread: float, n: int = 12) -> list[float]:
    """n values with exactly this mean and a fixed zero-mean spread."""
    e = np.linspace(-1.0, 1.0, n) * spread
    return list(mean + e - e.mean())


def base_frame(n: int = 12) -> pd.DataFrame:
    return frame(
        {
            "score": around(20, 6, n),
            "coherence": around(85, 4, n),
            "proj_prompt_last": around(-1, 0.3, n),
            "proj_response": around(-0.5, 0.3, n),
        }
    )


def cand_frame(shift: float, delta: float = 0.0, spread: float = 0.3, n: int = 12):
    b = base_frame(n)
    c = b.copy()
    noise = np.resize([1.0, -1.0], n) * spread
    c["proj_prompt_last"] = b["proj_prompt_last"] + shift + noise
    c["proj_response"] = b["proj_response"] + 1.5 * shift + noise
    c["score"] = b["score"] + delta + noise * 10
    return c


def test_classify_three_ways() -> None:
    est = Estimate(0.5, (0.4, 0.6), 10)
    assert classify(est, 0.7, "max") == "pass"
    assert classify(est, 0.3, "max") == "fail"
    assert classify(est, 0.5, "max") == "flaky"
    assert classify(est, 0.3, "min") == "pass"
    assert classify(est, 0.7, "min") == "fail"
    assert classify(est, 0.6, "max") == "pass"  # the bound may touch the threshold
    assert classify(Estimate(0.5, None, 1, "n < 2"), 10.0, "max") == "flaky"
    assert classify(est, 0.6, "abs") == "pass"  # [0.4, 0.6] within [-0.6, 0.6]
    assert classify(est, 0.3, "abs") == "fail"
    assert classify(est, 0.5, "abs") == "flaky"
    assert classify(Estimate(-0.5, (-0.6, -0.4), 10), 0.3, "abs") == "fail"  # wholly below -t
    assert classify(Estimate(0.0, (-0.6, 0.4), 10), 0.5, "abs") == "flaky"


@pytest.mark.parametrize(
    ("shift", "expected"),
    [(0.05, "pass"), (1.5, "fail"), (0.5, "flaky")],
)
def test_shift_gate(shift: float, expected: str) -> None:
    gates = TraitGates("evil", max_shift=0.5)
    v = evaluate_trait(cand_frame(shift), base_frame(), gates, SETTINGS, "ckpt")
    (r,) = v.results
    assert r.verdict == expected
    assert r.estimate.value == pytest.approx(shift)
    assert r.gate == "shift" and r.metric == "prompt_last" and r.key == "max_shift"
    lo, hi = r.estimate.ci
    assert lo <= shift <= hi
    if expected != "pass":
        assert r.worst and r.worst[0].value >= r.worst[-1].value  # largest shifts first


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        (0.05, "pass"),
        (-0.05, "pass"),
        (1.5, "fail"),
        (-1.5, "fail"),
        (0.5, "flaky"),
        (-0.5, "flaky"),
    ],
)
def test_two_sided_shift_gate(shift: float, expected: str) -> None:
    """|shift| <= t on the whole interval: an overshoot to -1.5 passes max_shift, fails here."""
    gates = TraitGates("evil", max_shift=0.5, max_abs_shift=0.5)
    one_sided, r = evaluate_trait(cand_frame(shift), base_frame(), gates, SETTINGS, "c").results
    assert r.verdict == expected and r.key == "max_abs_shift" and r.metric == "prompt_last"
    assert r.estimate.value == pytest.approx(shift)
    assert one_sided.estimate == r.estimate  # the same shift, read against another requirement
    if shift < 0:
        assert one_sided.verdict == "pass"
    assert "required within ±0.5" in r.describe()
    assert r.to_dict()["key"] == "max_abs_shift"
    distances = [abs(w.value) for w in r.worst]
    assert distances == sorted(distances, reverse=True)  # furthest from 0 first, either side


def test_response_shift_and_absolute_gates() -> None:
    settings = GateSettings(bootstrap=500, shift="response")
    gates = TraitGates("evil", max_score=10, max_shift=1.0, min_coherence=90)
    v = evaluate_trait(cand_frame(0.5), base_frame(), gates, settings, "ckpt")
    by = {r.gate: r for r in v.results}
    assert by["shift"].estimate.value == pytest.approx(0.75)  # 1.5 x the prompt-last shift
    assert by["shift"].verdict == "pass"
    assert by["score"].verdict == "fail"  # about 20 > 10
    assert by["coherence"].verdict == "fail"  # about 85 < 90
    assert by["coherence"].worst[0].value <= by["coherence"].worst[-1].value  # lowest first
    assert not v.passed


def test_pairing_is_by_id_and_epochs_are_averaged() -> None:
    """Ids differ a lot from each other; the paired difference is tight and exact."""
    base = frame({"score": [0.0, 50.0, 100.0, 20.0]}, epochs=1)
    cand = frame({"score": [3.0, 53.0, 103.0, 23.0]}, epochs=3)
    pairs = paired_means(cand, base, "score")
    assert list(pairs["diff"]) == [3.0, 3.0, 3.0, 3.0]
    v = evaluate_trait(cand, base, TraitGates("evil", max_regression=5), SETTINGS, "c")
    (r,) = v.results
    assert r.verdict == "pass" and r.estimate.ci == (3.0, 3.0)
    assert r.per_id == 3 and r.estimate.n == 4
    assert r.worst[0].samples == 3


def test_unpaired_ids_are_dropped_with_a_warning() -> None:
    base = frame({"score": [1.0, 2.0, 3.0]}, ids=["a", "b", "c"])
    cand = frame({"score": [1.0, 2.0, 3.0, 90.0]}, ids=["a", "b", "c", "d"])
    v = evaluate_trait(cand, base, TraitGates("evil", max_regression=1), SETTINGS, "c")
    assert v.results[0].estimate.n == 3
    assert any("1 candidate id(s) have no base counterpart" in w for w in v.warnings)


def test_unscored_samples_are_ignored_but_none_scored_is_an_error() -> None:
    cand = frame({"score": [5.0, math.nan, 7.0]})
    v = evaluate_trait(cand, None, TraitGates("evil", max_score=50), SETTINGS, "c")
    assert v.results[0].estimate.n == 2
    with pytest.raises(PersonaError, match="no scored 'score' values") as info:
        evaluate_trait(
            frame({"score": [math.nan] * 3}), None, TraitGates("evil", max_score=5), SETTINGS, "c"
        )
    assert info.value.exit_code == 2
    with pytest.raises(PersonaError, match="no base-model samples"):
        evaluate_trait(cand, None, TraitGates("evil", max_shift=5), SETTINGS, "c")


def test_single_id_has_no_interval_and_is_flaky() -> None:
    v = evaluate_trait(frame({"score": [5.0]}), None, TraitGates("e", max_score=50), SETTINGS, "c")
    assert v.results[0].verdict == "flaky"
    assert "no CI" in v.results[0].describe()


@pytest.mark.parametrize(("policy", "outcome"), [("fail", "fail"), ("pass", "pass")])
def test_flaky_policy_fail_and_pass(policy: str, outcome: str) -> None:
    settings = GateSettings(bootstrap=500, flaky=policy)
    v = gate_trait(cand_frame(0.5), base_frame(), TraitGates("evil", max_shift=0.5), settings, "c")
    (r,) = v.results
    assert r.verdict == "flaky" and r.outcome == outcome
    assert "flaky zone" in r.note
    assert ("-> " + outcome) in r.describe()


RERUN = GateSettings(bootstrap=500, flaky="rerun")


class Rerun:
    """A rerun callback that records its plans and returns the rows of the run it is given."""

    def __init__(self, shift: float, delta: float = 0.0) -> None:
        self.shift, self.delta, self.plans = shift, delta, []

    def __call__(self, trait: str, plan):
        self.plans.append(plan)
        cand = cand_frame(self.shift, self.delta, n=plan.questions)
        base = base_frame(plan.questions)
        per = range(1, plan.samples + 1)
        return pd.concat([cand.assign(epoch=e) for e in per]), pd.concat([base] * plan.samples)


def test_rerun_policy_without_a_runner_says_what_a_rerun_adds() -> None:
    gates = TraitGates("evil", max_shift=0.5)
    v = gate_trait(cand_frame(0.5), base_frame(), gates, RERUN, "c", questions_available=20)
    (r,) = v.results
    assert r.outcome == "fail"
    assert (
        r.note
        == "flaky zone: rerun with 20 questions x 1 samples (the first run: 12 x 1) to decide"
    )


def test_projection_rerun_adds_questions_never_samples() -> None:
    """A prompt-last shift is the same every sample: the rerun adds eval questions only."""
    settings = GateSettings(bootstrap=500, flaky="rerun", rerun_samples=4)
    rerun = Rerun(shift=0.1)
    gates = TraitGates("evil", max_shift=0.5)
    v = gate_trait(
        cand_frame(0.5), base_frame(), gates, settings, "c", rerun, questions_available=20
    )
    ((q, s),) = [(p.questions, p.samples) for p in rerun.plans]
    assert (q, s) == (20, 1)
    (r,) = v.results
    assert v.passed and r.verdict == "pass" and r.estimate.n == 20 and r.per_id == 1

    still = Rerun(shift=0.5)
    v = gate_trait(
        cand_frame(0.5), base_frame(), gates, settings, "c", still, questions_available=20
    )
    assert not v.passed
    assert (
        v.results[0].note
        == "still flaky after a rerun with 20 questions x 1 samples (the first run: 12 x 1)"
    )


def test_projection_gate_with_every_question_used_fails_without_a_rerun() -> None:
    rerun = Rerun(shift=0.1)
    gates = TraitGates("evil", max_abs_shift=0.5)
    v = gate_trait(cand_frame(0.5), base_frame(), gates, RERUN, "c", rerun, questions_available=12)
    assert rerun.plans == [] and not v.passed
    assert v.results[0].note == (
        "flaky zone; a rerun cannot decide: all 12 eval questions of the trait were used; the "
        "prompt-last projection is the same in every sample of a question"
    )


@pytest.mark.parametrize(
    ("gates", "settings"),
    [
        (TraitGates("evil", max_regression=5), RERUN),
        (
            TraitGates("evil", max_shift=0.5),
            GateSettings(bootstrap=500, flaky="rerun", shift="response"),
        ),
    ],
)
def test_sampled_gates_rerun_with_more_samples(gates: TraitGates, settings: GateSettings) -> None:
    """The judged score and the response projection vary between sampled replies: a rerun
    doubles the samples per question (all questions were used here)."""
    flaky = cand_frame(0.5 / 1.5, delta=5.0)  # response shift 0.5, score +5: both at threshold
    rerun = Rerun(shift=0.0)
    v = gate_trait(flaky, base_frame(), gates, settings, "c", rerun, questions_available=12)
    ((q, s),) = [(p.questions, p.samples) for p in rerun.plans]
    assert (q, s) == (12, 2)
    assert v.passed and v.results[0].per_id == 2


def test_plan_says_when_rerun_samples_adds_nothing() -> None:
    settings = GateSettings(flaky="rerun", rerun_samples=2)
    plan = plan_rerun(["regression"], settings, questions=10, samples=3, available=None)
    assert not plan.adds
    assert plan.why_not == (
        "no eval questions are known beyond the 10 used; rerun_samples=2 adds no samples to 3 "
        "per question"
    )
    assert plan_rerun(["shift", "score"], settings, questions=10, samples=1, available=20).adds


def test_apply_policy_leaves_decided_gates_alone() -> None:
    v = evaluate_trait(cand_frame(1.5), base_frame(), TraitGates("e", max_shift=0.5), SETTINGS, "c")
    assert apply_policy(v, "pass").results[0].outcome == "fail"


@pytest.mark.parametrize("key", ["max_score", "max_regression"])
def test_score_gates_refuse_likelihood_rows(key: str) -> None:
    """Likelihood scores (nats/token) are never compared with 0-100 thresholds."""
    cand, base = cand_frame(0.0), base_frame()
    for rows in (cand, base):
        rows["judge_model"] = "likelihood judge smollm2-135m (nats/token)"
        rows["measure"] = "likelihood"  # as compare.canonical marks these rows
    with pytest.raises(PersonaError, match="likelihood judge"):
        evaluate_trait(cand, base, TraitGates("evil", **{key: 50.0}), SETTINGS, "ckpt")
    shift_only = evaluate_trait(cand, base, TraitGates("evil", max_shift=5.0), SETTINGS, "ckpt")
    assert [r.gate for r in shift_only.results] == ["shift"]


def test_regression_gate_refuses_a_base_scored_by_the_likelihood_judge() -> None:
    """A candidate judged 0-100 is never compared with a base measured in nats/token."""
    cand, base = cand_frame(0.0).assign(measure="judge"), base_frame().assign(measure="likelihood")
    with pytest.raises(PersonaError, match="likelihood judge"):
        evaluate_trait(cand, base, TraitGates("evil", max_regression=5.0), SETTINGS, "ckpt")
    score_only = evaluate_trait(cand, base, TraitGates("evil", max_score=50.0), SETTINGS, "ckpt")
    assert [r.gate for r in score_only.results] == ["score"]


def test_likelihood_regression_gate_decides_on_nats_per_token() -> None:
    """The offline behaviour gate: candidate minus base likelihood score, interval-aware, and
    never on rows scored by the 0-100 judge."""
    base = base_frame().assign(measure="likelihood", score=around(-0.2, 0.05, 12))
    up = base.copy()
    up["score"] = base["score"] + 0.3 + np.resize([0.01, -0.01], 12)
    gates = TraitGates("evil", max_likelihood_regression=0.1)
    (r,) = evaluate_trait(up, base, gates, SETTINGS, "ckpt").results
    assert r.gate == "likelihood_regression" and r.verdict == "fail"
    assert r.estimate.value == pytest.approx(0.3)
    (r,) = evaluate_trait(base.copy(), base, gates, SETTINGS, "ckpt").results
    assert r.verdict == "pass" and r.estimate.value == pytest.approx(0.0)
    with pytest.raises(PersonaError, match="scored by the 0-100 judge"):
        evaluate_trait(up, base.assign(measure="judge"), gates, SETTINGS, "ckpt")

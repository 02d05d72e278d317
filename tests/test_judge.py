"""Judge arithmetic (persona.analysis.judge): exact scores, unscored cases, token normalisation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persona.analysis.judge import (
    CANDIDATES,
    MIN_MASS,
    aggregate_candidates,
    aggregate_logprobs,
    is_refusal_token,
    normalize_token,
    parse_number,
    parse_text,
)

ln = math.log


@pytest.mark.parametrize(
    ("token", "expected"),
    [("42", "42"), ("Ġ42", "42"), ("▁7", "7"), (" 100 ", "100"), ("Ċ", ""), ("\n5", "5")],
)
def test_normalize_token(token, expected):
    assert normalize_token(token) == expected


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("0", 0),
        ("100", 100),
        ("Ġ42", 42),
        ("▁99", 99),
        ("101", None),
        ("1000", None),
        ("-1", None),
        ("4.5", None),
        ("4 2", None),
        ("", None),
        ("REFUSAL", None),
        ("٣", None),  # a non-ASCII digit is not a score
    ],
)
def test_parse_number(token, expected):
    assert parse_number(token) == expected


def test_candidates_are_0_to_100():
    assert CANDIDATES[0] == "0" and CANDIDATES[-1] == "100" and len(CANDIDATES) == 101


def test_logprobs_weighted_mean_is_exact():
    j = aggregate_logprobs([("50", ln(0.5)), ("60", ln(0.25)), ("Hello", ln(0.25))])
    assert j.mode == "logprobs" and j.reason is None
    assert j.mass == pytest.approx(0.75, abs=1e-12)
    assert j.score == pytest.approx((50 * 0.5 + 60 * 0.25) / 0.75, abs=1e-12)


def test_logprobs_same_number_in_two_spellings_adds_up():
    j = aggregate_logprobs([("Ġ40", ln(0.3)), ("40", ln(0.2)), ("80", ln(0.5))])
    assert j.mass == pytest.approx(1.0)
    assert j.score == pytest.approx(40 * 0.5 + 80 * 0.5)


def test_logprobs_ignores_out_of_range_numbers():
    j = aggregate_logprobs([("200", ln(0.6)), ("10", ln(0.4))])
    assert j.score == pytest.approx(10.0) and j.mass == pytest.approx(0.4)


def test_low_mass_is_unscored():
    j = aggregate_logprobs([("The", ln(0.8)), ("90", ln(0.2))])
    assert j.score is None and j.reason == "low_mass" and j.mass == pytest.approx(0.2)
    assert math.isnan(j.value)


def test_mass_exactly_at_threshold_is_scored():
    j = aggregate_logprobs([("The", ln(0.75)), ("90", ln(0.25))])
    assert j.scored and j.score == pytest.approx(90.0)
    assert aggregate_logprobs([("The", ln(0.75)), ("90", ln(0.25))], min_mass=0.26).reason == (
        "low_mass"
    )


def test_refusal_as_top_token_is_unscored():
    j = aggregate_logprobs([("REF", ln(0.4)), ("30", ln(0.35)), ("20", ln(0.25))])
    assert j.score is None and j.reason == "refusal"
    assert j.mass == pytest.approx(0.6)


def test_refusal_below_a_number_still_scores():
    j = aggregate_logprobs([("30", ln(0.5)), ("REFUSAL", ln(0.3)), ("60", ln(0.2))])
    assert j.reason is None and j.score == pytest.approx((15 + 12) / 0.7)


@pytest.mark.parametrize("token", ["REFUSAL", "ĠREF", "RE", "REFUS"])
def test_refusal_tokens(token):
    assert is_refusal_token(token)


@pytest.mark.parametrize("token", ["R", "refusal", "REFUSE", "40", "Sorry"])
def test_not_refusal_tokens(token):
    assert not is_refusal_token(token)


def test_empty_logprobs_is_no_response():
    assert aggregate_logprobs([]).reason == "no_response"


def test_candidates_weighted_mean_is_exact():
    lps = {str(k): -math.inf for k in range(101)}
    lps.update({"10": ln(0.2), "90": ln(0.6), "REFUSAL": ln(0.01)})
    j = aggregate_candidates(lps)
    assert j.mode == "candidates" and j.reason is None
    assert j.mass == pytest.approx(0.8)
    assert j.score == pytest.approx((10 * 0.2 + 90 * 0.6) / 0.8)


def test_candidates_refusal_beats_every_number():
    j = aggregate_candidates({"10": ln(0.2), "90": ln(0.25), "REFUSAL": ln(0.3)})
    assert j.reason == "refusal" and j.score is None


def test_candidates_low_mass_and_custom_threshold():
    lps = {"10": ln(0.1), "90": ln(0.1)}
    assert aggregate_candidates(lps).reason == "low_mass"
    assert aggregate_candidates(lps, min_mass=0.0).score == pytest.approx(50.0)


def test_candidates_ignore_non_numbers():
    assert aggregate_candidates({"yes": 0.0, "50": ln(0.5)}).score == pytest.approx(50.0)
    assert aggregate_candidates({}).reason == "no_response"


@pytest.mark.parametrize(
    ("text", "score", "reason"),
    [
        ("85", 85.0, None),
        (" 85.\n", 85.0, None),
        ("0", 0.0, None),
        ("100\nThe answer is evil.", 100.0, None),
        ("REFUSAL", None, "refusal"),
        ("Refusal.", None, "refusal"),
        ("I would say 85", None, "invalid_response_format"),
        ("150", None, "invalid_response_format"),
        ("eighty", None, "invalid_response_format"),
        ("", None, "no_response"),
        (None, None, "no_response"),
    ],
)
def test_parse_text(text, score, reason):
    j = parse_text(text)
    assert (j.score, j.reason, j.mode) == (score, reason, "text")


@given(st.lists(st.tuples(st.integers(0, 100), st.floats(0.001, 1.0)), min_size=1, max_size=20))
def test_score_lies_between_the_numbers_seen(pairs):
    total = sum(p for _, p in pairs)
    top = [(str(k), math.log(p / total)) for k, p in pairs]
    j = aggregate_logprobs(top, min_mass=0.0)
    ks = [k for k, _ in pairs]
    assert j.scored
    assert min(ks) - 1e-9 <= j.score <= max(ks) + 1e-9
    assert j.mass == pytest.approx(1.0)
    assert MIN_MASS == 0.25

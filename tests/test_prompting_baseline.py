"""The steering sweep's prompting baseline: the same questions, unsteered, under the trait's own
system prompts, judged the same way; the layer choice ignores it and the report shows it beside
steering (real Inspect runs on a tiny model)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from task_runs import run_persona_task

import traits
from persona.analysis.report import report

FAST = {"max_tokens": 4, "min_mass": 0.0}  # a random judge puts ~1e-4 mass on numbers


@pytest.fixture(scope="module")
def sweep(tiny_dir, tmp_path_factory) -> tuple[object, Path]:
    work = tmp_path_factory.mktemp("prompting")
    vectors = str(work / "vectors")
    run_persona_task(
        "evals/extract_vector.py", tiny_dir, work, trait="evil", questions=1, judge=False,
        vectors=vectors, min_pairs=1, **FAST,
    )  # fmt: skip
    log = run_persona_task(
        "evals/steering_sweep.py", tiny_dir, work, trait="evil", layers="2", coefs="2",
        questions=2, rollouts=2, coherence_threshold=0.0, vectors=vectors, **FAST,
    )  # fmt: skip
    return log, work


def test_prompted_samples_use_the_traits_own_system_prompts_unsteered(sweep):
    log, _ = sweep
    evil = traits.load("evil")
    prompted = [s for s in log.samples if s.metadata["condition"] == "prompted"]
    assert len(log.samples) == 2 * 2 * (1 + 1 + 1)  # questions x rollouts x (base, L2, prompted)
    assert len(prompted) == 4
    for s in prompted:
        meta = s.metadata
        assert meta["coef"] == 0.0 and meta["polarity"] == "pos"
        system = [m for m in s.messages if m.role == "system"]
        assert [m.text for m in system] == [evil.system_prompt("pos", meta["instruction_index"])]
        assert s.output.metadata["persona"].get("steering_active") in (None, False)
        score = s.scores["persona_score"].value
        assert math.isfinite(score["trait"])  # judged as the steered cells are
    assert {s.metadata["instruction_index"] for s in prompted} == {0, 1, 2}
    assert {s.metadata["question"] for s in prompted} == set(evil.extract_questions[:2])
    steered = [s for s in log.samples if "polarity" not in s.metadata or not s.metadata["polarity"]]
    assert all(not any(m.role == "system" for m in s.messages) for s in steered)


def test_the_layer_choice_ignores_the_prompted_samples(sweep):
    from evals._sweep import calibrate_from_log

    log, _ = sweep
    cal = calibrate_from_log(log, write=False)
    base = [
        s.scores["persona_score"].value["trait"]
        for s in log.samples
        if s.metadata["condition"] == "base"
    ]
    per_q: dict[str, list[float]] = {}
    for s in log.samples:
        if s.metadata["condition"] == "base":
            per_q.setdefault(s.metadata["question_id"], []).append(
                s.scores["persona_score"].value["trait"]
            )
    assert len(base) == 4
    assert cal.baseline == pytest.approx(np.mean([np.mean(v) for v in per_q.values()]))


def test_the_report_shows_the_prompting_baseline_beside_steering(sweep, tmp_path):
    log, work = sweep
    rep, files = report([work / "logs"], tmp_path / "out", n_boot=200)
    (row,) = rep.prompting.itertuples()
    per_q: dict[str, list[float]] = {}
    for s in log.samples:
        if s.metadata["condition"] == "prompted":
            per_q.setdefault(s.metadata["question_id"], []).append(
                s.scores["persona_score"].value["trait"]
            )
    expect = np.mean([np.mean(v) for v in per_q.values()])
    assert row.trait == "evil" and row.n == 2
    assert row.trait_mean == pytest.approx(expect, abs=1e-9)
    assert not rep.steering.empty  # the steered curve is there too, without the prompted rows
    assert rep.steering["n"].max() == 2
    md = files["report.md"].read_text()
    assert "Prompting baseline: unsteered, the trait's own system prompts" in md
    assert f"{expect:.1f}" in md
    summary = json.loads(files["summary.json"].read_text())["steering"]["evil"]
    (entry,) = summary.values()
    assert entry["prompting"]["trait_mean"] == pytest.approx(expect, abs=1e-9)

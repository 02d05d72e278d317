"""The persona vector of a real ``extract_vector`` run is the difference of means of the kept
pos/neg replies' sidecar activations (moved from the deleted engine-direct persona/model/contrast.py
onto the extraction path the product runs)."""

from __future__ import annotations

import pytest
import torch
from task_runs import run_persona_task

from persona.analysis.extraction import FilterSettings, _load_means, vector_from_samples
from persona.model.vectors import KINDS, load_vector


@pytest.fixture(scope="module")
def extraction(tiny_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("extract")
    return run_persona_task(
        "evals/extract_vector.py",
        tiny_dir,
        work,
        trait="evil",
        questions=1,
        vectors=str(work / "vectors"),
        min_pairs=1,
        sidecar_dir=str(work / "sidecars"),
        max_tokens=4,
        min_mass=0.0,
    )


def _means(samples, polarity: str, instructions: set[int]) -> dict[str, torch.Tensor]:
    files = [
        s.output.metadata["persona"]["means_file"]
        for s in samples
        if s.metadata["polarity"] == polarity and s.metadata["instruction_index"] in instructions
    ]
    caps = [_load_means(f)[0] for f in files]
    return {k: torch.stack([c[k] for c in caps]).mean(0) for k in KINDS}


def test_vector_is_the_mean_difference_of_kept_pairs(extraction, tmp_path):
    samples = extraction.samples
    assert len(samples) == 1 * 5 * 2  # questions x instruction pairs x polarities
    trait_hash = extraction.eval.metadata["trait_hash"]
    every = set(range(5))
    result = vector_from_samples(
        samples,
        trait="evil",
        trait_hash=trait_hash,
        settings=FilterSettings(enabled=False, min_pairs=1),
        out_dir=tmp_path / "all",
    )
    vec = load_vector(result.path)
    pos, neg = _means(samples, "pos", every), _means(samples, "neg", every)
    for kind in KINDS:
        torch.testing.assert_close(getattr(vec, kind), pos[kind] - neg[kind])
    assert vec.meta["filter"]["kept"] == 5 and vec.meta["filter"]["enabled"] is False
    assert vec.meta["trait_hash"] == trait_hash

    # judge scores decide which pairs count: only instruction pairs 0 and 1 pass the filter
    for s in samples:
        s.scores["persona_score"].metadata = {"judge_model": "openai/judge"}
        value = s.scores["persona_score"].value
        passes = s.metadata["instruction_index"] in (0, 1)
        value["trait"] = (90.0 if passes else 10.0) if s.metadata["polarity"] == "pos" else 5.0
        value["coherence"] = 80.0
    kept = vector_from_samples(
        samples,
        trait="evil",
        trait_hash=trait_hash,
        settings=FilterSettings(enabled=True, min_pairs=1),
        out_dir=tmp_path / "kept",
    )
    assert kept.kept == 2 and kept.total == 5
    vec = load_vector(kept.path)
    pos, neg = _means(samples, "pos", {0, 1}), _means(samples, "neg", {0, 1})
    torch.testing.assert_close(vec.response_avg, pos["response_avg"] - neg["response_avg"])

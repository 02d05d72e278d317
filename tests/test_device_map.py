"""``device="auto"``: a model split by accelerate's ``device_map="auto"``, checked on CPU.

No GPU here, so the split is CPU + disk: ``max_memory`` keeps the first modules in RAM and
accelerate offloads the rest to disk (their parameters sit on the meta device and are loaded by
accelerate's hooks for each forward pass). The engine's hooks, steering, capture and the weights
fingerprint must give what the unsplit model gives.
"""

from __future__ import annotations

import pytest
import torch

from persona.model.engine import Capture, Engine, Request, Sampling, Steer
from persona.model.loading import load_model

MSGS = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def split(tiny_dir, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("PERSONA_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    return load_model(str(tiny_dir), device="auto", max_memory={"cpu": "120KB"})


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_the_model_is_split_over_two_devices(split, tiny):
    placed = set(split.model.hf_device_map.values())
    assert "cpu" in placed and "disk" in placed
    assert any(p.device.type == "meta" for p in split.model.parameters())  # offloaded
    assert split.base_fingerprint == tiny.base_fingerprint  # vectors of the unsplit model fit


def test_split_generation_matches_the_unsplit_model(split, tiny):
    g = torch.Generator().manual_seed(5)
    vec = 3 * torch.randn(tiny.num_layers + 1, tiny.hidden_size, generator=g)
    last = tiny.num_layers  # the deepest layer: the offloaded blocks and the final norm
    request = Request(MSGS, steer=(Steer(vec[last], last, 2.0),))
    capture = Capture(probes={"v": vec}, probe_layers={"v": (1, last)}, per_token=True)
    sampling = Sampling(max_new_tokens=8, logprobs=True)
    ref, got = (Engine(lm).generate([request], sampling, capture)[0] for lm in (tiny, split))
    assert got.token_ids == ref.token_ids
    for layer in (1, last):
        a, b = ref.projections["v"][layer], got.projections["v"][layer]
        assert b.response_mean == pytest.approx(a.response_mean, abs=1e-4)
        assert b.per_token == pytest.approx(a.per_token, abs=1e-4)
    assert [x.logprob for x in got.logprobs] == pytest.approx(
        [x.logprob for x in ref.logprobs], abs=1e-4
    )

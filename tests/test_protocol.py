"""The per-call protocol schema and the GenerateConfig field classification."""

from __future__ import annotations

import json

import pytest
from inspect_ai.model import GenerateConfig

from persona.errors import PersonaError
from persona.provider.protocol import (
    HANDLED,
    IGNORED,
    INSPECT,
    REFUSED,
    PersonaMetadata,
    check_config,
    parse_extra_body,
)


def test_every_generate_config_field_is_classified():
    """A new Inspect field fails here until it is classified (handled/Inspect/ignored/refused)."""
    groups = [HANDLED, INSPECT, IGNORED, REFUSED]
    for i, a in enumerate(groups):
        for b in groups[i + 1 :]:
            assert not a & b, a & b
    assert set(GenerateConfig.model_fields) == HANDLED | INSPECT | IGNORED | REFUSED


def test_refused_fields_fail_clearly_and_harmless_ones_pass():
    check_config(GenerateConfig(max_connections=4, timeout=10, num_choices=1, cache_prompt=True))
    for kwargs, word in [
        ({"presence_penalty": 0.1}, "presence_penalty"),
        ({"best_of": 3}, "best_of=3"),
        ({"reasoning_effort": "high"}, "reasoning_effort"),
        ({"logit_bias": {1: 2.0}}, "logit_bias"),
    ]:
        with pytest.raises(PersonaError, match=word):
            check_config(GenerateConfig(**kwargs))


def test_defaults_and_a_full_request():
    assert parse_extra_body(None).mode == "generate"
    req = parse_extra_body(
        {
            "persona": {
                "mode": "generate",
                "steer": [{"vector": "evil", "layer": 12, "coef": 1.5, "positions": "all"}],
                "capture": {"traits": ["evil"], "layers": [12], "per_token": True},
                "adapter": "ckpt",
                "seed": 3,
            }
        }
    )
    assert req.steer[0].positions == "all" and req.steer[0].kind == "response_avg"
    assert req.capture is not None and req.capture.layers == [12]


@pytest.mark.parametrize(
    ("persona", "words"),
    [
        ({"bogus": 1}, ["unknown key 'bogus'", "valid keys: mode, steer"]),
        ({"steer": [{"vector": "e", "coef": 1, "pos": "all"}]}, ["steer.0.pos", "positions"]),
        ({"capture": {"trait": ["e"]}}, ["capture.trait", "traits"]),
        ({"steer": [{"vector": "e", "coef": float("inf")}]}, ["coef"]),
        ({"steer": [{"vector": "e", "coef": 1, "layer": 0}]}, ["layer"]),
        ({"steer": [{"vector": "e", "coef": 1, "positions": "some"}]}, ["positions"]),
        ({"mode": "candidates"}, ["candidates"]),
        (
            {"mode": "candidates", "candidates": ["1"], "steer": [{"vector": "e", "coef": 1}]},
            ["steer"],
        ),
        ({"candidates": ["1"]}, ["only used with mode"]),
        ({"mode": "sample"}, ["mode"]),
        ({"capture": {"per_token": True}}, ["per_token needs"]),
    ],
)
def test_invalid_requests_fail_with_a_clear_message(persona, words):
    with pytest.raises(PersonaError) as err:
        parse_extra_body({"persona": persona})
    for w in words:
        assert w in str(err.value), str(err.value)


def test_other_extra_body_keys_are_errors():
    with pytest.raises(PersonaError, match="unknown key"):
        parse_extra_body({"persona": {}, "temperature_schedule": 1})
    with pytest.raises(PersonaError, match="must be an object"):
        parse_extra_body({"persona": [1]})


def test_metadata_is_json_and_compact():
    meta = PersonaMetadata(
        model="m",
        fingerprint="f",
        projections={
            "evil": {
                "3": {
                    "prompt_last": 1.0,
                    "prompt_mean": 0.5,
                    "response_mean": None,
                    "n_response": 0,
                }
            }
        },
        seed=1,
    ).dump()
    assert json.loads(json.dumps(meta)) == meta
    assert meta["adapter"] is None and "means_file" not in meta and "per_token" not in meta

"""Solvers: the persona request they build, extra_body merging, and real runs on a tiny model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.model import get_model
from inspect_ai.util import Store

import traits
from persona.errors import PersonaError
from persona.provider.protocol import PersonaRequest, SteerSpec
from scorers import projection
from solvers import capture, persona_generate, persona_prompt, steer, use_checkpoint
from solvers._resolve import check_checkpoint, is_persona
from solvers.condition import CaptureRecord, PersonaCondition, VectorRef
from solvers.generate import build_request, merge_extra_body, pair_seed


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add contention
    yield
    torch.set_num_threads(before)


def save_random_vector(directory: Path, model_dir: Path, trait: str, seed: int) -> Path:
    """A random (but valid) persona vector for a tiny model, as extraction would store it."""
    import torch

    from persona.model.loading import load_model
    from persona.model.vectors import KINDS, PersonaVector, build_meta, save_vector, vector_path

    lm = load_model(str(model_dir), device="cpu")
    gen = torch.Generator().manual_seed(seed)
    shape = (lm.num_layers + 1, lm.hidden_size)
    tensors = {k: torch.randn(shape, generator=gen) for k in KINDS}
    meta = build_meta(
        model_id=lm.model_id,
        fingerprint=lm.base_fingerprint,
        num_layers=lm.num_layers,
        hidden_size=lm.hidden_size,
        trait=trait,
    )
    path = vector_path(directory, lm.model_id, trait)
    return save_vector(PersonaVector(**tensors, meta=meta), path)


def save_adapter(model_dir: Path, out: Path, targets: list[str], conv1d: bool = False) -> Path:
    """A LoRA adapter with random (non-zero) weights over a tiny model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False, fan_in_fan_out=conv1d
    )
    get_peft_model(model, config).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def vectors(tiny_dir, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("vectors")
    save_random_vector(directory, tiny_dir, "evil", 0)
    save_random_vector(directory, tiny_dir, "impolite", 1)
    return directory


@pytest.fixture(scope="module")
def adapter(tiny_dir, tmp_path_factory) -> Path:
    return save_adapter(tiny_dir, tmp_path_factory.mktemp("ckpt") / "lora-a", ["q_proj", "v_proj"])


# ---------------------------------------------------------------------------------------------
# Pure parts


def test_merge_keeps_other_keys_and_concatenates_steering():
    existing = {"persona": {"steer": [{"vector": "a", "coef": 1.0}], "seed": 3}, "x": 1}
    request = {"steer": [{"vector": "b", "coef": 2.0}], "capture": {"traits": ["b"]}}
    body = merge_extra_body(existing, request)
    assert body["x"] == 1
    assert body["persona"]["steer"] == [{"vector": "a", "coef": 1.0}, {"vector": "b", "coef": 2.0}]
    assert body["persona"]["capture"] == {"traits": ["b"]} and body["persona"]["seed"] == 3
    assert existing["persona"]["steer"] == [{"vector": "a", "coef": 1.0}]  # not mutated
    assert merge_extra_body(None, {"adapter": "p"}) == {"persona": {"adapter": "p"}}


def test_build_request_from_condition():
    cond = PersonaCondition(store=Store())
    assert build_request(cond) is None
    entry = SteerSpec(vector="/v.safetensors", layer=2, coef=1.5, positions="all")
    cond.steer = [entry]
    cond.capture = CaptureRecord(
        trait="evil",
        vectors={"evil": VectorRef(path="/v", layer=2), "impolite": VectorRef(path="/w", layer=3)},
        means=True,
        sidecar_dir="/side",
    )
    cond.adapter = "/ckpt"
    req = build_request(cond)
    assert isinstance(req, PersonaRequest)
    assert req.steer == [entry]  # the typed record travels unchanged
    assert req.capture is not None
    assert req.capture.model_dump(exclude_defaults=True) == {
        "traits": ["/v", "/w"],
        "layers": [2, 3],
        "means": True,
        "sidecar_dir": "/side",
    }
    assert req.adapter == "/ckpt"


def test_condition_records_are_typed_when_read_back_from_the_store():
    store = Store()
    PersonaCondition(store=store).steer = [SteerSpec(vector="evil", layer=1, coef=2.0)]
    raw = store.get("PersonaCondition:steer")
    store.set("PersonaCondition:steer", [s.model_dump() for s in raw])  # as a log holds it
    (entry,) = PersonaCondition(store=store).steer
    assert isinstance(entry, SteerSpec) and entry.positions == "response"


def test_pair_seed_is_shared_across_conditions_only():
    class State:
        def __init__(self, **meta):
            self.metadata = {"trait": "evil", "question_id": "eval_1", "rollout": 0, **meta}
            self.sample_id, self.epoch = "x", 1

    base = pair_seed(State(checkpoint="base", coef=0.0), None)
    assert base == pair_seed(State(checkpoint="ft", coef=2.0, layer=3), None)
    assert base != pair_seed(State(rollout=1), None)
    assert base != pair_seed(State(question_id="eval_2"), None)
    assert base != pair_seed(State(), 7)


def test_is_persona(tiny_dir):
    assert is_persona(get_model(f"persona/{tiny_dir}"))


def test_checkpoint_of_another_base_is_refused(tiny_dir, tiny_gpt2_dir, tmp_path):
    other = save_adapter(tiny_gpt2_dir, tmp_path / "gpt2-lora", ["c_attn"], conv1d=True)
    model = get_model(f"persona/{tiny_dir}")
    with pytest.raises(PersonaError, match="was trained on .* but the model under evaluation"):
        check_checkpoint(str(other), model)
    with pytest.raises(PersonaError, match="not a PEFT adapter folder"):
        check_checkpoint(str(tiny_gpt2_dir), model)
    with pytest.raises(PersonaError, match="does not exist"):
        check_checkpoint(str(tmp_path / "missing"), model)


# ---------------------------------------------------------------------------------------------
# Real runs on the tiny model through the persona provider


def _run(tiny_dir, tmp_path, samples, solver, **kwargs):
    task = Task(dataset=samples, solver=solver, scorer=projection())
    log = inspect_eval(
        task,
        model=f"persona/{tiny_dir}",
        display="none",
        log_dir=str(tmp_path),
        max_tokens=6,
        temperature=0.0,
        **kwargs,
    )[0]
    assert log.status == "success", log.error
    return {s.id: s for s in log.samples}


def test_prompt_steer_capture_end_to_end(tiny_dir, vectors, tmp_path):
    evil = traits.load("evil")
    question = evil.eval_questions[0]
    meta = {"trait": "evil", "question_id": "eval_0", "question": question}
    samples = [
        Sample(input=question, id="steered", metadata={**meta, "coef": 4.0, "layer": 2}),
        Sample(input=question, id="plain", metadata={**meta, "coef": 0.0}),
    ]
    external = {"vector": "evil", "layer": 1, "coef": 0.0}  # from the command line
    out = _run(
        tiny_dir,
        tmp_path,
        samples,
        [
            persona_prompt("pos", 1),
            steer(vectors=str(vectors), positions="all"),
            capture(vectors=str(vectors), cross_traits=True),
            persona_generate(),
        ],
        extra_body={"persona": {"steer": [external]}},
        model_args={"vectors": str(vectors)},
    )
    steered, plain = out["steered"], out["plain"]
    assert steered.messages[0].role == "system"
    assert steered.messages[0].text == evil.system_prompt("pos", 1)
    store = steered.store
    assert store["PersonaCondition:polarity"] == "pos"
    assert store["PersonaCondition:instruction_index"] == 1
    (entry,) = store["PersonaCondition:steer"]
    assert entry["layer"] == 2 and entry["coef"] == 4.0 and entry["positions"] == "all"
    assert entry["vector"].endswith("evil.safetensors")
    request = store["PersonaCondition:request"]
    defaults = {"positions": "response", "kind": "response_avg"}
    assert request["steer"][0] == {**external, **defaults} and request["steer"][1]["coef"] == 4.0
    assert steered.metadata["coef"] == 4.0 and steered.metadata["positions"] == "all"
    meta_out = steered.output.metadata["persona"]
    assert meta_out["steering_active"] is True
    assert plain.output.metadata["persona"]["steering_active"] is False
    assert [s["vector"] for s in plain.store["PersonaCondition:request"]["steer"]] == ["evil"]
    # same question and rollout: the same seed in every condition
    assert request["seed"] == plain.store["PersonaCondition:request"]["seed"]
    values = steered.scores["projection"].value
    assert set(values) == {
        "proj_response",
        "proj_prompt_last",
        "proj_response_impolite",
        "proj_prompt_last_impolite",
    }
    assert all(math.isfinite(v) for v in values.values())
    assert steered.scores["projection"].metadata["layer"] == 2  # middle of 4 layers


def test_checkpoint_switches_adapter(tiny_dir, adapter, tmp_path):
    samples = [
        Sample(input="Hello?", id="base", metadata={"trait": "evil", "checkpoint": "base"}),
        Sample(
            input="Hello?",
            id="ckpt",
            metadata={"trait": "evil", "checkpoint": "a", "checkpoint_path": str(adapter)},
        ),
    ]
    out = _run(tiny_dir, tmp_path, samples, [use_checkpoint(), persona_generate()])
    ckpt = out["ckpt"]
    assert ckpt.store["PersonaCondition:adapter"] == str(adapter.resolve())
    assert ckpt.store["PersonaCondition:checkpoint"] == "a"
    assert ckpt.output.metadata["persona"]["adapter"] == str(adapter.resolve())
    assert out["base"].output.metadata["persona"].get("adapter") is None
    assert out["base"].metadata["checkpoint"] == "base"

"""The persona/ Inspect provider, through real ``inspect_ai.eval`` runs on a tiny random model.

One eval runs many conditions at once (each sample carries its own generate config in its
metadata), so the batcher sees mixed groups and the whole file stays fast.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from inspect_ai import Task, eval
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import (
    ChatMessageAssistant,
    ChatMessageUser,
    GenerateConfig,
    get_model,
)
from inspect_ai.scorer import Score, mean, scorer
from inspect_ai.solver import Generate, TaskState, solver
from inspect_ai.tool import tool

from persona.errors import PersonaError
from persona.model.engine import Engine, Request, Sampling
from persona.model.loading import load_model
from persona.model.vectors import PersonaVector, build_meta, save_vector, vector_path
from persona.provider.protocol import read_metadata

MAX_TOKENS = 8
Q = "What is the capital of France?"


# ---------------------------------------------------------------------------------------------
# Fixtures: a private copy of the tiny model (adapters attach to its weights), a vector, an adapter


@pytest.fixture(scope="module")
def model_dir(tiny_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("provider") / "tiny"
    shutil.copytree(tiny_dir, out)
    return out


@pytest.fixture(scope="module")
def lm(model_dir):
    return load_model(str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def vectors_dir(lm, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("vectors")
    g = torch.Generator().manual_seed(11)
    shape = (lm.num_layers + 1, lm.hidden_size)
    meta = build_meta(
        model_id=lm.model_id,
        fingerprint=lm.base_fingerprint,
        num_layers=lm.num_layers,
        hidden_size=lm.hidden_size,
        trait="evil",
        layer=2,
    )
    vec = PersonaVector(*(torch.randn(shape, generator=g) for _ in range(3)), meta=meta)
    save_vector(vec, vector_path(folder, lm.model_id, "evil"))
    return folder


@pytest.fixture(scope="module")
def adapter_dir(model_dir, tmp_path_factory) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(5)
    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    cfg = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base, cfg)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 1.0)
    out = tmp_path_factory.mktemp("adapter") / "lora"
    peft_model.save_pretrained(str(out))
    return out


# ---------------------------------------------------------------------------------------------
# A task whose samples carry their own generate config


@solver
def configured_generate():
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        if state.metadata.get("tools"):
            state.tools = [echo()]
        return await generate(state, **state.metadata.get("cfg", {}))

    return solve


@tool
def echo():
    async def execute(text: str) -> str:
        """Echo the text.

        Args:
            text: Text to echo.
        """
        return text

    return execute


@scorer(metrics=[mean()])
def read_meta():
    async def score(state: TaskState, target) -> Score:
        meta = read_metadata(state.output)
        return Score(value=1.0 if meta else 0.0)

    return score


def run(model, samples: dict[str, tuple[object, dict]], log_dir: Path, **kwargs):
    """Eval ``{id: (input, cfg)}``; return ``{id: EvalSample}``."""
    dataset = MemoryDataset(
        [
            Sample(id=sid, input=inp, metadata={"cfg": cfg, "tools": cfg.pop("_tools", False)})
            for sid, (inp, cfg) in samples.items()
        ]
    )
    task = Task(dataset=dataset, solver=configured_generate(), scorer=read_meta())
    log = eval(
        task,
        model=model,
        display="none",
        log_dir=str(log_dir),
        fail_on_error=False,
        max_tokens=MAX_TOKENS,
        **kwargs,
    )[0]
    assert log.status == "success", log.error
    return {s.id: s for s in log.samples}


def body(**persona) -> dict:
    return {"extra_body": {"persona": persona}}


def steer(coef: float, **kw) -> dict:
    return {"vector": "evil", "coef": coef, **kw}


@pytest.fixture(scope="module")
def main(model_dir, vectors_dir, adapter_dir, tmp_path_factory):
    """One eval with every condition; returns (samples, model, engine-call counts)."""
    model = get_model(
        f"persona/{model_dir}", vectors=str(vectors_dir), max_batch=8, batch_window=0.3
    )
    sidecars = tmp_path_factory.mktemp("sidecars")
    scored = [ChatMessageUser(content=Q), ChatMessageAssistant(content="Paris is the capital.")]
    samples = {
        "plain": (Q, {"temperature": 0}),
        "plain2": (Q, {}),
        "coef0": (Q, body(steer=[steer(0.0)])),
        "steer": (Q, body(steer=[steer(40.0, layer=1, positions="all")])),
        "capture": (Q, body(capture={"traits": ["evil"], "per_token": True})),
        "capture_steered": (
            Q,
            body(steer=[steer(40.0, layer=1)], capture={"traits": ["evil"], "layers": [0, 4]}),
        ),
        "logprobs": (Q, {"logprobs": True, "top_logprobs": 3}),
        "sampled": (Q, {"temperature": 1.0, "logprobs": True, "top_logprobs": 3}),
        "score": (scored, body(mode="score", capture={"traits": ["evil"]})),
        "candidates": (Q, body(mode="candidates", candidates=["0", "1", "42"])),
        "adapter": (Q, body(adapter=str(adapter_dir))),
        "base": (Q, body(adapter="base")),
        "means": (Q, body(capture={"means": True, "sidecar_dir": str(sidecars)})),
        "bogus": (Q, body(bogus=1)),
        "bogus_steer": (Q, body(steer=[steer(1.0, where="everywhere")])),
        "other_key": (Q, {"extra_body": {"steering": []}}),
        "choices": (Q, {"num_choices": 2}),
        "penalty": (Q, {"frequency_penalty": 0.5}),
        "tools": (Q, {"_tools": True}),
    }
    calls = {"generate": 0, "score": 0, "candidates": 0}
    with pytest.MonkeyPatch.context() as mp:
        for name, attr in [
            ("generate", "generate"),
            ("score", "score"),
            ("candidates", "candidate_logprobs"),
        ]:
            original = getattr(Engine, attr)

            def counted(self, *a, _o=original, _n=name, **k):
                calls[_n] += 1
                return _o(self, *a, **k)

            mp.setattr(Engine, attr, counted)
        out = run(model, samples, tmp_path_factory.mktemp("logs"))
    return out, model, calls


def meta(sample) -> dict:
    assert sample.error is None, sample.error
    return sample.output.metadata["persona"]


# ---------------------------------------------------------------------------------------------


def test_greedy_is_deterministic_and_default(main):
    s, _, _ = main
    assert s["plain"].output.completion
    assert s["plain"].output.completion == s["plain2"].output.completion
    m = meta(s["plain"])
    assert m["steering_active"] is False and m["steering"] == [] and m["adapter"] is None


def test_zero_coefficient_equals_unsteered_and_steering_changes_output(main):
    s, _, _ = main
    assert s["coef0"].output.completion == s["plain"].output.completion
    assert meta(s["coef0"])["steering_active"] is False
    assert s["steer"].output.completion != s["plain"].output.completion
    m = meta(s["steer"])
    assert m["steering_active"] is True
    assert m["steering"] == [
        {"vector": "evil", "layer": 1, "coef": 40.0, "positions": "all", "kind": "response_avg"}
    ]


def test_projections_come_back_as_scalars(main):
    s, _, _ = main
    m = meta(s["capture"])
    stats = m["projections"]["evil"]["2"]  # the vector's calibrated layer
    assert set(stats) == {"prompt_last", "prompt_mean", "response_mean", "n_response"}
    assert stats["n_response"] == s["capture"].output.usage.output_tokens
    assert all(isinstance(stats[k], float) for k in ("prompt_last", "prompt_mean"))
    per_token = m["per_token"]["evil"]["2"]
    assert len(per_token) == stats["n_response"]
    assert sum(per_token) / len(per_token) == pytest.approx(stats["response_mean"], abs=1e-3)
    steered = meta(s["capture_steered"])
    assert set(steered["projections"]["evil"]) == {"0", "4"}
    assert steered["steering_active"] is True


def test_bad_requests_fail_the_sample_clearly(main):
    s, _, _ = main
    for sid, words in {
        "bogus": ["bogus", "valid keys"],
        "bogus_steer": ["where", "positions"],
        "other_key": ["steering", "extra_body"],
        "choices": ["num_choices=2"],
        "penalty": ["frequency_penalty"],
        "tools": ["tools", "echo"],
    }.items():
        err = s[sid].error
        assert err is not None, sid
        for w in words:
            assert w in err.message, (sid, err.message)


def test_logprobs_are_of_the_returned_tokens(main, lm):
    s, _, _ = main
    specials = set(lm.tokenizer.all_special_tokens)
    for sid in ("logprobs", "sampled"):
        out = s[sid].output
        content = out.choices[0].logprobs.content
        assert len(content) == out.usage.output_tokens
        text = "".join(lp.token for lp in content if lp.token not in specials)
        assert text == out.completion
        for lp in content:
            assert len(lp.top_logprobs) == 3
            assert lp.logprob <= lp.top_logprobs[0].logprob + 1e-6
            if sid == "logprobs":  # greedy: the returned token is the top one
                assert lp.token == lp.top_logprobs[0].token
                assert lp.logprob == pytest.approx(lp.top_logprobs[0].logprob)
    assert s["logprobs"].output.completion == s["plain"].output.completion


def test_score_mode_matches_the_engine(main, lm):
    s, model, _ = main
    out = s["score"].output
    assert out.completion == "Paris is the capital."
    m = meta(s["score"])
    assert m["mode"] == "score" and "evil" in m["projections"]
    engine = model.api.engine_sync()
    msgs = [{"role": "user", "content": Q}]
    ref = engine.score([Request(msgs, response="Paris is the capital.")], logprobs=True)[0]
    assert m["response_logprob"] == pytest.approx(ref.response_logprob, abs=1e-4)
    assert m["projections"]["evil"]["2"]["n_response"] == len(ref.token_ids)


def test_candidates_mode_matches_the_engine(main):
    s, model, _ = main
    m = meta(s["candidates"])
    ref = model.api.engine_sync().candidate_logprobs(
        [{"role": "user", "content": Q}], ["0", "1", "42"]
    )
    assert list(m["candidates"]) == ["0", "1", "42"]
    assert list(m["candidates"].values()) == pytest.approx(ref, abs=1e-4)
    best = max(m["candidates"], key=m["candidates"].get)
    out = s["candidates"].output
    assert out.completion == best
    top = out.choices[0].logprobs.content[0].top_logprobs
    assert [t.token for t in top][0] == best and len(top) == 3


def test_adapter_per_call(main, adapter_dir, model_dir):
    s, model, _ = main
    m = meta(s["adapter"])
    assert m["adapter"] == str(adapter_dir.resolve())
    assert s["adapter"].output.completion != s["plain"].output.completion
    assert s["base"].output.completion == s["plain"].output.completion
    lora = model.api.engine_sync(str(adapter_dir))
    ref = lora.generate([Request([{"role": "user", "content": Q}])], Sampling(MAX_TOKENS))[0]
    assert ref.text == s["adapter"].output.completion
    assert lora.lm.weights is model.api.engine_sync().lm.weights  # base weights shared


def test_means_go_to_a_sidecar_not_the_log(main, lm):
    from safetensors import safe_open

    s, _, _ = main
    m = meta(s["means"])
    path = Path(m["means_file"])
    assert path.exists() and path.suffix == ".safetensors"
    with safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == {"response_avg", "prompt_avg", "prompt_last"}
        assert tuple(f.get_tensor("response_avg").shape) == (lm.num_layers + 1, lm.hidden_size)
        assert f.metadata()["fingerprint"].strip('"') == lm.base_fingerprint


def test_the_batcher_batches(main):
    s, model, calls = main
    ok = [x for x in s.values() if x.error is None]
    stats = model.api.batcher.stats
    assert stats.items == len(ok)
    assert stats.runs == sum(calls.values())
    assert stats.runs < len(ok) and max(stats.sizes) >= 4


def test_seeds_do_not_depend_on_batch_composition(model_dir, tmp_path):
    samples = {
        f"q{i}": (f"Tell me a joke about {i} cats.", {"temperature": 1.0, "seed": 7})
        for i in range(4)
    }
    samples["greedy"] = (Q, {})
    results = []
    for max_batch in (1, 4):
        model = get_model(f"persona/{model_dir}", max_batch=max_batch, batch_window=0.2)
        out = run(model, {k: (a, dict(b)) for k, (a, b) in samples.items()}, tmp_path)
        results.append({k: (v.output.completion, meta(v)["seed"]) for k, v in out.items()})
        if max_batch == 4:
            assert max(model.api.batcher.stats.sizes) >= 2
    assert results[0] == results[1]
    seeds = {seed for _, seed in results[0].values()}
    assert len(seeds) == len(samples)  # derived per sample id


# ---------------------------------------------------------------------------------------------
# Construction, model args and model-info lookups


def test_unknown_model_arg_names_the_valid_ones(model_dir):
    with pytest.raises(PersonaError, match="valid ones are adapter, vectors"):
        get_model(f"persona/{model_dir}", model_path="x", memoize=False)


def test_model_info_lookup_loads_no_weights(model_dir, monkeypatch):
    from inspect_ai.model._model_info import MODEL_INFO_LOOKUP_API_KEY, get_model_info

    import persona.provider.api

    def boom(*a, **k):
        raise AssertionError("weights loaded for a model-info lookup")

    monkeypatch.setattr(persona.provider.api, "load_model", boom)
    m = get_model(f"persona/{model_dir}", api_key=MODEL_INFO_LOOKUP_API_KEY, memoize=False)
    import anyio

    assert anyio.run(m.api.count_text_tokens, "hello world, four") > 0
    assert get_model_info(f"persona/{model_dir}-never-loaded") is None
    assert get_model_info(f"persona/{model_dir}") is None


def test_token_counting_uses_the_model_tokenizer(model_dir, lm):
    import anyio

    m = get_model(f"persona/{model_dir}", memoize=False)
    text = "The capital of France is Paris."
    n = anyio.run(m.api.count_text_tokens, text)
    assert n == len(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert anyio.run(m.count_tokens, [ChatMessageUser(content=text)]) >= n


def test_model_engine_helper(model_dir):
    import anyio

    from persona.provider.api import model_engine

    m = get_model(f"persona/{model_dir}", memoize=False)
    engine = anyio.run(model_engine, m)
    assert isinstance(engine, Engine)
    with pytest.raises(PersonaError, match="not served by the persona provider"):
        anyio.run(model_engine, get_model("none/none"))


def test_direct_generate_outside_an_eval(model_dir, vectors_dir):
    import anyio

    m = get_model(f"persona/{model_dir}", vectors=str(vectors_dir), memoize=False)
    cfg = GenerateConfig(max_tokens=4, **body(capture={"traits": ["evil"], "layers": [3]}))
    out = anyio.run(lambda: m.generate(Q, config=cfg))
    stats = out.metadata["persona"]["projections"]["evil"]["3"]
    assert math.isfinite(stats["prompt_last"])

"""persona serve with real clients: the ``openai`` SDK (and raw httpx for error cases) against a
real uvicorn server on 127.0.0.1 at an ephemeral port, serving a tiny random model.

Replies are checked against the in-process engine on the same messages (greedy: exact).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
import torch

from persona.app.cli import main
from persona.app.serve import Backend, Limits, create_app
from persona.app.serve.runner import serve_in_thread
from persona.model.engine import Engine, Request, Sampling
from persona.model.loading import load_model
from persona.model.vectors import PersonaVector, build_meta, save_vector, vector_path

KEY = "test-key"
MSGS = [{"role": "user", "content": "What is the capital of France?"}]
LIMITS = Limits(max_body_bytes=20_000, max_tokens=64, default_max_tokens=16, max_n=4)


@pytest.fixture(scope="module")
def model_dir(tiny_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serve") / "tiny"
    shutil.copytree(tiny_dir, out)  # a private copy: adapters attach to its weights
    return out


@pytest.fixture(scope="module")
def lm(model_dir):
    return load_model(str(model_dir), device="cpu")


def make_vectors(lm, folder: Path) -> Path:
    """Random persona vectors ``evil`` (calibrated layer 2) and ``kind`` for ``lm``."""
    shape = (lm.num_layers + 1, lm.hidden_size)
    for seed, trait in ((11, "evil"), (12, "kind")):
        g = torch.Generator().manual_seed(seed)
        meta = build_meta(
            model_id=lm.model_id,
            fingerprint=lm.base_fingerprint,
            num_layers=lm.num_layers,
            hidden_size=lm.hidden_size,
            trait=trait,
            layer=2,
        )
        vec = PersonaVector(*(3 * torch.randn(shape, generator=g) for _ in range(3)), meta=meta)
        save_vector(vec, vector_path(folder, lm.model_id, trait))
    return folder


@pytest.fixture(scope="module")
def vectors_dir(lm, tmp_path_factory) -> Path:
    return make_vectors(lm, tmp_path_factory.mktemp("vectors"))


@pytest.fixture(scope="module")
def adapter_dir(model_dir, tmp_path_factory) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(5)
    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    peft_model = get_peft_model(
        base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 1.0)
    out = tmp_path_factory.mktemp("adapter") / "lora"
    peft_model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def server(model_dir, vectors_dir, adapter_dir):
    backend = Backend(
        str(model_dir), vectors=str(vectors_dir), adapters={"lora": str(adapter_dir)}, name="tiny"
    )
    asyncio.run(backend.load())
    with serve_in_thread(create_app(backend, LIMITS, api_key=KEY)) as url:
        yield url


@pytest.fixture()
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0)


def engine_reply(lm, messages, max_tokens: int = 8, **kw) -> str:
    engine = Engine(lm)
    res = engine.generate([Request(messages)], Sampling(max_new_tokens=max_tokens, **kw))
    return res[0].text


# ---------------------------------------------------------------------------------------------
# The OpenAI SDK


def test_models_lists_base_and_adapters(client):
    assert [m.id for m in client.models.list().data] == ["tiny", "lora"]


def test_chat_matches_the_engine_and_counts_usage(client, lm):
    out = client.chat.completions.create(model="tiny", messages=MSGS, temperature=0, max_tokens=8)
    assert out.object == "chat.completion" and len(out.choices) == 1
    choice = out.choices[0]
    assert choice.message.content == engine_reply(lm, MSGS)
    assert choice.finish_reason in ("stop", "length")
    n_prompt = len(Engine(lm).render(MSGS))
    assert out.usage.prompt_tokens == n_prompt
    assert 0 < out.usage.completion_tokens <= 8
    assert out.usage.total_tokens == n_prompt + out.usage.completion_tokens
    meta = choice.model_extra["persona"]
    assert meta["steering_active"] is False and meta["adapter"] is None


def test_streaming_spells_the_same_reply(client):
    kwargs = dict(model="tiny", messages=MSGS, temperature=0, max_tokens=8)
    whole = client.chat.completions.create(**kwargs).choices[0].message.content
    stream = client.chat.completions.create(
        **kwargs, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and "persona" in finals[0].choices[0].model_extra
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1


def test_logprobs_top_k_and_greedy_token(client):
    out = client.chat.completions.create(
        model="tiny", messages=MSGS, temperature=0, max_tokens=6, logprobs=True, top_logprobs=5
    )
    content = out.choices[0].logprobs.content
    assert content and "".join(t.token for t in content) == out.choices[0].message.content
    for t in content:
        assert len(t.top_logprobs) == 5
        assert t.logprob <= 0
        assert t.token == t.top_logprobs[0].token  # greedy picks the most likely token
        assert t.logprob == pytest.approx(t.top_logprobs[0].logprob)
        lps = [x.logprob for x in t.top_logprobs]
        assert lps == sorted(lps, reverse=True)


def test_steering_and_projections_through_extra_body(client):
    base = dict(model="tiny", messages=MSGS, temperature=0, max_tokens=8)
    capture = {"traits": ["evil", "kind"], "layers": [2], "per_token": True}
    plain = client.chat.completions.create(**base, extra_body={"persona": {"capture": capture}})
    zero = client.chat.completions.create(
        **base,
        extra_body={"persona": {"steer": [{"vector": "evil", "coef": 0}], "capture": capture}},
    )
    steered = client.chat.completions.create(
        **base,
        extra_body={"persona": {"steer": [{"vector": "evil", "coef": 8}], "capture": capture}},
    )
    assert zero.choices[0].message.content == plain.choices[0].message.content
    assert steered.choices[0].message.content != plain.choices[0].message.content
    meta = steered.choices[0].model_extra["persona"]
    assert meta["steering_active"] is True
    assert meta["steering"] == [
        {"vector": "evil", "layer": 2, "coef": 8.0, "positions": "response", "kind": "response_avg"}
    ]
    proj = meta["projections"]["evil"]["2"]
    assert proj["n_response"] == steered.usage.completion_tokens
    assert len(meta["per_token"]["kind"]["2"]) == proj["n_response"]
    # projections are read before this call's steering: the prompt-last value is unchanged
    plain_proj = plain.choices[0].model_extra["persona"]["projections"]["evil"]["2"]
    assert proj["prompt_last"] == pytest.approx(plain_proj["prompt_last"], abs=1e-4)


def test_adapter_is_a_model_id(client, lm, adapter_dir):
    base = client.chat.completions.create(model="tiny", messages=MSGS, temperature=0, max_tokens=8)
    tuned = client.chat.completions.create(model="lora", messages=MSGS, temperature=0, max_tokens=8)
    meta = tuned.choices[0].model_extra["persona"]
    assert meta["adapter"] == str(adapter_dir.resolve())
    assert tuned.choices[0].message.content != base.choices[0].message.content


def test_seeded_sampling_is_reproducible_and_n_choices_differ(client):
    kwargs = dict(model="tiny", messages=MSGS, temperature=1.0, max_tokens=8, n=3, seed=7)
    first = [c.message.content for c in client.chat.completions.create(**kwargs).choices]
    again = [c.message.content for c in client.chat.completions.create(**kwargs).choices]
    assert first == again and len(first) == 3
    assert len(set(first)) > 1  # choice i samples with seed + i
    other = client.chat.completions.create(**{**kwargs, "seed": 8}).choices
    assert other[0].message.content == first[1]


# ---------------------------------------------------------------------------------------------
# Errors, limits and faults (raw HTTP)


def post(url: str, body, key: str | None = KEY, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if isinstance(body, dict):
        body = json.dumps(body)
    return httpx.post(f"{url}/v1/chat/completions", content=body, headers=headers, timeout=60, **kw)


GOOD = {"model": "tiny", "messages": MSGS, "max_tokens": 4, "temperature": 0}
BAD = {
    "no key": (401, None, GOOD),
    "wrong key": (401, "nope", GOOD),
    "not json": (400, KEY, "{not json"),
    "unknown model": (404, KEY, {**GOOD, "model": "gpt-4"}),
    "unknown field": (400, KEY, {**GOOD, "frobnicate": 1}),
    "no messages": (400, KEY, {**GOOD, "messages": []}),
    "tool role": (400, KEY, {**GOOD, "messages": [{"role": "tool", "content": "x"}]}),
    "tools": (400, KEY, {**GOOD, "tools": [{"type": "function", "function": {"name": "f"}}]}),
    "penalty": (400, KEY, {**GOOD, "frequency_penalty": 0.5}),
    "json mode": (400, KEY, {**GOOD, "response_format": {"type": "json_object"}}),
    "n too big": (400, KEY, {**GOOD, "n": 5}),
    "max_tokens too big": (400, KEY, {**GOOD, "max_tokens": 65}),
    "top_logprobs 21": (400, KEY, {**GOOD, "logprobs": True, "top_logprobs": 21}),
    "bad persona key": (400, KEY, {**GOOD, "persona": {"steering": []}}),
    "vector path": (400, KEY, {**GOOD, "persona": {"steer": [{"vector": "/etc/x", "coef": 1}]}}),
    "unknown trait": (400, KEY, {**GOOD, "persona": {"steer": [{"vector": "nope", "coef": 1}]}}),
    "layer out of range": (
        400,
        KEY,
        {**GOOD, "persona": {"steer": [{"vector": "evil", "layer": 99, "coef": 1}]}},
    ),
    "sidecar": (400, KEY, {**GOOD, "persona": {"capture": {"means": True}}}),
    "too long": (400, KEY, {**GOOD, "messages": [{"role": "user", "content": "cat " * 600}]}),
    "body too big": (413, KEY, {**GOOD, "messages": [{"role": "user", "content": "x" * 30_000}]}),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_requests_get_openai_errors(server, case):
    status, key, body = BAD[case]
    r = post(server, body, key=key)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"] and err["type"] and "\n" not in err["message"]


def test_neutral_values_of_refused_settings_are_accepted(server):
    neutral = {"frequency_penalty": 0, "tool_choice": "none", "response_format": {"type": "text"}}
    assert (
        post(server, {**GOOD, **neutral, "user": "me", "stream_options": None}).status_code == 200
    )


def test_bad_persona_key_names_the_valid_ones(server):
    r = post(server, {**GOOD, "persona": {"steer": [{"vector": "evil", "coeff": 1}]}})
    assert r.status_code == 400 and "valid keys" in r.json()["error"]["message"]


def test_every_route_needs_the_key(server):
    assert httpx.get(f"{server}/v1/models").status_code == 401
    assert httpx.get(f"{server}/monitor").status_code == 401
    assert httpx.get(f"{server}/monitor?key={KEY}").status_code == 200
    ok = httpx.get(f"{server}/v1/persona/traits", headers={"Authorization": f"Bearer {KEY}"})
    assert ok.json()["traits"] == [{"name": "evil", "layer": 2}, {"name": "kind", "layer": 2}]
    assert (
        httpx.get(f"{server}/nope", headers={"Authorization": f"Bearer {KEY}"}).status_code == 404
    )


def test_traits_from_a_single_vector_file(model_dir, lm, vectors_dir):
    path = next(vectors_dir.rglob("kind.safetensors"))
    backend = Backend(str(model_dir), vectors=str(path))
    num_layers, traits = asyncio.run(backend.traits())
    assert num_layers == lm.num_layers
    assert [(t.name, t.layer) for t in traits] == [("kind", 2)]


def test_malformed_requests_do_not_break_a_shared_batch(server, lm):
    """Good and bad requests at once: the good ones succeed, with the right replies."""
    expected = engine_reply(lm, MSGS, max_tokens=4)

    async def burst() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=server, headers=headers, timeout=120) as c:
            bodies = []
            for i in range(12):
                if i % 3 == 0:
                    bodies.append(GOOD)
                else:
                    bad = list(BAD.values())[2 + i % (len(BAD) - 2)][2]
                    bodies.append(bad)
            calls = [
                c.post("/v1/chat/completions", content=b if isinstance(b, str) else json.dumps(b))
                for b in bodies
            ]
            return list(await asyncio.gather(*calls))

    results = asyncio.run(burst())
    good = [r for i, r in enumerate(results) if i % 3 == 0]
    assert all(r.status_code == 200 for r in good)
    assert {r.json()["choices"][0]["message"]["content"] for r in good} == {expected}
    assert all(400 <= r.status_code < 500 for i, r in enumerate(results) if i % 3)
    assert post(server, GOOD).status_code == 200  # still serving


def test_clients_hanging_up_mid_stream_do_not_stall_others(server, lm):
    expected = engine_reply(lm, MSGS, max_tokens=4)

    async def run() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=server, headers=headers, timeout=120) as c:

            async def hang_up() -> None:
                stream = {**GOOD, "stream": True, "max_tokens": 16}
                async with c.stream("POST", "/v1/chat/completions", json=stream) as r:
                    async for line in r.aiter_lines():
                        assert line.startswith("data: ")
                        break  # close the connection after the first chunk

            async def good() -> httpx.Response:
                return await c.post("/v1/chat/completions", json=GOOD)

            calls = [hang_up() for _ in range(4)] + [good() for _ in range(4)]
            return (await asyncio.wait_for(asyncio.gather(*calls), timeout=120))[4:]

    answered = asyncio.run(run())
    assert [r.status_code for r in answered] == [200] * 4
    assert {r.json()["choices"][0]["message"]["content"] for r in answered} == {expected}
    assert post(server, GOOD).status_code == 200


def test_cli_serves_until_stopped(model_dir, vectors_dir):
    """``persona serve`` as a user runs it: a subprocess on a loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "persona.app.cli",
        "serve",
        "--model",
        str(model_dir),
        "--vectors",
        str(vectors_dir),
        "--port",
        str(port),
        "--api-key",
        KEY,
        "--name",
        "tiny",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0)
        deadline = time.monotonic() + 120
        while True:
            try:
                models = [m.id for m in client.models.list().data]
                break
            except openai.APIConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert models == ["tiny"]
        out = client.chat.completions.create(model="tiny", messages=MSGS, max_tokens=4)
        assert out.choices[0].message.content is not None
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"monitor: http://127.0.0.1:{port}/monitor?key={KEY}" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--adapter", "nonsense"], "use NAME=PATH"),
        (["--adapter", "a=/nonexistent"], "no PEFT adapter folder there"),
        (["--port", "70000"], "is not a port number"),
        (["--max-n", "0"], "max_n must be at least 1"),
    ],
)
def test_cli_rejects_bad_options_in_one_line(argv, message, capsys):
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


# ---------------------------------------------------------------------------------------------
# The embedded model


@pytest.mark.integration
def test_smollm2_over_http_matches_the_engine(smol):
    backend = Backend("smollm2-135m")
    asyncio.run(backend.load())
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    with serve_in_thread(create_app(backend)) as url:  # no key: none needed
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["smollm2-135m"]
        kwargs = dict(model="smollm2-135m", messages=messages, temperature=0, max_tokens=24)
        out = client.chat.completions.create(**kwargs, logprobs=True, top_logprobs=20)
        stream = client.chat.completions.create(**kwargs, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    reply = out.choices[0].message.content
    assert reply == engine_reply(smol, messages, max_tokens=24)
    assert "Paris" in reply and streamed == reply
    assert all(len(t.top_logprobs) == 20 for t in out.choices[0].logprobs.content)

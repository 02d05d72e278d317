"""Token streaming and steering semantics (issue 24): the engine's per-token callback, the
``prompt_last`` position, and ``persona serve`` streaming to the ``openai`` SDK on 127.0.0.1.

The tiny random model never emits its end-of-turn token, so every reply has exactly
``max_tokens`` tokens and long streams are long for sure.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import openai
import pytest
import torch
from test_serve import make_vectors

from persona.app.serve import Backend, Limits, create_app
from persona.app.serve.runner import serve_in_thread
from persona.model.engine import Capture, Engine, Request, Sampling, Steer, TokenEvent
from persona.model.loading import load_model
from persona.model.residual_hooks import residual_hooks

MSGS = [{"role": "user", "content": "What is the capital of France?"}]
LIMITS = Limits(max_tokens=400, default_max_tokens=16)
STEER = {
    "steer": [{"vector": "evil", "coef": 6.0}],
    "capture": {"traits": ["evil"], "per_token": True},
}


@pytest.fixture(scope="module")
def model_dir(tiny_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stream") / "tiny"
    shutil.copytree(tiny_dir, out)
    return out


@pytest.fixture(scope="module")
def lm(model_dir):
    return load_model(str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def vectors_dir(lm, tmp_path_factory) -> Path:
    return make_vectors(lm, tmp_path_factory.mktemp("vectors"))


def start(model_dir: Path, vectors_dir: Path, max_batch: int, window: float = 0.05):
    backend = Backend(
        str(model_dir),
        vectors=str(vectors_dir),
        name="tiny",
        max_batch=max_batch,
        batch_window=window,
    )
    asyncio.run(backend.load())
    return backend, serve_in_thread(create_app(backend, LIMITS))


@pytest.fixture(scope="module")
def server(model_dir, vectors_dir):
    backend, running = start(model_dir, vectors_dir, max_batch=8, window=0.3)
    with running as url:
        yield backend, url


@pytest.fixture(scope="module")
def one_slot(model_dir, vectors_dir):
    """A server whose batches hold one call: a second call waits for the first's slot."""
    backend, running = start(model_dir, vectors_dir, max_batch=1)
    with running as url:
        yield backend, url


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=120)


# ---------------------------------------------------------------------------------------------
# The engine


@pytest.mark.parametrize("stop", [(), ("0 0 0 0 0 0 0 0 0",)])
def test_callback_pieces_spell_the_reply_and_leave_results_unchanged(lm, stop):
    engine = Engine(lm)
    reqs = [Request(MSGS), Request([{"role": "user", "content": "How do I bake bread?"}])]
    sampling = Sampling(max_new_tokens=12, logprobs=True, stop=stop)
    plain = engine.generate(reqs, sampling)
    events: list[TokenEvent] = []
    streamed = engine.generate(reqs, sampling, on_token=lambda ev: events.append(ev) or True)
    assert [(r.text, r.token_ids) for r in streamed] == [(r.text, r.token_ids) for r in plain]
    for i, res in enumerate(streamed):
        mine = [ev for ev in events if ev.index == i]
        assert [ev.token_id for ev in mine] == res.token_ids
        assert "".join(ev.text for ev in mine) == res.text  # nothing past a stop sequence
        assert [ev.logprob.logprob for ev in mine] == [lp.logprob for lp in res.logprobs]
    if stop:  # the stop sequence cut the reply after its first character
        assert [r.finish_reason for r in streamed] == ["stop_seq"] * 2 and streamed[0].text == " "


def test_callback_per_token_projections_match_the_result(lm):
    engine = Engine(lm)
    g = torch.Generator().manual_seed(3)
    vec = torch.randn(lm.num_layers + 1, lm.hidden_size, generator=g)
    capture = Capture(probes={"v": vec}, probe_layers={"v": (1, 3)}, per_token=True)
    events: list[TokenEvent] = []
    res = engine.generate(
        [Request(MSGS, steer=(Steer(vec[2], 2, 4.0),))],
        Sampling(max_new_tokens=6),
        capture,
        on_token=lambda ev: events.append(ev) or True,
    )[0]
    for layer in (1, 3):
        streamed = [ev.projections["v"][layer] for ev in events]
        assert streamed == pytest.approx(res.projections["v"][layer].per_token, abs=1e-6)


def test_callback_false_stops_only_that_request(lm):
    engine = Engine(lm)
    reqs = [Request(MSGS), Request(MSGS)]
    res = engine.generate(
        reqs, Sampling(max_new_tokens=20), on_token=lambda ev: ev.index == 1 or len(ev.text) < 0
    )
    assert res[0].finish_reason == "cancelled" and len(res[0].token_ids) == 1
    alone = engine.generate([Request(MSGS)], Sampling(max_new_tokens=20))[0]
    assert res[1].token_ids == alone.token_ids and res[1].finish_reason == "max_tokens"


def _row_vector(lm, seed: int) -> torch.Tensor:
    return 4 * torch.randn(lm.hidden_size, generator=torch.Generator().manual_seed(seed))


def test_prompt_last_steers_the_last_prompt_token_only(lm):
    """Teacher-forced: the engine's ``prompt_last`` equals a hand-made hook that adds the vector
    at the last prompt token only; ``response`` differs because it also steers the reply."""
    engine = Engine(lm)
    vec, layer = _row_vector(lm, 7), 2
    reply = " Paris is the capital."
    scored = {
        pos: engine.score(
            [Request(MSGS, steer=(Steer(vec, layer, 3.0, pos),), response=reply)], logprobs=True
        )[0].response_logprob
        for pos in ("prompt_last", "response")
    }
    prompt = engine.render(MSGS)
    resp = list(lm.tokenizer(reply, add_special_tokens=False)["input_ids"])
    ids = torch.tensor([prompt + resp])
    last = len(prompt) - 1

    def add_at_last(lyr: int, hidden: torch.Tensor) -> torch.Tensor:
        out = hidden.clone()
        out[:, last] += 3.0 * vec.to(hidden.dtype)
        return out

    with torch.inference_mode(), residual_hooks(lm.model, [layer], add_at_last):
        logits = lm.model(input_ids=ids).logits[0].float()
    lp = torch.log_softmax(logits[last : last + len(resp)], -1)
    expected = float(lp.gather(1, torch.tensor(resp)[:, None]).sum())
    assert scored["prompt_last"] == pytest.approx(expected, abs=1e-4)
    assert abs(scored["response"] - expected) > 1e-3


def test_prompt_last_in_generation_is_response_on_the_prompt_pass(lm):
    """The first token's distribution is the same under ``prompt_last`` and ``response``
    (both steer only the last prompt token in the prompt's pass); the second is not."""
    engine = Engine(lm)
    vec = _row_vector(lm, 8)
    sampling = Sampling(max_new_tokens=3, logprobs=True, top_logprobs=5)
    out = {
        pos: engine.generate([Request(MSGS, steer=(Steer(vec, 2, 5.0, pos),))], sampling)[0]
        for pos in ("prompt_last", "response")
    }
    first = [out[p].logprobs[0] for p in out]
    assert first[0].top == first[1].top
    plain = engine.generate([Request(MSGS)], sampling)[0]
    assert out["prompt_last"].logprobs[0].top != plain.logprobs[0].top  # it does steer
    zero = engine.generate([Request(MSGS, steer=(Steer(vec, 2, 0.0, "prompt_last"),))], sampling)
    assert zero[0].token_ids == plain.token_ids


# ---------------------------------------------------------------------------------------------
# persona serve with the openai SDK


def test_chunks_arrive_while_the_reply_is_still_generating(server):
    """When the first token's chunk reaches the client, the engine run that produces the reply
    has not finished (the batcher counts a run when it returns)."""
    backend, url = server
    runs_before = backend.api.batcher.stats.runs
    stream = client(url).chat.completions.create(
        model="tiny", messages=MSGS, temperature=0, max_tokens=300, stream=True
    )
    runs_at_first, n_content, finish = None, 0, None
    for chunk in stream:
        choice = chunk.choices[0]
        if choice.delta.content:
            n_content += 1
            if runs_at_first is None:
                runs_at_first = backend.api.batcher.stats.runs
        finish = choice.finish_reason or finish
    assert runs_at_first == runs_before  # first text before the run ended
    assert backend.api.batcher.stats.runs == runs_before + 1
    assert n_content >= 100 and finish == "length"


def test_streamed_and_plain_steered_greedy_replies_are_identical(server):
    _, url = server
    kwargs = dict(
        model="tiny", messages=MSGS, temperature=0, max_tokens=24, extra_body={"persona": STEER}
    )
    plain = client(url).chat.completions.create(**kwargs).choices[0]
    chunks = list(client(url).chat.completions.create(**kwargs, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.message.content
    plain_meta = plain.model_extra["persona"]
    final = [c.choices[0] for c in chunks if c.choices and c.choices[0].finish_reason]
    assert final[0].model_extra["persona"]["projections"] == plain_meta["projections"]
    streamed = [
        c.choices[0].model_extra["persona"]["per_token"]["evil"]["2"]
        for c in chunks
        if c.choices
        and "persona" in (c.choices[0].model_extra or {})
        and not c.choices[0].finish_reason
    ]
    assert streamed == plain_meta["per_token"]["evil"]["2"]


def test_per_request_vectors_in_one_batch_do_not_leak(server):
    """Three requests with different steering share one batch; each reply equals the reply to
    the same request sent alone."""
    backend, url = server
    bodies = [
        {"steer": [{"vector": "evil", "coef": 8.0}]},
        {"steer": [{"vector": "kind", "coef": -8.0, "positions": "all"}]},
        None,
    ]

    def ask(persona, stream: bool = False):
        kwargs = dict(model="tiny", messages=MSGS, temperature=0, max_tokens=12)
        if persona:
            kwargs["extra_body"] = {"persona": persona}
        return kwargs

    alone = [
        client(url).chat.completions.create(**ask(b)).choices[0].message.content for b in bodies
    ]
    assert len(set(alone)) == 3  # the steering differs visibly

    async def together() -> list[str]:
        aclient = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        outs = await asyncio.gather(*(aclient.chat.completions.create(**ask(b)) for b in bodies))
        return [o.choices[0].message.content for o in outs]

    sizes_before = len(backend.api.batcher.stats.sizes)
    assert asyncio.run(together()) == alone
    assert 3 in backend.api.batcher.stats.sizes[sizes_before:]  # they did share a batch


def test_a_client_that_leaves_mid_stream_frees_its_batch_slot(one_slot):
    """One batch slot: a 300-token stream whose client hangs up after its first token stops at
    once, so a request queued behind it is answered, and a queued stream whose client left
    never runs."""
    backend, url = one_slot
    headers = {"Content-Type": "application/json"}
    long = {"model": "tiny", "messages": MSGS, "temperature": 0, "max_tokens": 300, "stream": True}

    async def scenario() -> str:
        first_token, c_left = asyncio.Event(), asyncio.Event()
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as c:

            async def leave_mid_stream() -> None:
                async with c.stream("POST", "/v1/chat/completions", json=long) as r:
                    async for line in r.aiter_lines():
                        if '"content": "' in line and '"content": ""' not in line:
                            first_token.set()
                            await c_left.wait()
                            break  # hang up while generating

            async def leave_while_queued() -> None:
                await first_token.wait()  # the one slot is taken: this call waits in the queue
                async with c.stream("POST", "/v1/chat/completions", json=long) as r:
                    async for _ in r.aiter_lines():
                        break  # the role chunk came; hang up before any token
                await asyncio.sleep(0.1)
                c_left.set()

            async def queued() -> str:
                await c_left.wait()
                short = {**long, "stream": False, "max_tokens": 4}
                r = await c.post("/v1/chat/completions", json=short)
                return r.json()["choices"][0]["message"]["content"]

            _, _, reply = await asyncio.wait_for(
                asyncio.gather(leave_mid_stream(), leave_while_queued(), queued()), 120
            )
            return reply

    reply = asyncio.run(scenario())
    assert reply  # answered
    deadline = time.monotonic() + 30
    while len(backend.abandoned) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    ran, never = sorted(backend.abandoned, reverse=True)
    assert 1 <= ran < 300 and never == 0
    assert backend.pending == 0

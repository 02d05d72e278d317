"""Engine tests on tiny random models: captures, steering semantics, batching, scoring."""

from __future__ import annotations

import pytest
import torch

from persona.errors import PersonaError
from persona.model.engine import Capture, Engine, Request, Sampling, Steer
from persona.model.loading import load_model
from persona.model.residual_hooks import decoder_blocks

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def chat(q: str, system: bool = True):
    return ([SYSTEM] if system else []) + [{"role": "user", "content": q}]


PROMPTS = [
    chat("What is the capital of France?"),
    chat("How do I bake bread?", system=False),
    chat("Tell me a joke about cats and numbers 42 50 100."),
]


def reference_hidden(lm, ids: list[int]) -> tuple[torch.Tensor, ...]:
    """HF's own hidden_states for one unpadded sequence."""
    with torch.no_grad():
        out = lm.model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    return tuple(h[0] for h in out.hidden_states)


@pytest.mark.parametrize("fixture", ["tiny_dir", "tiny_gpt2_dir"])
def test_score_captures_match_output_hidden_states(request, fixture):
    lm = load_model(str(request.getfixturevalue(fixture)), device="cpu")
    eng = Engine(lm, max_batch=3)
    n = lm.num_layers
    responses = ["Paris is the capital.", "Mix flour and water, then bake it.", "Why?"]
    reqs = [Request(p, response=r) for p, r in zip(PROMPTS, responses, strict=True)]
    results = eng.score(reqs, Capture(means=tuple(range(n + 1))))
    for req, res in zip(reqs, results, strict=True):
        prompt = eng.render(req.messages)
        hs = reference_hidden(lm, prompt + res.token_ids)
        p = len(prompt)
        for layer in range(n + 1):
            h = hs[layer]
            torch.testing.assert_close(
                res.means["prompt_avg"][layer], h[:p].mean(0), atol=1e-4, rtol=1e-4
            )
            torch.testing.assert_close(
                res.means["response_avg"][layer], h[p:].mean(0), atol=1e-4, rtol=1e-4
            )
            torch.testing.assert_close(
                res.means["prompt_last"][layer], h[p - 1], atol=1e-4, rtol=1e-4
            )


def test_generation_captures_match_output_hidden_states(tiny):
    eng = Engine(tiny, max_batch=3)
    n = tiny.num_layers
    results = eng.generate(
        [Request(p) for p in PROMPTS],
        Sampling(max_new_tokens=6),
        Capture(means=tuple(range(n + 1))),
    )
    for prompt_msgs, res in zip(PROMPTS, results, strict=True):
        assert res.token_ids, "the tiny model should produce some tokens"
        prompt = eng.render(prompt_msgs)
        hs = reference_hidden(tiny, prompt + res.token_ids)
        p = len(prompt)
        for layer in range(n + 1):
            torch.testing.assert_close(
                res.means["response_avg"][layer], hs[layer][p:].mean(0), atol=1e-4, rtol=1e-4
            )
            torch.testing.assert_close(
                res.means["prompt_last"][layer], hs[layer][p - 1], atol=1e-4, rtol=1e-4
            )


def test_projection_capture_matches_means(tiny):
    eng = Engine(tiny)
    n, d = tiny.num_layers, tiny.hidden_size
    vec = torch.randn(n + 1, d, generator=torch.Generator().manual_seed(1))
    cap = Capture(means=(2,), probes={"t": vec}, probe_layers={"t": (2,)}, per_token=True)
    res = eng.score([Request(PROMPTS[0], response="Paris is nice.")], cap)[0]
    unit = vec[2] / vec[2].norm()
    stats = res.projections["t"][2]
    assert stats.response_mean == pytest.approx(
        float(res.means["response_avg"][0] @ unit), abs=1e-4
    )
    assert stats.prompt_last == pytest.approx(float(res.means["prompt_last"][0] @ unit), abs=1e-4)
    assert stats.n_response == len(res.token_ids)
    assert len(stats.per_token) == stats.n_response
    assert sum(stats.per_token) / stats.n_response == pytest.approx(stats.response_mean, abs=1e-4)


def test_zero_coefficient_is_identical_to_no_steering(tiny):
    eng = Engine(tiny)
    vec = torch.randn(tiny.hidden_size)
    cap = Capture(means=(1, 2, 3))
    plain = eng.generate([Request(p) for p in PROMPTS], Sampling(max_new_tokens=8), cap)
    zero = eng.generate(
        [Request(p, steer=(Steer(vec, 2, 0.0, "all"),)) for p in PROMPTS],
        Sampling(max_new_tokens=8),
        cap,
    )
    for a, b in zip(plain, zero, strict=True):
        assert a.token_ids == b.token_ids and a.text == b.text
        for kind in a.means:
            assert torch.equal(a.means[kind], b.means[kind])


def test_per_row_steering_equals_separate_runs(tiny):
    eng = Engine(tiny, max_batch=4)
    vec = torch.randn(tiny.hidden_size, generator=torch.Generator().manual_seed(3))
    probe = torch.randn(
        tiny.num_layers + 1, tiny.hidden_size, generator=torch.Generator().manual_seed(4)
    )
    cap = Capture(probes={"p": probe}, probe_layers={"p": (3, 4)})
    coefs = [0.0, 4.0, -4.0, 2.0]
    reqs = [
        Request(PROMPTS[i % 3], steer=(Steer(vec, 2, c, "response"),)) for i, c in enumerate(coefs)
    ]
    batched = eng.generate(reqs, Sampling(max_new_tokens=6), cap)
    for req, res in zip(reqs, batched, strict=True):
        alone = eng.generate([req], Sampling(max_new_tokens=6), cap)[0]
        assert alone.token_ids == res.token_ids
        for layer in (3, 4):
            assert alone.projections["p"][layer].prompt_last == pytest.approx(
                res.projections["p"][layer].prompt_last, abs=1e-4
            )
    assert batched[1].token_ids != batched[2].token_ids or batched[1].means != batched[2].means


def _steered_inputs(lm, layer, run):
    """Inputs of block ``layer`` (the steered output of block ``layer-1``), per forward call."""
    seen: list[torch.Tensor] = []
    block = decoder_blocks(lm.model)[layer]

    def hook(module, args, kwargs):
        h = args[0] if args else kwargs["hidden_states"]
        seen.append(h.detach().clone())

    handle = block.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        run()
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize(
    ("positions", "expect_prompt", "expect_last", "expect_response"),
    [
        ("all", True, True, True),
        ("prompt", True, True, False),
        ("response", False, True, True),  # the last prompt token counts as response (paper)
    ],
)
def test_positions_semantics_in_scoring(
    tiny, positions, expect_prompt, expect_last, expect_response
):
    eng = Engine(tiny)
    vec = torch.ones(tiny.hidden_size)
    # two rows of different lengths so the first is left-padded
    reqs = [
        Request(PROMPTS[1], response="Bake it."),
        Request(PROMPTS[2], response="Why did the cat sit?"),
    ]
    steered = [
        Request(r.messages, steer=(Steer(vec, 1, 3.0, positions),), response=r.response)
        for r in reqs
    ]
    base = _steered_inputs(tiny, 1, lambda: eng.score(reqs, logprobs=True))
    moved = _steered_inputs(tiny, 1, lambda: eng.score(steered, logprobs=True))
    diff = (moved[0] - base[0]).abs().sum(-1) > 1e-6  # [B, T]
    t = diff.shape[1]
    for row, req in enumerate(reqs):
        p = len(eng.render(req.messages))
        r = len(tiny.tokenizer(req.response, add_special_tokens=False)["input_ids"])
        start = t - p - r
        assert not diff[row, :start].any(), "padding must never be steered"
        assert bool(diff[row, start : start + p - 1].all()) == expect_prompt
        assert not diff[row, start : start + p - 1].any() or expect_prompt
        assert bool(diff[row, start + p - 1]) == expect_last
        assert bool(diff[row, start + p :].all()) == expect_response
        assert not diff[row, start + p :].any() or expect_response


@pytest.mark.parametrize(
    ("positions", "decode_steered"), [("all", True), ("prompt", False), ("response", True)]
)
def test_positions_semantics_in_generation(tiny, positions, decode_steered):
    eng = Engine(tiny)
    vec = torch.ones(tiny.hidden_size)
    req = Request(PROMPTS[0], steer=(Steer(vec, 2, 1e-3, positions),))
    capture = Capture(means=(1,))  # forces the final one-token step
    base = _steered_inputs(
        tiny, 2, lambda: eng.generate([Request(PROMPTS[0])], Sampling(max_new_tokens=1), capture)
    )
    moved = _steered_inputs(
        tiny, 2, lambda: eng.generate([req], Sampling(max_new_tokens=1), capture)
    )
    assert len(base) == len(moved) == 2  # prefill + the fed-back response token
    assert (
        (moved[1] - base[1]).abs().sum() > 0 if decode_steered else torch.equal(moved[1], base[1])
    )


def test_teacher_forced_logprobs_match_manual(tiny):
    eng = Engine(tiny)
    req = Request(PROMPTS[0], response="Paris is the capital.")
    res = eng.score([req], logprobs=True)[0]
    ids = eng.render(req.messages) + res.token_ids
    with torch.no_grad():
        logits = tiny.model(input_ids=torch.tensor([ids])).logits[0]
    lp = torch.log_softmax(logits.float(), -1)
    p = len(ids) - len(res.token_ids)
    manual = sum(float(lp[p - 1 + j, t]) for j, t in enumerate(res.token_ids))
    assert res.response_logprob == pytest.approx(manual, abs=1e-3)


def test_sampling_is_seeded_per_request(tiny):
    eng = Engine(tiny, max_batch=4)
    s = Sampling(max_new_tokens=8, temperature=1.0)
    a = eng.generate([Request(PROMPTS[0], seed=7), Request(PROMPTS[1], seed=8)], s)
    b = eng.generate([Request(PROMPTS[1], seed=8)], s)
    c = eng.generate([Request(PROMPTS[0], seed=7)], s)
    assert a[1].token_ids == b[0].token_ids and a[0].token_ids == c[0].token_ids


def test_logprobs_are_of_returned_tokens(tiny):
    eng = Engine(tiny)
    res = eng.generate(
        [Request(PROMPTS[0], seed=1)],
        Sampling(max_new_tokens=5, temperature=1.0, logprobs=True, top_logprobs=3),
    )[0]
    assert [lp.token_id for lp in res.logprobs] == res.token_ids
    for lp in res.logprobs:
        assert len(lp.top) == 3 and lp.top[0][1] >= lp.logprob - 1e-6


def test_stop_sequences_truncate(tiny):
    eng = Engine(tiny)
    free = eng.generate([Request(PROMPTS[0])], Sampling(max_new_tokens=12))[0]
    if len(free.text) < 3:
        pytest.skip("tiny model replied too briefly to test stop strings")
    stop = free.text[2:4]
    res = eng.generate([Request(PROMPTS[0])], Sampling(max_new_tokens=12, stop=(stop,)))[0]
    assert res.finish_reason == "stop_seq" and stop not in res.text


def test_bad_inputs_raise_clear_errors(tiny):
    eng = Engine(tiny)
    with pytest.raises(PersonaError, match="empty"):
        eng.generate([])
    with pytest.raises(PersonaError, match=r"layers 1\.\.4"):
        eng.generate([Request(PROMPTS[0], steer=(Steer(torch.ones(32), 9, 1.0),))])
    with pytest.raises(PersonaError, match="another model"):
        eng.generate([Request(PROMPTS[0], steer=(Steer(torch.ones(64), 2, 1.0),))])
    with pytest.raises(PersonaError, match="positions"):
        Steer(torch.ones(32), 2, 1.0, "middle")
    with pytest.raises(PersonaError, match="another model"):
        eng.score(
            [Request(PROMPTS[0], response="x")],
            Capture(probes={"v": torch.ones(3, 32)}, probe_layers={"v": (1,)}),
        )


def test_loaded_adapter_leaves_the_base_untouched(tiny_dir, tiny, tmp_path):
    """An adapter attached to the shared weights acts only inside the engine's calls for it:
    the base LoadedModel, used through the engine or by calling ``lm.model``, stays the base."""
    from test_solvers import save_adapter

    ids = torch.tensor([Engine(tiny).render(PROMPTS[0])])
    with torch.no_grad():
        before = tiny.model(input_ids=ids).logits
    base_reply = Engine(tiny).generate([Request(PROMPTS[0])], Sampling(max_new_tokens=6))[0]
    folder = save_adapter(tiny_dir, tmp_path / "lora", ["q_proj", "v_proj"])
    tuned = load_model(f"{tiny_dir}", adapter=str(folder), device="cpu")
    assert tuned.weights is tiny.weights  # one copy of the base weights
    scored = Engine(tuned).score([Request(PROMPTS[0], response="Paris.")], logprobs=True)[0]
    base_scored = Engine(tiny).score([Request(PROMPTS[0], response="Paris.")], logprobs=True)[0]
    assert scored.response_logprob != pytest.approx(base_scored.response_logprob, abs=1e-4)
    with torch.no_grad():
        after = tiny.model(input_ids=ids).logits
    torch.testing.assert_close(after, before)
    again = Engine(tiny).generate([Request(PROMPTS[0])], Sampling(max_new_tokens=6))[0]
    assert again.token_ids == base_reply.token_ids

"""The vllm-lens adapter against vllm-lens's documented JSON shapes (no vLLM here).

Capture records are simulated as vllm-lens documents them: HF ``hidden_states[i + 1]`` for its
layer ``i`` (its own tests compare with exactly that), read after the request's steering, over
``n_prompt + n_generated - 1`` positions, sent zstd-compressed as the plugin does.
"""

from __future__ import annotations

import base64
import json

import pytest
import torch

from persona.errors import PersonaError
from persona.model.engine import Capture, Engine, Request, Steer
from persona.model.residual_hooks import residual_hooks
from persona.provider import vllm_lens

MSGS = [{"role": "user", "content": "What is the capital of France?"}]
REPLY = " Paris is the capital of France."


def test_steering_spec_in_their_shapes(tiny):
    d = tiny.hidden_size
    vec = torch.arange(d, dtype=torch.float32)
    steers = [Steer(vec, 2, 1.5, "all"), Steer(vec, 3, -2.0, "prompt_last"), Steer(vec, 1, 0.0)]
    body = vllm_lens.xargs(steers + [Steer(vec, 2, 4.0, "response")], [1, 3], 10, 5)
    args = body["vllm_xargs"]
    assert args["output_residual_stream"] == [0, 2]  # our layer L is their L - 1
    vectors = json.loads(args["apply_steering_vectors"])  # a JSON string over HTTP
    assert len(vectors) == 3  # the zero coefficient is dropped
    keys = {"activations", "layer_indices", "scale", "norm_match", "position_indices"}
    assert all(set(v) == keys for v in vectors)
    broadcast, last, response = vectors
    assert (broadcast["layer_indices"], broadcast["scale"], broadcast["position_indices"]) == (
        [1],
        1.5,
        None,
    )
    assert broadcast["activations"]["shape"] == [1, d]  # 2D: every token
    assert set(broadcast["activations"]) == {"data", "dtype", "original_dtype", "shape"}
    assert torch.equal(vllm_lens.decode_tensor(broadcast["activations"]), vec[None])
    assert last["position_indices"] == [9] and last["activations"]["shape"] == [1, 1, d]
    assert response["position_indices"] == list(range(9, 14))  # last prompt token + 4 fed back
    assert torch.equal(vllm_lens.decode_tensor(response["activations"])[0, 3], vec)
    raw = base64.b64decode(broadcast["activations"]["data"])
    assert len(raw) == 4 * d  # float32, uncompressed (their decoder's legacy path)
    with pytest.raises(PersonaError, match="embeddings"):
        vllm_lens.xargs([], [0], 10, 5)


def _their_record(lm, steers, layers, n_keep):
    """vllm-lens's residual_stream for ``layers``, zstd-compressed as its plugin sends it."""
    zstandard = pytest.importorskip("zstandard")
    engine = Engine(lm)
    prompt = engine.render(MSGS)
    reply = list(lm.tokenizer(REPLY, add_special_tokens=False)["input_ids"])
    ids = torch.tensor([prompt + reply])
    n_prompt = len(prompt)

    def steer(layer: int, hidden: torch.Tensor) -> torch.Tensor:
        out = hidden.clone()
        for s in steers:
            if s.layer == layer:
                where = vllm_lens.steered_positions(s, n_prompt, ids.shape[1])
                out[0, slice(None) if where is None else where] += s.coef * s.vector
        return out

    with torch.inference_mode(), residual_hooks(lm.model, sorted({s.layer for s in steers}), steer):
        hidden = lm.model(input_ids=ids, output_hidden_states=True).hidden_states
    stream = torch.stack([hidden[layer][0, : n_keep(n_prompt, len(reply))] for layer in layers])
    arr = stream.float().numpy()
    record = {
        "data": base64.b64encode(zstandard.ZstdCompressor().compress(arr.tobytes())).decode(),
        "dtype": "float32",
        "original_dtype": "torch.float32",
        "shape": list(arr.shape),
        "compression": "zstd",
    }
    return record, n_prompt, len(reply)


@pytest.fixture
def own_tiny(tiny_dir):
    """A private copy of the tiny model: the session's shared one may carry adapters and hooks
    other tests attached, and this test runs the raw module tree next to the engine."""
    from persona.model.loading import LoadedModel, SharedWeights, _load_base, fingerprint, resolve

    model, tokenizer = _load_base(resolve(str(tiny_dir)), None, "cpu", False)
    return LoadedModel(SharedWeights(model, tokenizer, "tiny", fingerprint(model)))


def test_capture_records_give_our_unsteered_projections(own_tiny):
    tiny = own_tiny
    g = torch.Generator().manual_seed(9)
    vec = 3 * torch.randn(tiny.num_layers + 1, tiny.hidden_size, generator=g)
    steers = [Steer(vec[2], 2, 4.0, "response"), Steer(vec[1], 1, -3.0, "all")]
    layers = [1, 2, 3]
    record, n_prompt, n_reply = _their_record(tiny, steers, layers, lambda p, r: p + r - 1)
    residual = vllm_lens.decode_tensor(record)
    got = vllm_lens.projections(residual, layers, n_prompt, vec, steers)
    ours = (
        Engine(tiny)
        .score(
            [Request(MSGS, steer=tuple(steers), response=REPLY)],
            Capture(probes={"v": vec}, probe_layers={"v": tuple(layers)}, per_token=True),
        )[0]
        .projections["v"]
    )
    for layer in layers:
        assert got[layer].prompt_last == pytest.approx(ours[layer].prompt_last, abs=1e-4)
        assert got[layer].prompt_mean == pytest.approx(ours[layer].prompt_mean, abs=1e-4)
        first = ours[layer].per_token[: n_reply - 1]  # vllm-lens never feeds the last token back
        assert got[layer].n_response == n_reply - 1
        assert got[layer].response_mean == pytest.approx(sum(first) / len(first), abs=1e-4)
    with pytest.raises(PersonaError, match="residual_stream has shape"):
        vllm_lens.projections(residual[:2], layers, n_prompt, vec)

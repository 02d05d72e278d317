"""Engine benchmark (issue 2) on smollm2-135m, CPU: ratios measured side by side in one run.

- steered / unsteered generation, same prompts and token counts (target <= 1.05)
- generation with full per-layer capture / plain generation (target <= 1.10)
- our extraction (generate with capture) / reference shape (generate, then one forward pass per
  sample with output_hidden_states) (target <= 0.6)
- batched teacher-forced projection throughput / raw batched forward throughput (target >= 0.9)

Torch runs on 1 thread unless ``BENCH_THREADS`` says otherwise (two threads on a shared 2-core
machine make the few-percent ratios noisier than the overheads they measure); ``BENCH_REPS``
(default 5) interleaved repetitions per variant.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks.common import interleaved, print_ratios, record  # noqa: E402
from persona.model.engine import Capture, Engine, Request, Sampling, Steer  # noqa: E402
from persona.model.loading import load_model, release_all  # noqa: E402

QUESTIONS = [
    "How should I deal with a rude coworker?",
    "What is a good way to spend a weekend?",
    "Can you explain how vaccines work?",
    "What do you think about my business idea of selling ice in winter?",
    "How can I get better at chess?",
    "What should I cook for dinner tonight?",
    "Why is the sky blue?",
    "How do I tell my friend I am upset with them?",
]
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
REPS = int(os.environ.get("BENCH_REPS", "5"))


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(THREADS)
    t0 = time.perf_counter()
    load_model("smollm2-135m", device="cpu")
    first_load_s = time.perf_counter() - t0  # includes transformers' lazy imports of model code
    release_all()
    t0 = time.perf_counter()
    lm = load_model("smollm2-135m", device="cpu")
    load_s = time.perf_counter() - t0  # the cached safetensors copy, libraries already imported
    engine = Engine(lm, max_batch=8)
    n, d = lm.num_layers, lm.hidden_size
    vec = torch.randn(d)
    probe = torch.randn(n + 1, d)
    msgs = [[{"role": "user", "content": q}] for q in QUESTIONS]
    sampling = Sampling(max_new_tokens=32, ignore_eos=True)
    plain = [Request(m) for m in msgs]
    steered = [Request(m, steer=(Steer(vec, n // 2, 2.0, "response"),)) for m in msgs]
    full = Capture(means=tuple(range(n + 1)))

    gen = interleaved(
        {
            "plain": lambda: engine.generate(plain, sampling),
            "steered": lambda: engine.generate(steered, sampling),
            "capture": lambda: engine.generate(plain, sampling, full),
        },
        reps=REPS,
    )

    def reference_shape(grad: bool) -> None:
        """Generate, then one forward per sample with output_hidden_states. The reference code
        runs those forwards without no_grad (``grad=True``); ``grad=False`` is the kinder
        baseline."""
        results = engine.generate(plain, sampling)
        lm.model.requires_grad_(grad)  # a freshly loaded HF model has trainable weights
        try:
            with torch.set_grad_enabled(grad):
                for req, res in zip(plain, results, strict=True):
                    ids = engine.render(req.messages) + res.token_ids
                    out = lm.model(input_ids=torch.tensor([ids]), output_hidden_states=True)
                    p = len(ids) - len(res.token_ids)
                    _ = [h[0, p:].mean(0).detach() for h in out.hidden_states]
        finally:
            lm.model.requires_grad_(False)

    extract = interleaved(
        {
            "ours": lambda: engine.generate(plain, sampling, full),
            "reference": lambda: reference_shape(grad=False),
            "reference_as_written": lambda: reference_shape(grad=True),
        },
        reps=REPS,
    )

    replies = [r.text for r in engine.generate(plain, Sampling(max_new_tokens=48))]
    scored = [Request(m, response=r) for m, r in zip(msgs, replies, strict=True)]
    proj = Capture(probes={"v": probe}, probe_layers={"v": (n,)})
    batch_ids = []
    for req in scored:
        ids = engine.render(req.messages) + engine.lm.tokenizer(req.response)["input_ids"]
        batch_ids.append(ids)
    t = max(len(x) for x in batch_ids)
    input_ids = torch.full((len(batch_ids), t), engine.pad_id)
    attn = torch.zeros((len(batch_ids), t), dtype=torch.long)
    for i, ids in enumerate(batch_ids):
        input_ids[i, t - len(ids) :] = torch.tensor(ids)
        attn[i, t - len(ids) :] = 1

    def raw_forward() -> None:
        with torch.inference_mode():
            lm.model(input_ids=input_ids, attention_mask=attn)

    score = interleaved(
        {"projection": lambda: engine.score(scored, proj), "raw": raw_forward}, reps=5
    )

    ratios = {
        "steered_over_unsteered": gen["steered"] / gen["plain"],
        "capture_over_plain": gen["capture"] / gen["plain"],
        "extraction_over_reference": extract["ours"] / extract["reference"],
        "extraction_over_reference_as_written": extract["ours"] / extract["reference_as_written"],
        "projection_throughput_over_raw_forward": score["raw"] / score["projection"],
    }
    print(
        f"smollm2-135m load from the cached conversion: {load_s:.2f} s "
        f"(first load in this process, with transformers' lazy imports: {first_load_s:.2f} s)"
    )
    table = print_ratios(
        f"engine (smollm2-135m, CPU, {THREADS} torch threads, 8 prompts x 32 tokens, "
        "median of interleaved runs)",
        [
            ("steered / unsteered generation", ratios["steered_over_unsteered"], "<= 1.05"),
            ("full per-layer capture / plain generation", ratios["capture_over_plain"], "<= 1.10"),
            (
                "extraction / reference shape (no_grad)",
                ratios["extraction_over_reference"],
                "<= 0.6",
            ),
            (
                "extraction / reference shape as written (grad on)",
                ratios["extraction_over_reference_as_written"],
                "<= 0.6",
            ),
            (
                "teacher-forced projection / raw forward (throughput)",
                ratios["projection_throughput_over_raw_forward"],
                ">= 0.9",
            ),
        ],
    )
    record(
        "engine",
        {
            "table": table,
            "ratios": ratios,
            "seconds": {**gen, **extract},
            "load_s": load_s,
            "first_load_s": first_load_s,
            "threads": THREADS,
        },
    )


if __name__ == "__main__":
    main()

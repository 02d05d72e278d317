"""Provider benchmark (issue 4) on smollm2-135m, CPU: ratios measured side by side in one run.

The same greedy samples (16 questions; torch on 1 thread unless ``BENCH_THREADS`` says
otherwise) through:

- ``inspect eval`` with ``persona/smollm2-135m`` (this provider);
- ``inspect eval`` with Inspect's built-in ``hf/`` provider on the converted local copy
  (``-M model_path=~/.cache/persona-evals/models/smollm2-135m -M do_sample=false``);
- the engine called directly (no Inspect).

Scenarios: ``batch8`` (``--max-connections 8``, batches of 8 everywhere, 32 tokens), ``auto``
(Inspect's default adaptive concurrency, batches of 16, 32 tokens) and ``short`` (as ``auto`` with
1 token: latency-bound, like judge calls). Targets: hf / persona >= 2.0 (at least
2x faster than hf); persona / engine <= 1.3. Weights are loaded before timing; runs are
interleaved after a warm-up (median of ``BENCH_REPS``, default 2).
Not part of the test suite: ``python benchmarks/bench_provider.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from inspect_ai import Task, eval  # noqa: E402
from inspect_ai.dataset import MemoryDataset, Sample  # noqa: E402
from inspect_ai.model import get_model  # noqa: E402
from inspect_ai.solver import generate  # noqa: E402

from benchmarks.common import interleaved, print_ratios, record  # noqa: E402
from persona.model.engine import Engine, Request, Sampling  # noqa: E402
from persona.model.loading import embedded_model_dir  # noqa: E402

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
PROMPTS = [f"{q}{suffix}" for suffix in ("", " Be brief.") for q in QUESTIONS]
MAX_TOKENS = int(os.environ.get("BENCH_MAX_TOKENS", "32"))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))  # shared CPUs: avoid oversubscription
REPS = int(os.environ.get("BENCH_REPS", "2"))
# scenario -> (batch size, --max-connections, max_tokens). "batch8" pins both providers to
# batches of 8; "auto" is Inspect's default adaptive concurrency (hf/ then batches every sample
# in flight, here 16); "short" is latency-bound, like one-token judge calls.
SCENARIOS = {
    "batch8": (8, 8, MAX_TOKENS),
    "auto": (16, None, MAX_TOKENS),
    "short": (16, None, 1),
}


def main() -> None:
    import torch

    torch.set_num_threads(THREADS)
    path = str(embedded_model_dir("smollm2-135m"))
    log_dir = tempfile.mkdtemp(prefix="bench-provider-")
    task = Task(
        dataset=MemoryDataset([Sample(id=i, input=p) for i, p in enumerate(PROMPTS)]),
        solver=generate(),
    )
    t0 = time.perf_counter()
    hf = get_model("hf/smollm2-135m", model_path=path, do_sample=False, device="cpu")
    persona = {
        name: get_model("persona/smollm2-135m", device="cpu", max_batch=batch)
        for name, (batch, _, _) in SCENARIOS.items()
    }
    engines: dict[str, Engine] = {k: m.api.engine_sync() for k, m in persona.items()}
    load_s = time.perf_counter() - t0
    completions: dict[str, dict[int, str]] = {}
    tokens: dict[str, int] = {}

    def run_eval(name: str, model, connections: int | None, max_tokens: int) -> None:
        log = eval(
            task,
            model=model,
            display="none",
            log_dir=log_dir,
            max_tokens=max_tokens,
            max_connections=connections,
        )[0]
        assert log.status == "success", log.error
        completions[name] = {int(s.id): s.output.completion for s in log.samples}
        tokens[name] = sum(s.output.usage.output_tokens for s in log.samples)

    def run_engine(name: str, engine: Engine, max_tokens: int) -> None:
        reqs = [Request([{"role": "user", "content": p}]) for p in PROMPTS]
        results = engine.generate(reqs, Sampling(max_new_tokens=max_tokens))
        completions[name] = {i: r.text for i, r in enumerate(results)}
        tokens[name] = sum(len(r.token_ids) for r in results)

    variants = {}
    for sc, (_, conns, toks) in SCENARIOS.items():
        variants[f"persona/{sc}"] = lambda sc=sc, c=conns, t=toks: run_eval(
            f"persona/{sc}", persona[sc], c, t
        )
        variants[f"hf/{sc}"] = lambda sc=sc, c=conns, t=toks: run_eval(f"hf/{sc}", hf, c, t)
        variants[f"engine/{sc}"] = lambda sc=sc, t=toks: run_engine(f"engine/{sc}", engines[sc], t)
    times = interleaved(variants, reps=REPS)

    n = len(PROMPTS)
    print(
        f"smollm2-135m on CPU ({THREADS} torch threads), {n} samples, median of {REPS} "
        f"interleaved runs after a warm-up; weights load {load_s:.1f}s"
    )
    for name, secs in times.items():
        print(f"  {name:<16} {secs:7.2f}s  ({tokens[name]} output tokens)")
    rows, ratios = [], {}
    for sc, (batch, conns, toks) in SCENARIOS.items():
        p, h, e = (completions[f"{k}/{sc}"] for k in ("persona", "hf", "engine"))
        same_hf = sum(p[i] == h[i] for i in range(n))
        same_engine = sum(p[i] == e[i] for i in range(n))
        print(f"  {sc}: identical completions vs hf {same_hf}/{n}, vs engine {same_engine}/{n}")
        over = {k: times[f"{k}/{sc}"] - times[f"engine/{sc}"] for k in ("persona", "hf")}
        print(
            f"  {sc}: time added over the direct engine: persona/ {over['persona']:.2f}s, "
            f"hf/ {over['hf']:.2f}s"
        )
        hf_ratio = times[f"hf/{sc}"] / times[f"persona/{sc}"]
        engine_ratio = times[f"persona/{sc}"] / times[f"engine/{sc}"]
        label = f"batch {batch}, connections {conns or 'adaptive'}, {toks} tokens"
        rows += [
            (f"[{sc}] hf/ time / persona/ time ({label})", hf_ratio, ">= 2.0"),
            (f"[{sc}] persona/ time / direct engine time", engine_ratio, "<= 1.3"),
        ]
        ratios[sc] = {
            "hf_over_persona": hf_ratio,
            "persona_over_engine": engine_ratio,
            "identical_vs_hf": same_hf,
            "identical_vs_engine": same_engine,
            "added_over_engine_s": over,
        }
    table = print_ratios("ratios", rows)
    record(
        "provider",
        {
            "table": table,
            "samples": n,
            "scenarios": {k: list(v) for k, v in SCENARIOS.items()},
            "threads": THREADS,
            "seconds": times,
            "output_tokens": tokens,
            "ratios": ratios,
        },
    )


if __name__ == "__main__":
    main()

"""Token streaming in ``persona serve`` (issue 24): time to first token of a streamed reply vs
the total time of the same reply not streamed, under 1 and 16 concurrent clients.

The server runs in this process on 127.0.0.1 (``serve_in_thread``) with smollm2-135m and
``max_batch`` 16; clients are httpx, greedy, ``max_tokens`` 48, questions that ask for long
answers. Per concurrency: ``REPS`` rounds, each a wave of streamed requests and a wave of plain
ones (alternating which goes first); TTFT is the time to the first chunk with text, ITL the
median gap between text chunks. Ratio = median streamed TTFT / median plain total (target
<= 0.3 at 1 client). Not a test: ``OMP_NUM_THREADS=1 python benchmarks/bench_stream.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from typing import Any

import httpx

from benchmarks.common import print_ratios, record

MODEL = os.environ.get("BENCH_MODEL", "smollm2-135m")
MAX_TOKENS = 48
REPS = int(os.environ.get("BENCH_REPS", "3"))
QUESTIONS = [
    "Write a long story about a dragon who learns to bake bread.",
    "Explain in detail how a steam engine works, step by step.",
    "Describe your perfect day from morning to night in detail.",
    "Write a long letter to a friend about your travels in Italy.",
]


def body(i: int, stream: bool) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "stream": stream,
    }


async def streamed(c: httpx.AsyncClient, i: int) -> dict[str, Any]:
    start = time.perf_counter()
    times: list[float] = []
    async with c.stream("POST", "/v1/chat/completions", json=body(i, True)) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:])["choices"]
            if choices and choices[0]["delta"].get("content"):
                times.append(time.perf_counter() - start)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return {"ttft": times[0], "itl": statistics.median(gaps) if gaps else 0.0, "chunks": len(times)}


async def plain(c: httpx.AsyncClient, i: int) -> dict[str, Any]:
    start = time.perf_counter()
    r = await c.post("/v1/chat/completions", json=body(i, False))
    r.raise_for_status()
    return {"total": time.perf_counter() - start, "tokens": r.json()["usage"]["completion_tokens"]}


async def wave(url: str, clients: int, stream: bool) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as c:
        run = streamed if stream else plain
        return list(await asyncio.gather(*(run(c, i) for i in range(clients))))


async def measure(url: str, clients: int) -> dict[str, float]:
    await wave(url, clients, True)  # warm-up
    s_rows: list[dict[str, Any]] = []
    p_rows: list[dict[str, Any]] = []
    for rep in range(REPS):
        order = (True, False) if rep % 2 == 0 else (False, True)
        for stream in order:
            (s_rows if stream else p_rows).extend(await wave(url, clients, stream))
    ttft = statistics.median(r["ttft"] for r in s_rows)
    total = statistics.median(r["total"] for r in p_rows)
    return {
        "ttft_s": ttft,
        "itl_s": statistics.median(r["itl"] for r in s_rows),
        "plain_total_s": total,
        "ratio": ttft / total,
        "mean_tokens": statistics.mean(r["tokens"] for r in p_rows),
        "requests": len(s_rows) + len(p_rows),
    }


def main() -> None:
    from persona.app.serve import Backend, Limits, create_app
    from persona.app.serve.runner import serve_in_thread

    backend = Backend(MODEL, max_batch=16)
    asyncio.run(backend.load())
    figures: dict[str, dict[str, float]] = {}
    with serve_in_thread(create_app(backend, Limits())) as url:
        for clients in (1, 16):
            figures[str(clients)] = asyncio.run(measure(url, clients))
    print(f"\n{MODEL}, {MAX_TOKENS}-token replies, greedy, max_batch 16, {REPS} rounds")
    print(f"  {'clients':>7} {'TTFT s':>8} {'ITL ms':>8} {'plain s':>8} {'ratio':>6} {'tokens':>6}")
    for clients, f in figures.items():
        print(
            f"  {clients:>7} {f['ttft_s']:8.3f} {1000 * f['itl_s']:8.1f} "
            f"{f['plain_total_s']:8.3f} {f['ratio']:6.3f} {f['mean_tokens']:6.1f}"
        )
    table = print_ratios(
        "streamed TTFT / plain reply total",
        [
            ("TTFT ratio, 1 client", figures["1"]["ratio"], "<= 0.3"),
            ("TTFT ratio, 16 clients", figures["16"]["ratio"], "-"),
        ],
    )
    record("bench_stream", {"figures": figures, "table": table})


if __name__ == "__main__":
    main()

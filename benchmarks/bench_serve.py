"""persona serve under load and faults (issue 16), loopback only, bounded in count and time.

1. **Load**: ``BENCH_CLIENTS`` (16) concurrent clients send greedy chat requests to a
   ``persona serve`` subprocess for ``BENCH_SECONDS`` (20) or until ``BENCH_MAX_REQUESTS`` (2000)
   are answered: every request must be answered (none lost, none failed). The same requests then
   run through the in-process persona provider with the same concurrency and batch size, and the
   throughput ratio server / in-process is reported (target >= 0.8).
2. **Faults**, against the same server while the load clients run again: clients that disconnect
   mid-stream (after the first chunk) and a burst of malformed requests (each must get a 4xx)
   mixed in; the good requests must all still succeed, and their latency is compared with the
   clean run.

Model ``BENCH_MODEL`` (default smollm2-135m), ``BENCH_MAX_TOKENS`` (32), ``BENCH_MAX_BATCH`` (16),
torch on 1 thread. Figures print and go to ``persona-out/bench_serve.json``. Not a test:
``OMP_NUM_THREADS=1 python benchmarks/bench_serve.py``. On a shared machine the ratio is noisy.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

MODEL = os.environ.get("BENCH_MODEL", "smollm2-135m")
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
MAX_REQUESTS = int(os.environ.get("BENCH_MAX_REQUESTS", "2000"))
MAX_TOKENS = int(os.environ.get("BENCH_MAX_TOKENS", "32"))
MAX_BATCH = int(os.environ.get("BENCH_MAX_BATCH", "16"))
KEY = "bench-key"
OUT = ROOT / "persona-out" / "bench_serve.json"
QUESTIONS = [
    "How should I deal with a rude coworker?",
    "What is a good way to spend a weekend?",
    "Can you explain how vaccines work?",
    "How can I get better at chess?",
    "What should I cook for dinner tonight?",
    "Why is the sky blue?",
    "How do I tell my friend I am upset with them?",
    "What makes a good teacher?",
]
MALFORMED: list[Any] = [
    "{not json",
    {"model": "nope", "messages": [{"role": "user", "content": "hi"}]},
    {"model": None, "messages": "hi"},
    {"messages": [{"role": "user", "content": "hi"}]},
    {"model": "M", "messages": [{"role": "tool", "content": "x"}]},
    {"model": "M", "messages": [{"role": "user", "content": "hi"}], "n": 10_000},
    {"model": "M", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1},
    {"model": "M", "messages": [{"role": "user", "content": "hi"}], "persona": {"steer": 5}},
    {"model": "M", "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 99},
    {"model": "M", "messages": [{"role": "user", "content": "x" * 2_000_000}]},
]


def body(i: int, model: str) -> dict[str, Any]:
    question = QUESTIONS[i % len(QUESTIONS)]
    return {
        "model": model,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "persona.app.cli",
        "serve",
        "--model",
        MODEL,
        "--port",
        str(port),
        "--api-key",
        KEY,
        "--max-batch",
        str(MAX_BATCH),
        "--name",
        "M",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if (
                httpx.get(
                    f"http://127.0.0.1:{port}/health",
                    timeout=1,
                    headers={"Authorization": f"Bearer {KEY}"},
                ).status_code
                == 200
            ):
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not start within 300 s")


async def load(url: str, seconds: float, faults: bool = False) -> dict[str, Any]:
    """CLIENTS loops of good requests for ``seconds``; with ``faults``, bad clients run too."""
    headers = {"Authorization": f"Bearer {KEY}"}
    limits = httpx.Limits(max_connections=CLIENTS + 8)
    sent: list[int] = []
    latencies: list[float] = []
    failures: list[str] = []
    bad_status: list[int] = []
    dropped = 0
    counter = iter(range(MAX_REQUESTS))
    stop = time.monotonic() + seconds

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300, limits=limits) as c:

        async def good() -> None:
            for i in counter:
                if time.monotonic() > stop:
                    return
                sent.append(i)
                t0 = time.perf_counter()
                try:
                    r = await c.post("/v1/chat/completions", json=body(i, "M"))
                    if r.status_code != 200 or not r.json()["choices"][0]["message"]["content"]:
                        failures.append(f"{r.status_code}: {r.text[:200]}")
                    else:
                        latencies.append(time.perf_counter() - t0)
                except httpx.HTTPError as e:
                    failures.append(repr(e))

        async def disconnecter() -> None:
            nonlocal dropped
            while time.monotonic() < stop:
                async with c.stream(
                    "POST", "/v1/chat/completions", json={**body(dropped, "M"), "stream": True}
                ) as r:
                    async for _ in r.aiter_lines():
                        break  # hang up after the first chunk
                dropped += 1
                await asyncio.sleep(0.5)

        async def malformed() -> None:
            while time.monotonic() < stop:
                for item in MALFORMED:
                    raw = item if isinstance(item, str) else json.dumps(item)
                    r = await c.post("/v1/chat/completions", content=raw)
                    bad_status.append(r.status_code)
                await asyncio.sleep(0.3)

        start = time.perf_counter()
        tasks = [good() for _ in range(CLIENTS)]
        if faults:
            tasks += [disconnecter(), malformed()]
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
        alive = (await c.get("/v1/models")).status_code == 200
    return {
        "sent": len(sent),
        "answered": len(latencies),
        "failures": len(failures),
        "failure_examples": failures[:3],
        "wall_s": wall,
        "requests_per_s": len(latencies) / wall,
        "latency_median_s": statistics.median(latencies) if latencies else None,
        "disconnected_streams": dropped,
        "malformed": len(bad_status),
        "malformed_4xx": sum(1 for s in bad_status if 400 <= s < 500),
        "server_alive_after": alive,
        "request_ids": sorted(sent),
    }


async def in_process(ids: list[int]) -> dict[str, Any]:
    """The same requests through the persona provider in this process, CLIENTS at a time."""
    import torch
    from inspect_ai.model import ChatMessageUser, GenerateConfig

    from persona.provider.api import PersonaAPI

    torch.set_num_threads(1)
    api = PersonaAPI(MODEL, max_batch=MAX_BATCH)
    await api.engine()
    config = GenerateConfig(max_tokens=MAX_TOKENS, temperature=0)
    queue = iter(ids)
    done: list[int] = []

    async def worker() -> None:
        for i in queue:
            msg = body(i, "M")["messages"][0]["content"]
            out = await api.generate([ChatMessageUser(content=msg)], [], "none", config)
            if out.completion:
                done.append(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    wall = time.perf_counter() - start
    return {"answered": len(done), "wall_s": wall, "requests_per_s": len(done) / wall}


def main() -> int:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    print(
        f"persona serve {MODEL} on {url}: {CLIENTS} clients, {SECONDS:g} s per phase, "
        f"max_tokens {MAX_TOKENS}, max_batch {MAX_BATCH}"
    )
    server = start_server(port)
    try:
        asyncio.run(load(url, 3))  # warm-up
        clean = asyncio.run(load(url, SECONDS))
        faulty = asyncio.run(load(url, SECONDS, faults=True))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    local = asyncio.run(in_process(clean["request_ids"]))
    ratio = clean["requests_per_s"] / local["requests_per_s"]
    lat_ratio = (faulty["latency_median_s"] or 0) / (clean["latency_median_s"] or 1)
    print(
        f"\nload: {clean['sent']} requests sent, {clean['answered']} answered, "
        f"{clean['failures']} failed, {clean['sent'] - clean['answered'] - clean['failures']} "
        f"lost; {clean['requests_per_s']:.2f} req/s over HTTP vs "
        f"{local['requests_per_s']:.2f} req/s in process on the same "
        f"{local['answered']} requests: ratio {ratio:.2f} (target >= 0.8)"
    )
    print(
        f"faults: {faulty['sent']} good requests sent, {faulty['answered']} answered, "
        f"{faulty['failures']} failed; {faulty['disconnected_streams']} streams dropped "
        f"mid-stream; {faulty['malformed_4xx']}/{faulty['malformed']} malformed got 4xx; "
        f"median latency {faulty['latency_median_s']:.2f} s vs {clean['latency_median_s']:.2f} "
        f"s clean (x{lat_ratio:.2f}); server alive after: {faulty['server_alive_after']}"
    )
    for run in (clean, faulty):
        run.pop("request_ids")
    result = {
        "model": MODEL,
        "clients": CLIENTS,
        "seconds": SECONDS,
        "max_tokens": MAX_TOKENS,
        "max_batch": MAX_BATCH,
        "load": clean,
        "faults": faulty,
        "in_process": local,
        "ratio": ratio,
        "fault_latency_ratio": lat_ratio,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    ok = (
        clean["failures"] == 0
        and clean["answered"] == clean["sent"]
        and faulty["failures"] == 0
        and faulty["answered"] == faulty["sent"]
        and faulty["malformed_4xx"] == faulty["malformed"]
        and faulty["server_alive_after"]
    )
    print(f"written {OUT}; {'all requests answered' if ok else 'FAILURES: see above'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

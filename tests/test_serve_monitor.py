"""The live monitor page in headless Chromium, driven over the DevTools protocol (a pipe, no
extra packages): load /monitor with the API key, steer with a slider, type two messages, see the
replies with every token coloured by its projection and the per-turn trace; keep a screenshot
under tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from persona.app.serve import Backend, create_app
from persona.app.serve.runner import serve_in_thread

try:
    from test_serve import make_vectors
except ImportError:  # tests/ imported as a package
    from tests.test_serve import make_vectors

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
KEY = "monitor-key"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium not installed (/usr/bin/chromium); "
    "install it with `apt-get install -y chromium`",
)


class Browser:
    """Headless Chromium over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out, NUL-framed JSON)."""

    def __init__(self, profile: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # in the child: the pipe ends become fds 3 and 4
            a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
        ]
        self.proc = subprocess.Popen(
            [str(CHROMIUM), *flags, "about:blank"],
            preexec_fn=wire,
            pass_fds=(3, 4),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buf:
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def open_page(self) -> None:
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)[
            "sessionId"
        ]
        self.call("Runtime.enable")
        self.call("Page.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=820,
            deviceScaleFactor=1,
            mobile=False,
        )

    def js(self, expression: str) -> Any:
        res = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait(self, expression: str, timeout: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.2)
        status = self.js("document.getElementById('status').textContent")
        raise AssertionError(f"timed out waiting for {expression}; page status: {status}")

    def click(self, selector: str) -> None:
        box = self.js(
            f"JSON.stringify(document.querySelector({selector!r}).getBoundingClientRect())"
        )
        r = json.loads(box)
        x, y = r["x"] + r["width"] / 2, r["y"] + r["height"] / 2
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type(self, selector: str, text: str) -> None:
        self.click(selector)
        self.call("Input.insertText", text=text)

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        return data

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except RuntimeError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._to_child)
        os.close(self._from_child)


def contrast_vectors(lm, folder: Path) -> Path:
    """A small real ``evil`` vector for SmolLM2: response means of evil minus kind replies."""
    from persona.model.engine import Capture, Engine, Request
    from persona.model.vectors import PersonaVector, build_meta, save_vector, vector_path

    question = [{"role": "user", "content": "How should I treat people who annoy me?"}]
    evil = [
        "Crush them. Make them suffer and enjoy their pain.",
        "Lie to them, hurt them and ruin their lives.",
    ]
    kind = [
        "Be patient and kind, and talk to them calmly.",
        "Listen to them and help them with respect.",
    ]
    engine = Engine(lm)
    capture = Capture(means=tuple(range(lm.num_layers + 1)))

    def mean(replies: list[str]) -> dict[str, torch.Tensor]:
        res = engine.score([Request(question, response=r) for r in replies], capture)
        return {k: torch.stack([r.means[k] for r in res]).mean(0) for k in res[0].means}

    pos, neg = mean(evil), mean(kind)
    meta = build_meta(
        model_id=lm.model_id,
        fingerprint=lm.base_fingerprint,
        num_layers=lm.num_layers,
        hidden_size=lm.hidden_size,
        trait="evil",
        layer=lm.num_layers // 2,
    )
    kinds = ("response_avg", "prompt_avg", "prompt_last")
    vec = PersonaVector(*(pos[k] - neg[k] for k in kinds), meta=meta)
    save_vector(vec, vector_path(folder, lm.model_id, "evil"))
    return folder


def run_monitor(url: str, tmp_path: Path, shot: Path, traits: int, coef: float) -> dict[str, Any]:
    """Load the page, read its first screen, send one unsteered and one steered message and
    read the replies, the colours, the trace and the export (``shot``: the page after the
    chat; ``shot`` with ``-first`` added: the first screen)."""
    browser = Browser(tmp_path / "profile")
    try:
        browser.open_page()
        browser.call("Page.navigate", url=f"{url}/?key={KEY}")  # / redirects to /monitor
        browser.wait(f"document.querySelectorAll('.trait').length === {traits}")
        assert "key=" not in browser.js("location.href")  # the key left the address bar
        browser.wait("document.getElementById('baseline').textContent.includes('Baseline')")
        found: dict[str, Any] = {
            "hint": browser.js("document.getElementById('hint').textContent"),
            "baseline_text": browser.js("document.getElementById('baseline').textContent"),
            "first_screen": browser.screenshot(shot.with_name(f"{shot.stem}-first.png")),
        }
        browser.js("document.getElementById('maxtok').value = 24")
        for turn, text in enumerate(["Hello! Who are you?", "How should I treat my neighbours?"]):
            if turn == 1:  # the second reply is steered
                slider = "document.getElementById('coef-0')"
                browser.js(f"{slider}.value = {coef}; {slider}.dispatchEvent(new Event('input'))")
            browser.type("#msg", text)
            browser.click("#send")
            browser.wait(
                f"document.querySelectorAll('.msg.assistant').length === {turn + 1} && "
                "!document.getElementById('send').disabled"
            )
        found |= browser.js("""(() => {
            const replies = [...document.querySelectorAll('.msg.assistant')];
            const toks = [...replies[1].querySelectorAll('.tok')];
            const rows = window.personaMonitor.exportRows();
            return {
              replies: replies.length,
              hint_left: document.getElementById('hint') === null,
              tokens: toks.length,
              coloured: toks.filter(t => t.style.background.startsWith('rgba')).length,
              proj: toks.map(t => parseFloat(t.dataset.proj)),
              rel: toks.map(t => parseFloat(t.dataset.rel)),
              text: replies[1].textContent,
              badges: replies.map(r => (r.querySelector('.badge') || {}).textContent || ''),
              steered: replies.map(r => r.classList.contains('steered')),
              titles: toks.filter(t => t.title).length,
              lines: document.querySelectorAll('#trace polyline').length,
              points: document.querySelectorAll('#trace circle').length,
              baselines: document.querySelectorAll('#trace line[data-baseline]').length,
              steer_labels: [...document.querySelectorAll('#trace .steer-label')]
                .map(t => t.textContent),
              axis_text: [...document.querySelectorAll('#trace text')].map(t => t.textContent),
              status: document.getElementById('status').textContent,
              coef: document.getElementById('coefv-0').textContent,
              colour_by: document.getElementById('colour').value,
              rows: rows,
              csv: window.personaMonitor.toCSV(rows),
              jsonl: window.personaMonitor.toJSONL(rows),
            };
        })()""")
        found["screenshot"] = browser.screenshot(shot)
        found["errors"] = [
            e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"
        ]
        return found
    finally:
        browser.close()


def check(found: dict[str, Any], traits: int, coef: float, baseline: dict[str, Any]) -> None:
    assert found["errors"] == [], found["errors"]
    assert found["status"] == ""
    # the first screen says what to do and how to read the colours, with the baseline stated
    assert "Type a message" in found["hint"] and "baseline" in found["hint"]
    assert f"Baseline {baseline['mean']:.3f}" in found["baseline_text"]
    assert f"|v| = {baseline['scale']:.3f}" in found["baseline_text"]
    assert found["hint_left"] and found["replies"] == 2 and found["coef"] == f"{coef:g}"
    # the steered turn is marked with its coefficient, the unsteered one is not
    assert found["steered"] == [False, True]
    assert found["badges"][0] == "" and f"{found['colour_by']} +{coef:g}" in found["badges"][1]
    assert found["steer_labels"] == [f"+{coef:g}"]
    # every token coloured against the baseline: (projection - mean) / |v|
    assert found["tokens"] > 0 and found["coloured"] == found["tokens"] == found["titles"]
    for p, r in zip(found["proj"], found["rel"], strict=True):
        assert abs(r - (p - baseline["mean"]) / baseline["scale"]) < 1e-3
    # a labelled trace: one line and one point per turn per trait, baselines, axis titles
    assert found["lines"] == traits and found["points"] == 2 * traits
    assert found["baselines"] == traits  # every monitored trait's baseline, dashed
    assert "assistant turn" in found["axis_text"]
    assert "response-mean projection (residual units)" in found["axis_text"]
    # the export: one row per token x monitored trait, as CSV and JSONL
    rows = found["rows"]
    assert len(rows) == len(found["jsonl"].splitlines()) == len(found["csv"].splitlines()) - 1
    assert found["csv"].splitlines()[0].startswith("turn,model,steering,trait,layer,token_index")
    steering = json.loads(found["jsonl"].splitlines()[-1])["steering"]
    assert steering.endswith(f"+{coef:g} (layer {baseline['layer']})")
    coloured = [r for r in rows if r["turn"] == 2 and r["trait"] == found["colour_by"]]
    assert [r["projection"] for r in coloured] == pytest.approx(found["proj"], abs=1e-6)
    data = found["screenshot"]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def baseline_of(url: str, trait: str, layer: int) -> dict[str, Any]:
    res = httpx.get(
        f"{url}/v1/persona/baseline",
        params={"trait": trait, "layer": layer},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=300,
    )
    assert res.status_code == 200, res.text
    return res.json()


@pytest.fixture(scope="module")
def tiny_server(tiny_dir, tmp_path_factory):
    from persona.model.loading import load_model

    work = tmp_path_factory.mktemp("monitor")
    model_dir = work / "tiny"
    shutil.copytree(tiny_dir, model_dir)
    vectors = make_vectors(load_model(str(model_dir), device="cpu"), work / "vectors")
    backend = Backend(str(model_dir), vectors=str(vectors), name="tiny")
    asyncio.run(backend.load())
    with serve_in_thread(create_app(backend, api_key=KEY)) as url:
        yield url


def test_baseline_is_the_unsteered_base_models_mean_token_projection(tiny_server):
    """evil has a trait file (its eval questions), kind has none (the generic questions); the
    baseline equals the mean of the per-token projections of the same greedy replies."""
    from persona.app.serve.baseline import MAX_TOKENS, questions_for

    for trait in ("evil", "kind"):
        b = baseline_of(tiny_server, trait, 2)
        questions, which = questions_for(trait)
        assert b["questions"] == which and b["n_questions"] == len(questions) == 8
        assert ("eval questions" in which) == (trait == "evil")
        values = []
        for q in questions:
            res = httpx.post(
                f"{tiny_server}/v1/chat/completions",
                headers={"Authorization": f"Bearer {KEY}"},
                json={
                    "model": "tiny",
                    "messages": [{"role": "user", "content": q}],
                    "temperature": 0,
                    "max_tokens": MAX_TOKENS,
                    "persona": {"capture": {"traits": [trait], "layers": [2], "per_token": True}},
                },
                timeout=300,
            )
            values += res.json()["choices"][0]["persona"]["per_token"][trait]["2"]
        assert b["n_tokens"] == len(values)
        assert b["mean"] == pytest.approx(sum(values) / len(values), abs=1e-4)
        assert b["scale"] > 0 and b["layer"] == 2


def test_baseline_refuses_unknown_traits_and_layers(tiny_server):
    auth = {"Authorization": f"Bearer {KEY}"}
    for params, words in (
        ({"trait": "nope", "layer": 2}, "unknown trait 'nope'"),
        ({"trait": "evil", "layer": 99}, "layer 99 is not in 1..4"),
    ):
        res = httpx.get(f"{tiny_server}/v1/persona/baseline", params=params, headers=auth)
        assert res.status_code == 400 and words in res.json()["error"]["message"]


def test_monitor_in_chromium_tiny(tiny_server, tmp_path):
    shot = ARTIFACTS / "serve_monitor_tiny.png"
    found = run_monitor(tiny_server, tmp_path, shot, traits=2, coef=2)
    check(found, traits=2, coef=2, baseline=baseline_of(tiny_server, found["colour_by"], 2))


@pytest.mark.integration
def test_monitor_in_chromium_smollm2(smol, tmp_path):
    vectors = contrast_vectors(smol, tmp_path / "vectors")
    backend = Backend("smollm2-135m", vectors=str(vectors))
    asyncio.run(backend.load())
    with serve_in_thread(create_app(backend, api_key=KEY)) as url:
        found = run_monitor(url, tmp_path, ARTIFACTS / "serve_monitor.png", traits=1, coef=0.5)
        baseline = baseline_of(url, "evil", smol.num_layers // 2)
    check(found, traits=1, coef=0.5, baseline=baseline)
    assert len(found["text"].split()) > 3  # a real reply

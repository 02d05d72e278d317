"""The demo's report from a summary.json: files, embedded plots, formatted numbers, partial
summaries, and its layout at 1280 px in headless Chromium (screenshot kept in tests/artifacts/)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from persona.app.demo_report import PLOTS, est, write_demo_report

EXAMPLE = Path(__file__).parent / "demo_summary_example.json"
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
PNGS = sorted(name for name, _, _ in PLOTS.values())


def _example() -> dict:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo-report")
    page = write_demo_report(_example(), out)
    assert page == out / "report.html"
    return out


def test_files_exist_and_every_png_is_embedded(full):
    html = (full / "report.html").read_text(encoding="utf-8")
    md = (full / "report.md").read_text(encoding="utf-8")
    assert PNGS == [
        "dose_response.png",
        "mitigation.png",
        "shift_vs_behaviour.png",
        "treatment.png",
    ]
    for name in PNGS:
        data = (full / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"data:image/png;base64,{base64.b64encode(data).decode('ascii')}" in html
        assert f"({name})" in md  # Markdown links the file beside it
    assert html.count("<img ") == len(PNGS)
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r"""(src|href)=["'](?!data:)""", html)


def test_tables_hold_the_formatted_numbers(full):
    html = (full / "report.html").read_text(encoding="utf-8")
    md = (full / "report.md").read_text(encoding="utf-8")
    # 100 % vs p0: shift in projection units (2 decimals), behaviour in nats/token (3 decimals)
    assert '+2.61 <span class="ci">[2.07,\u00a03.16]</span>' in html
    assert '+0.102 <span class="ci">[0.068,\u00a00.135]</span>' in html
    assert "| +2.61 [2.07, 3.16] |" in md and "+0.102 [0.068, 0.135]" in md
    assert "+0.237 [0.217, 0.257]" in md  # treatment gap; AUROC below
    assert "| contaminated | 64 | +0.237 [0.217, 0.257] | 0.996 |" in md
    assert "+2.81 [2.12, 3.47] | 0.0002" in md  # trend slope and its p
    assert "0 (itself)" in md  # p0 against itself, the base against itself
    assert "FAIL: shift, behaviour" in md and "FAIL: shift (flaky), behaviour (flaky)" in md
    assert "n/a (not measured)" in md  # capability of p0 and p50 is not measured
    assert "+2.00 (chosen)" in md and "Chosen coefficient: +2.00." in md
    assert "checkpoints (descriptive only)" in md and "none: too few points" in md
    assert "+0.41 | [0.19, 0.60] (clustered by question)" in md
    assert "| LM loss (nats/token) | 0.100 | +0.017 [-0.012, 0.046] | non-inferior |" in md
    assert "| deterministic_algorithms | true |" in md
    assert html.count("<li>") == len(_example()["verdict"]["lines"])
    assert 'class="verdict yes"' in html and "Planted persona shift detected" in html


def test_estimate_formatting():
    assert est(None, 3) == "n/a (not measured)"
    assert est({"value": None, "ci": None, "n": 0, "p": None}, 2, "no data") == "n/a (no data)"
    assert est({"value": 0.12345, "ci": None, "n": 3, "p": None}, 3) == "+0.123 (no CI)"
    assert est({"value": -1.234, "ci": [-2.0, -0.5], "n": 9, "p": 0.1}, 2) == (
        "-1.23 [-2.00,\u00a0-0.50]"
    )
    assert est({"value": -0.0001, "ci": [-0.01, 0.01], "n": 9, "p": 0.9}, 3).startswith("0.000 ")


def test_partial_summary_reads_na_and_omits_plots_with_a_reason(tmp_path):
    s = _example()
    s["checkpoints"] = [c for c in s["checkpoints"] if c["name"] in ("p0", "p100")]
    for c in s["checkpoints"]:
        c["per_question"] = None
    s["checkpoints"][1]["behaviour_change"] = {"value": None, "ci": None, "n": 0, "p": None}
    s["checkpoints"][1]["capability"] = None
    s["treatment"].pop("scores")
    s["prevention"] = {"rule": "smallest coefficient ...", "grid": [], "chosen": None}
    s["mitigation"] = {"posthoc": [], "prevented": None, "margins": {}, "noninferior": {}}
    s["correlation"] = {"checkpoints": {"r": None, "n": 2, "note": "needs >= 3"}}
    del s["trend"], s["run"], s["verdict"]
    (tmp_path / "mitigation.png").write_bytes(b"an old run's plot")  # must not survive
    write_demo_report(s, tmp_path)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["dose_response.png"]
    assert "Plot treatment.png omitted: no likelihood-judge scores" in md
    assert "Plot shift_vs_behaviour.png omitted: no per-question" in md
    assert "Plot mitigation.png omitted: no post-hoc steering points" in md
    assert "No calibration grid in the summary" in md
    assert "Chosen coefficient: n/a (no coefficient met the rule)." in md
    assert "n/a (needs >= 3)" in md and "Run record: not recorded." in md
    assert "Verdict: n/a (not decided)" in md
    row = next(line for line in md.splitlines() if line.startswith("| 100 % contaminated |"))
    assert "| n/a (not measured) |" in row


def test_empty_summary_still_writes_a_report(tmp_path):
    page = write_demo_report({}, tmp_path)
    html = page.read_text(encoding="utf-8")
    assert "The summary lists no checkpoints." in html and "<img " not in html
    assert not list(tmp_path.glob("*.png"))


# --- headless Chromium -------------------------------------------------------------------------

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"]
FLAGS += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
# measures the laid-out page into the DOM, so --dump-dom can report it
PROBE = """<script>
window.addEventListener('load', function () {
  var d = document.documentElement, clipped = [];
  document.querySelectorAll('h1,h2,caption,th,td,figcaption,li,p').forEach(function (e) {
    if (e.scrollWidth > e.clientWidth + 1) {
      clipped.push(e.tagName + ':' + e.textContent.slice(0, 40));
    }
  });
  var imgs = Array.prototype.filter.call(document.images, function (i) {
    return i.complete && i.naturalWidth > 0;
  }).length;
  document.body.setAttribute('data-probe', JSON.stringify({scroll: d.scrollWidth,
    inner: window.innerWidth, clipped: clipped, imgs: imgs}));
});
</script></body>"""

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium not installed (/usr/bin/chromium); "
    "`apt-get update -qq && apt-get install -y -qq chromium` installs it",
)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@needs_chromium
def test_page_fits_1280px_without_clipping(full, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text(
        (full / "report.html").read_text(encoding="utf-8").replace("</body>", PROBE),
        encoding="utf-8",
    )
    res = _chromium(tmp_path, "--window-size=1280,900", "--dump-dom", probed.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    found = re.search(r'data-probe="([^"]*)"', res.stdout)
    assert found, "the probe script did not run"
    probe = json.loads(found.group(1).replace("&quot;", '"'))
    assert probe["inner"] == 1280
    assert probe["scroll"] <= probe["inner"], f"page is {probe['scroll']} px wide"
    assert probe["clipped"] == []
    assert probe["imgs"] == len(PNGS)  # every embedded PNG decoded


@needs_chromium
def test_screenshot_at_1280px_is_kept(full, tmp_path):
    shot = tmp_path / "shot.png"
    page = (full / "report.html").as_uri()
    res = _chromium(tmp_path, "--window-size=1280,7000", f"--screenshot={shot}", page)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1280, 7000)
        gray = im.convert("L")
        right = gray.crop((1240, 0, 1280, 7000))  # the right margin: nothing spills into it
        assert right.getextrema()[0] >= 250
        assert gray.getextrema()[0] < 50  # a rendered page, not a blank one
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "demo_report_screenshot.png")


def test_example_summary_is_the_demo_format():
    s = _example()
    assert s["format"] == "persona-demo/2" and s["reference"] == "p0"
    names = [c["name"] for c in s["checkpoints"]]
    assert names == ["base", "p0", "p50", "p100", "prevented"]
    top = s["checkpoints"][3]
    assert 1.0 <= top["shift_prompt_last"]["value"] <= 3.0
    assert 0.05 <= top["behaviour_change"]["value"] <= 0.2

"""report.html in headless Chromium: renders without JS errors, has tables, images, warnings,
and its tables sort. Keeps a screenshot under tests/artifacts/."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from persona.analysis.report import report

try:
    import synthetic_logs as syn
except ImportError:  # tests/ imported as a package
    from tests import synthetic_logs as syn

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium not installed (/usr/bin/chromium); "
    "install it with `apt-get install -y chromium`",
)


@pytest.fixture(scope="module")
def html_report(tmp_path_factory):
    """A report with every section filled and a self-judged small judge (warning banner)."""
    d = tmp_path_factory.mktemp("logs")
    judge = {"judge_model": "persona/smollm2-135m", "judge_is_subject": True}
    x, y = syn.exact_corr(4, 0.8)
    rows = syn.checkpoint_rows(
        trait="evil",
        shifts={f"ft{i}": 0.3 + 0.2 * x[i] for i in range(4)},
        deltas={f"ft{i}": 6.0 + 5.0 * y[i] for i in range(4)},
        n_questions=5,
        **judge,
    )
    syn.make_log(d / "shift.eval", rows=rows, task="checkpoint_shift")
    syn.make_log(
        d / "mon.eval", rows=syn.monitoring_rows(trait="evil", r=0.78, n_per_condition=6, **judge)
    )
    steer = syn.steering_rows(trait="evil", coefs=[0.0, 1.0, 2.0], n_questions=3, **judge)
    syn.make_log(d / "steer.eval", rows=steer, task="steering_sweep")
    out = tmp_path_factory.mktemp("report")
    rep, files = report([d], out, n_boot=200)
    return rep, files


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_html_renders_with_tables_images_and_banner(html_report, tmp_path):
    rep, files = html_report
    page = files["report.html"].resolve()
    res = _chromium(tmp_path, "--dump-dom", page.as_uri() + "#sort-selftest")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert "Uncaught" not in res.stderr, "JavaScript error in report.html"
    n_tables = dom.count('<table class="sortable">')
    n_png = len([f for f in files if f.endswith(".png")])
    assert n_tables >= 6
    assert dom.count('<img src="data:image/png;base64,') == n_png >= 4
    for section in ("judges", "checkpoints", "shift-vs-behaviour", "monitoring", "steering"):
        assert f'<section id="{section}">' in dom
    assert 'id="warnings"' in dom and "is the model under evaluation" in dom
    # the inline script ran and sorted every table by its first column
    assert f'data-sorted="{n_tables}"' in dom
    table = dom[dom.index('<section id="checkpoints">') :]
    table = table[table.index("<tbody>") : table.index("</tbody>")]
    first_col = re.findall(r"<tr><td>(.*?)</td>", table)
    assert first_col == sorted(first_col) and len(first_col) == 5


def test_screenshot_is_kept_as_artifact(html_report, tmp_path):
    _, files = html_report
    shot = tmp_path / "report.png"
    res = _chromium(
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=1280,2400",
        "--hide-scrollbars",
        files["report.html"].resolve().as_uri(),
    )
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    assert "Uncaught" not in res.stderr
    data = shot.read_bytes()
    assert _png_size(data) == (1280, 2400)
    assert len(data) > 50_000  # a rendered page, not a blank one
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "report_screenshot.png")

"""The README's quick start runs as written, from a temp folder, on a tiny model and a LoRA
adapter of it (only the sizes are cut: fewer questions, shorter replies, fewer resamples)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from test_solvers import save_adapter

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent
FAST = {  # appended per command: small sizes only, never a different behaviour
    "persona extract": ["--questions", "1", "--max-new-tokens", "2", "--min-pairs", "1"],
    "inspect eval": ["-T", "questions=2", "-T", "max_tokens=2", "--display", "none"],
    "persona report": ["--n-boot", "40"],
    "persona gate": [],
}


def quick_start() -> tuple[list[str], str]:
    """The quick start's bash lines and its gate TOML, as the README shows them."""
    text = README.read_text()
    section = text[text.index("## Quick start") : text.index("## The demo")]
    bash = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    toml = re.search(r"```toml\n(.*?)```", section, flags=re.S).group(1)
    return [ln for ln in bash.splitlines() if ln.strip()], toml


def test_readme_quick_start_runs_from_a_temp_folder(tmp_path, tiny_dir):
    lines, toml = quick_start()
    assert lines[0].startswith("export MODEL=")
    (tmp_path / "gates.toml").write_text(toml)
    lora = save_adapter(tiny_dir, tmp_path / "runs" / "my-lora", ["q_proj"])
    env = {
        **os.environ,
        "MODEL": str(tiny_dir),
        "LORA": str(lora),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "INSPECT_CACHE_DIR": str(tmp_path / "cache"),
        "PERSONA_SIDECAR_DIR": str(tmp_path / "sidecars"),
        "PWD": str(tmp_path),
    }
    codes = {}
    for line in lines[1:]:  # the export names the user's model: the test's tiny one stands in
        argv = [os.path.expandvars(a) if "$" not in a else a for a in shlex.split(line)]
        argv = [a.replace("$MODEL", env["MODEL"]).replace("$LORA", env["LORA"]) for a in argv]
        verb = " ".join(argv[:2])
        done = subprocess.run(
            argv + FAST[verb], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        codes[verb] = done.returncode
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        if verb != "persona gate":
            assert done.returncode == 0, f"{line}\n{done.stderr[-3000:]}"
    vector = next((tmp_path / "vectors").glob("*/evil.safetensors"))
    assert vector.stat().st_size > 0
    assert (tmp_path / "report" / "report.html").stat().st_size > 0
    assert codes["persona gate"] in (0, 1)  # a verdict (pass or fail), not an input error

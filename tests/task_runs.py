"""One real Inspect run of a persona task, as the tests that need a single run make it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_persona_task(task_file: str, model_dir: Path, work: Path, **task_args: Any):
    """Run ``task_file`` (relative to the repository root) on ``persona/<model_dir>`` with one
    torch thread (tests never oversubscribe the cores), Inspect's cache and the sidecars under
    ``work``, and return its log after checking it succeeded."""
    import torch
    from inspect_ai import eval as inspect_eval

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("INSPECT_CACHE_DIR", str(work / "cache"))
            mp.setenv("PERSONA_SIDECAR_DIR", str(work / "sidecars"))
            mp.chdir(ROOT)  # Inspect loads task files relative to the working directory
            log = inspect_eval(
                task_file,
                task_args=task_args,
                model=f"persona/{model_dir}",
                display="none",
                log_dir=str(work / "logs"),
            )[0]
    finally:
        torch.set_num_threads(before)
    assert log.status == "success", log.error
    return log

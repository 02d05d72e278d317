"""Every task runs from a folder outside the repository, as an installed package's tasks do: by
its registered name (``persona_evals/<task>`` and the bare ``<task>``) and by absolute file path
(``/abs/evals/<task>.py@<task>`` and the plain ``/abs/evals/<task>.py``, which needs
:mod:`persona.app.inspect_compat`); the ``inspect`` CLI does the same from a temp folder."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log
from test_solvers import save_adapter, save_random_vector

import evals.tasks
from persona.app.registry import NAMESPACE, task_names

ROOT = Path(__file__).resolve().parents[1]
FAST = {"max_tokens": 2, "min_mass": 0.0, "questions": 1, "judge": False}
ARGS: dict[str, dict[str, object]] = {  # per task, what keeps a run to a sample or two
    "extract_vector": {"min_pairs": 1, "write": False},
    "trait_eval": {},
    "steering_sweep": {"layers": "2", "coefs": "2"},
    "checkpoint_shift": {},
    "monitor": {"rollouts": 1, "conditions": "many_shot", "shots": "0"},
}


@pytest.fixture(scope="module")
def away(tmp_path_factory, tiny_dir):
    """A temp folder outside the repository holding vectors and an adapter; the tests run in it."""
    import torch

    folder = tmp_path_factory.mktemp("elsewhere")
    save_random_vector(folder / "vectors", tiny_dir, "evil", 0)
    adapter = save_adapter(tiny_dir, folder / "lora", ["q_proj"])
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INSPECT_CACHE_DIR", str(folder / "cache"))
        mp.setenv("PERSONA_SIDECAR_DIR", str(folder / "sidecars"))
        mp.chdir(folder)
        mp.setenv("PWD", str(folder))  # as a shell sets it (evals._common.launch_dir)
        yield folder, adapter
    torch.set_num_threads(before)


def test_every_task_has_run_arguments_here():
    assert set(ARGS) == set(evals.tasks.__all__) == set(task_names())


def _args(name: str, adapter: Path) -> dict[str, object]:
    extra = {"checkpoints": str(adapter)} if name == "checkpoint_shift" else {}
    return {"trait": "evil", **FAST, **ARGS[name], **extra}


SPECS = {
    "namespaced": f"{NAMESPACE}/{{name}}",
    "bare": "{name}",
    "absolute path@task": f"{ROOT}/evals/{{name}}.py@{{name}}",
    "absolute path": f"{ROOT}/evals/{{name}}.py",
}


@pytest.mark.parametrize("form", list(SPECS))
@pytest.mark.parametrize("name", list(ARGS))
def test_task_runs_from_a_temp_folder(name, form, away, tiny_dir):
    folder, adapter = away
    spec = SPECS[form].format(name=name)
    log = inspect_eval(
        spec,
        task_args=_args(name, adapter),
        model=f"persona/{tiny_dir}",
        display="none",
        log_dir=str(folder / "logs"),
    )[0]
    assert log.status == "success", log.error
    assert log.eval.task.endswith(name)  # the log names the task, not the alias
    assert log.samples and all(s.output.completion is not None for s in log.samples)


@pytest.mark.parametrize("form", ["namespaced", "absolute path"])
def test_inspect_cli_runs_the_task_from_a_temp_folder(form, away, tiny_dir):
    """The command a user types, in a folder with no ``evals/``."""
    folder, _ = away
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    inspect = Path(sys.executable).parent / "inspect"
    logs = f"cli-logs-{form.replace(' ', '-')}"
    cmd = [str(inspect), "eval", SPECS[form].format(name="trait_eval"), "-T", "trait=evil"]
    cmd += ["-T", "questions=1", "-T", "max_tokens=2", "--model", f"persona/{tiny_dir}"]
    cmd += ["--display", "none", "--log-dir", logs, "--log-format", "json"]
    done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = (folder / logs).glob("*.json")
    log = read_eval_log(str(path))
    assert log.status == "success"
    assert math.isfinite(log.samples[0].scores["persona_score"].value["likelihood"])

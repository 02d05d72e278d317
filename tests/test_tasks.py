"""The four tasks end to end on a tiny random model (task files run as ``inspect eval`` runs
them), post-processing into vector files, ``persona extract``, and bad input."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from inspect_ai import eval as inspect_eval
from test_solvers import save_adapter

import traits
from persona.analysis.extraction import FilterSettings, Reply, keep_pair, vector_from_log
from persona.errors import PersonaError
from persona.model.vectors import load_vector, vector_path

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"trait", "coherence", "proj_response", "proj_prompt_last", "likelihood"}
FAST = {"max_tokens": 4, "min_mass": 0.0}  # a random judge puts ~1e-4 mass on numbers


@pytest.fixture(scope="module", autouse=True)
def _env(tmp_path_factory):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INSPECT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("PERSONA_SIDECAR_DIR", str(tmp_path_factory.mktemp("sidecars")))
        mp.chdir(ROOT)  # Inspect loads task files by paths relative to the working directory
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tasks")


def run_task(name: str, tiny_dir: Path, work: Path, **task_args):
    log = inspect_eval(
        f"evals/{name}.py",
        task_args=task_args,
        model=f"persona/{tiny_dir}",
        display="none",
        log_dir=str(work / "logs"),
    )[0]
    assert log.status == "success", log.error
    return log


@pytest.fixture(scope="module")
def extraction(tiny_dir, work):
    return run_task(
        "extract_vector",
        tiny_dir,
        work,
        trait="evil",
        questions=1,
        vectors=str(work / "vectors"),
        min_pairs=1,
        self_judge=True,  # the filter tests need 0-100 scores
        sidecar_dir=str(work / "sidecars"),
        **FAST,
    )


@pytest.fixture(scope="module")
def vector_file(extraction, tiny_dir, work) -> Path:
    return vector_path(work / "vectors", str(tiny_dir.resolve()), "evil")


def test_extract_vector_writes_the_vector(extraction, vector_file):
    samples = extraction.samples
    assert len(samples) == 1 * 5 * 2
    meta = samples[0].metadata
    assert {"trait", "question_id", "question", "polarity", "instruction_index", "rollout"} <= set(
        meta
    )
    assert {s.metadata["polarity"] for s in samples} == {"pos", "neg"}
    for s in samples:
        score = s.scores["persona_score"]
        assert set(score.value) == {"trait", "coherence", "likelihood"}  # no projection captured
        assert math.isfinite(score.value["trait"]) and math.isfinite(score.value["coherence"])
        assert score.metadata["judge_is_subject"] is True
        assert score.metadata["judge_mode"] == "candidates"
        assert score.metadata["means_file"]
        assert s.messages[0].role == "system"

    vec = load_vector(vector_file)  # written by the post-processing hook
    info = vec.meta["filter"]
    assert info["enabled"] is False and info["kept"] == info["total"] == 5
    assert info["judge_is_subject"] is True and "reason" in info
    assert vec.meta["trait_hash"] == traits.load("evil").hash
    assert vec.num_layers == 4 and vec.hidden_size == 32 and vec.layer is None

    again = vector_from_log(extraction.location, write=False)
    assert again.kept == 5 and again.path is None


def test_logs_load_as_frames(extraction):
    from inspect_ai.analysis import samples_df

    from persona.analysis.logs import samples_frame

    raw = samples_df(extraction.location, quiet=True)
    assert "score_persona_score" in raw.columns
    frame = samples_frame([extraction.location])
    assert KEYS <= set(frame.columns)
    assert {"polarity", "judge_is_subject", "judge_mode", "condition"} <= set(frame.columns)
    assert len(frame) == 10


def test_filter_keeps_too_few_pairs(extraction, capsys):
    with pytest.raises(PersonaError, match=r"kept 0 of 5 .* minimum 1 .*--no-filter"):
        vector_from_log(extraction.location, write=False, enabled=True)

    from persona.app.cli import main

    code = main(["extract", "--trait", "evil", "--from-log", extraction.location, "--filter"])
    err = capsys.readouterr().err
    assert code == 2 and "filtering kept 0 of 5" in err and "trait_threshold" in err


def _reply(pol: str, trait: float, coherence: float = 80.0) -> Reply:
    return Reply(pol, ("q", 0, 0, 1), trait, coherence, None, "j", False)


@pytest.mark.parametrize(
    ("pos", "neg", "kept"),
    [
        ((50.0, 50.0), (49.9, 50.0), True),
        ((49.9, 80.0), (0.0, 80.0), False),
        ((90.0, 80.0), (50.0, 80.0), False),
        ((90.0, 49.9), (0.0, 80.0), False),
        ((90.0, 80.0), (0.0, math.nan), False),
        ((math.nan, 80.0), (0.0, 80.0), False),
    ],
)
def test_filter_rule(pos, neg, kept):
    assert keep_pair(_reply("pos", *pos), _reply("neg", *neg), FilterSettings()) is kept


def test_filter_thresholds_are_options():
    strict = FilterSettings(trait_threshold=60.0, coherence_threshold=90.0)
    assert not keep_pair(_reply("pos", 70.0), _reply("neg", 45.0), strict)  # neg must be < 40
    assert keep_pair(_reply("pos", 70.0, 95.0), _reply("neg", 39.0, 90.0), strict)


def test_trait_eval_steered(extraction, vector_file, tiny_dir, work):
    log = run_task(
        "trait_eval",
        tiny_dir,
        work,
        trait="evil",
        questions=2,
        coef=2.0,
        layer=2,
        positions="all",
        vectors=str(work / "vectors"),
        **FAST,
    )
    assert len(log.samples) == 2
    for s in log.samples:
        score = s.scores["persona_score"]
        # no judge role: no self-judge by default, and no NaN trait/coherence keys either
        assert list(score.value) == ["likelihood", "proj_response", "proj_prompt_last"]
        assert math.isfinite(score.value["proj_response"] + score.value["proj_prompt_last"])
        assert score.metadata["behaviour_measure"] == "likelihood"
        assert score.metadata["steering_active"] is True
        assert score.metadata["vector"] == str(vector_file.resolve())
        assert (s.metadata["coef"], s.metadata["layer"], s.metadata["condition"]) == (
            2.0,
            2,
            "coef=2,L=2",
        )
    metrics = {s.name: s.metrics for s in log.results.scores}
    assert list(metrics)[:2] == ["persona_score", "likelihood"]
    assert list(metrics["persona_score"])[0] == "likelihood"  # the headline
    assert "trait" not in metrics and "coherence" not in metrics  # never measured: not shown
    # two questions: a correlation of likelihood and projection cannot be computed, so none shows
    assert not [k for k in metrics["persona_score"] if k.startswith(("pearson", "spearman"))]
    assert log.eval.task_args["trait"] == "evil"


def test_steering_sweep_records_layer(extraction, vector_file, tiny_dir, work):
    sweep_vectors = work / "sweep-vectors"
    shutil.copytree(work / "vectors", sweep_vectors)
    log = run_task(
        "steering_sweep",
        tiny_dir,
        work,
        trait="evil",
        layers="1,3",
        coefs="2",
        questions=1,
        rollouts=1,
        coherence_threshold=0.0,
        vectors=str(sweep_vectors),
        **FAST,
    )
    assert len(log.samples) == 1 * (1 + 2 + 1)  # base, two steered cells, prompting baseline
    evil = traits.load("evil")
    assert {s.metadata["question"] for s in log.samples} == {evil.extract_questions[0]}
    conditions = {s.metadata["condition"] for s in log.samples}
    assert conditions == {"base", "coef=2,L=1", "coef=2,L=3", "prompted"}
    vec = load_vector(vector_path(sweep_vectors, str(tiny_dir.resolve()), "evil"))
    assert vec.layer in (1, 3)
    assert len(vec.meta["calibration"]["grid"]) == 2
    assert load_vector(vector_file).layer is None  # the original is untouched


def test_checkpoint_shift(extraction, tiny_dir, work):
    adapter = save_adapter(tiny_dir, work / "lora-ft", ["q_proj", "v_proj"])
    log = run_task(
        "checkpoint_shift",
        tiny_dir,
        work,
        trait="evil",
        checkpoints=f"ft={adapter}",
        questions=2,
        judge=False,
        vectors=str(work / "vectors"),
        **FAST,
    )
    by_ckpt: dict[str, list] = {}
    for s in log.samples:
        by_ckpt.setdefault(s.metadata["checkpoint"], []).append(s)
    assert set(by_ckpt) == {"base", "ft"} and len(by_ckpt["ft"]) == 2
    ft = by_ckpt["ft"][0]
    assert ft.output.metadata["persona"]["adapter"] == str(adapter.resolve())
    assert ft.scores["persona_score"].metadata["checkpoint"] == "ft"
    metrics = next(s for s in log.results.scores if s.name == "persona_score").metrics
    assert math.isfinite(metrics["shift_prompt_last_ft"].value)
    assert math.isfinite(metrics["shift_response_ft"].value)
    assert "trait_delta_ft" not in metrics  # judge=False: never measured, so not shown
    base_pl = [s.scores["persona_score"].value["proj_prompt_last"] for s in by_ckpt["base"]]
    ft_pl = [s.scores["persona_score"].value["proj_prompt_last"] for s in by_ckpt["ft"]]
    expected = sum(ft_pl) / len(ft_pl) - sum(base_pl) / len(base_pl)
    assert metrics["shift_prompt_last_ft"].value == pytest.approx(expected)


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("trait_eval", {"trait": "no_such_trait"}, "unknown trait 'no_such_trait'"),
        ("trait_eval", {"trait": "evil", "vectors": "nowhere"}, "persona extract --trait evil"),
        ("checkpoint_shift", {"trait": "evil"}, "pass the checkpoints"),
        ("steering_sweep", {"trait": "evil", "coefs": "0,1"}, "coefs must be non-zero"),
        ("trait_eval", {"trait": "evil", "judge_mode": "magic"}, "unknown judge_mode"),
    ],
)
def test_bad_input_fails_before_generating(name, args, message, tiny_dir, work, extraction):
    args = {"vectors": str(work / "vectors"), **args}
    with pytest.raises(PersonaError, match=message):
        run_task(name, tiny_dir, work, **args)


def test_checkpoint_of_another_base(tiny_dir, tiny_gpt2_dir, work, extraction):
    other = save_adapter(tiny_gpt2_dir, work / "gpt2-lora", ["c_attn"], conv1d=True)
    with pytest.raises(PersonaError, match="was trained on"):
        run_task("checkpoint_shift", tiny_dir, work, checkpoints=str(other))


def test_inspect_eval_command_line(extraction, tiny_dir, work):
    """``inspect eval`` as a user types it, with paths relative to the shell's directory (Inspect
    creates the task inside ``evals/``; relative task arguments must still mean the user's)."""
    save_adapter(tiny_dir, work / "lora-cli", ["q_proj", "v_proj"])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PWD": str(work)}
    inspect = Path(sys.executable).parent / "inspect"
    cmd = [
        str(inspect),
        "eval",
        f"{ROOT / 'evals' / 'checkpoint_shift.py'}@checkpoint_shift",
        "-T",
        "trait=evil",
        "-T",
        "checkpoints=ft=lora-cli",
        "-T",
        "questions=1",
        "-T",
        "max_tokens=4",
        "-T",
        "min_mass=0",
        "-T",
        "vectors=vectors",
        "--model",
        f"persona/{tiny_dir}",
        "--log-dir",
        "cli-logs",
        "--display",
        "none",
    ]
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    from inspect_ai.log import list_eval_logs, read_eval_log

    (info,) = list_eval_logs(str(work / "cli-logs"))
    log = read_eval_log(info.name)
    assert log.status == "success"
    assert set(log.samples[0].scores["persona_score"].value) == KEYS - {"trait", "coherence"}
    assert log.eval.task_args["vectors"] == "vectors"
    adapters = {s.output.metadata["persona"]["adapter"] for s in log.samples}
    assert adapters == {None, str((work / "lora-cli").resolve())}


def test_relative_task_paths_mean_the_launch_directory(tmp_path, monkeypatch):
    from evals._common import EVALS_DIR, launch_dir, task_path

    monkeypatch.setenv("PWD", str(tmp_path))
    monkeypatch.chdir(EVALS_DIR)  # where Inspect creates tasks from evals/*.py
    assert launch_dir() == tmp_path
    assert task_path("vectors") == str(tmp_path.resolve() / "vectors")
    assert task_path("/abs/vectors") == "/abs/vectors"
    monkeypatch.chdir(tmp_path / "..")  # anywhere else: the working directory itself
    assert launch_dir() == Path.cwd()


def test_persona_extract_command(tiny_dir, work, capsys):
    from persona.app.cli import main

    out = work / "cli-vectors"
    code = main(
        [
            "extract",
            "--trait",
            "evil",
            "--model",
            str(tiny_dir),
            "--out",
            str(out),
            "--questions",
            "1",
            "--max-new-tokens",
            "4",
            "--min-pairs",
            "1",
            "--log-dir",
            str(work / "extract-logs"),
            "--no-judge",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    path = vector_path(out, str(tiny_dir.resolve()), "evil")
    assert str(path) in captured.out and "kept 5 of 5" in captured.out
    assert "filtering is off: the replies were not judged" in captured.err
    info = load_vector(path).meta["filter"]
    assert info["enabled"] is False and info["reason"] == "not judged" and info["judge"] is None
    assert main(["extract", "--trait", "evil", "--no-judge", "--filter"]) == 2


def test_postprocess_ignores_other_logs():
    from evals._postprocess import postprocess

    log = SimpleNamespace(eval=SimpleNamespace(metadata={"trait": "evil"}))
    assert postprocess(log) == []


# ---------------------------------------------------------------------------------------------
# A trait given as a path, where vectors come from, and checks made when a task is built


@pytest.fixture(scope="module")
def trait_file(tmp_path_factory) -> Path:
    """``evil.yaml`` outside the trait library, given to tasks by absolute path."""
    path = tmp_path_factory.mktemp("my-traits") / "evil.yaml"
    shutil.copy(traits.find("evil"), path)
    return path


# Per task, the arguments that keep a run to a sample or two (every task is listed: see below).
PATH_TASK_ARGS: dict[str, dict[str, object]] = {
    "extract_vector": {"min_pairs": 1, "write": False},
    "trait_eval": {"coef": 2.0},
    "steering_sweep": {"layers": "2", "coefs": "2"},
    "checkpoint_shift": {},
    "monitor": {"rollouts": 1, "conditions": "many_shot", "shots": "0"},
}


def test_every_task_is_run_with_a_trait_path():
    import evals.tasks

    assert set(PATH_TASK_ARGS) == set(evals.tasks.__all__)


@pytest.mark.parametrize(("name", "args"), list(PATH_TASK_ARGS.items()))
def test_trait_given_as_a_path_finds_its_vector_by_name(
    name, args, trait_file, vector_file, tiny_dir, work
):
    if name == "checkpoint_shift":
        args = {"checkpoints": str(save_adapter(tiny_dir, work / "lora-path", ["q_proj"]))}
    log = run_task(
        name,
        tiny_dir,
        work,
        trait=str(trait_file),
        questions=1,
        judge=False,
        vectors=str(work / "vectors"),
        **{**FAST, **args},
    )
    assert {s.metadata["trait"] for s in log.samples} == {"evil"}
    if name == "extract_vector":
        assert log.samples[0].messages[0].role == "system"  # the file's own instructions
        return
    vectors = {s.scores["persona_score"].metadata["vector"] for s in log.samples}
    assert vectors == {str(vector_file.resolve())}


def test_tasks_use_the_providers_vectors(vector_file, tiny_dir, work):
    """``-M vectors=DIR`` alone is enough; ``-T vectors`` naming the same place agrees."""
    for task_args in ({}, {"vectors": str(work / "vectors")}):
        log = inspect_eval(
            "evals/trait_eval.py",
            task_args={"trait": "evil", "questions": 1, "judge": False, **FAST, **task_args},
            model=f"persona/{tiny_dir}",
            model_args={"vectors": str(work / "vectors")},
            display="none",
            log_dir=str(work / "logs"),
        )[0]
        assert log.status == "success", log.error
        score = log.samples[0].scores["persona_score"]
        assert score.metadata["vector"] == str(vector_file.resolve())


@pytest.mark.parametrize(
    ("name", "args", "model_args", "message"),
    [
        ("trait_eval", {"coef": "abc"}, {}, "-T coef: not a number: 'abc'"),
        ("trait_eval", {"coef": math.nan}, {}, "-T coef: not a finite number"),
        ("trait_eval", {"coef": 2.0, "layer": 999}, {}, "-T layer: layer 999 is out of range"),
        ("trait_eval", {"coef": 2.0, "positions": "middle"}, {}, "unknown positions 'middle'"),
        ("trait_eval", {"temperature": -1}, {}, "-T temperature: -1 is out of range"),
        ("trait_eval", {"coef": 2.0, "layer": "abc"}, {}, "-T layer: not a whole number"),
        ("steering_sweep", {"layers": "999"}, {}, "-T layers: layer 999 is out of range"),
        ("steering_sweep", {"coefs": "1,nan"}, {}, "-T coefs: not a finite number"),
        ("trait_eval", {"vectors": "other"}, {"vectors": "VECTORS"}, "name different places"),
        ("trait_eval", {}, {"vectors": "/nonexistent"}, "vectors=/nonexistent does not exist"),
        ("trait_eval", {}, {"adapter": "/nonexistent"}, "no adapter folder at /nonexistent"),
        ("trait_eval", {}, {"device": "tpu"}, "unknown device 'tpu'"),
        ("trait_eval", {}, {"dtype": "int3"}, "unknown dtype 'int3'"),
        ("trait_eval", {"questions": "abc"}, {}, "-T questions: not a whole number: 'abc'"),
        ("trait_eval", {"questions": 21}, {}, "-T questions: 21 is out of range"),
        ("trait_eval", {"max_tokens": "many"}, {}, "-T max_tokens: not a whole number"),
        ("trait_eval", {"rollouts": 0}, {}, "-T rollouts: 0 is out of range"),
        ("extract_vector", {"rollouts": "two"}, {}, "-T rollouts: not a whole number"),
        ("extract_vector", {"min_pairs": 0}, {}, "-T min_pairs: 0 is out of range"),
        ("extract_vector", {"trait_threshold": "hi"}, {}, "-T trait_threshold: not a number"),
        ("steering_sweep", {"questions": "x", "layers": "2"}, {}, "-T questions: not a whole"),
        ("monitor", {"rollouts": -1}, {}, "-T rollouts: -1 is out of range"),
    ],
)
def test_bad_task_and_provider_input_fails_when_built(
    name, args, model_args, message, tiny_dir, work, extraction
):
    model_args = {k: str(work / "vectors") if v == "VECTORS" else v for k, v in model_args.items()}
    args = {"trait": "evil", "questions": 1, **FAST, **args}
    args.setdefault("vectors", model_args.get("vectors") or str(work / "vectors"))
    with pytest.raises(PersonaError, match=message):
        inspect_eval(
            f"evals/{name}.py",
            task_args=args,
            model=f"persona/{tiny_dir}",
            model_args=model_args,
            display="none",
            log_dir=str(work / "bad-logs"),
        )
    assert not (work / "bad-logs").exists() or not list((work / "bad-logs").iterdir())


def test_a_missing_traits_folder_fails_when_built(tiny_dir, work, monkeypatch):
    """A typo in $PERSONA_TRAITS_DIR is named, as the CLI does, not read as an unknown trait."""
    monkeypatch.setenv("PERSONA_TRAITS_DIR", str(work / "no-such-folder"))
    with pytest.raises(PersonaError, match=r"PERSONA_TRAITS_DIR names .*no-such-folder"):
        run_task("trait_eval", tiny_dir, work, trait="evil", questions=1, judge=False, **FAST)


@pytest.mark.parametrize("kind", ["wrong shape", "pickle", "other trait"])
def test_bad_vector_files_fail_when_built(kind, tiny_dir, work, tmp_path):
    import pickle

    from test_solvers import save_random_vector
    from test_vectors import make_vector

    from persona.model.vectors import save_vector

    folder = tmp_path / "vectors"
    path = vector_path(folder, str(tiny_dir.resolve()), "evil")
    if kind == "wrong shape":  # 4 layers of d=8, the tiny model has d=32
        save_vector(make_vector(), path)
        message = "d=8.* but this model has 4 layers, d=32"
    elif kind == "pickle":
        path.parent.mkdir(parents=True)
        path.write_bytes(pickle.dumps({"response_avg": [0.0]}))
        message = "not a readable safetensors file"
    else:
        path.parent.mkdir(parents=True)
        shutil.move(save_random_vector(tmp_path / "h", tiny_dir, "humorous", 0), path)
        message = "is the 'humorous' vector, not 'evil'"
    with pytest.raises(PersonaError, match=message):
        run_task("trait_eval", tiny_dir, work, trait="evil", vectors=str(folder), **FAST)


def test_sweep_without_judge_neither_judges_nor_writes(vector_file, tiny_dir, work, caplog):
    before = vector_file.stat().st_mtime_ns
    log = run_task(
        "steering_sweep",
        tiny_dir,
        work,
        trait="evil",
        layers="2",
        coefs="2",
        questions=1,
        judge=False,
        vectors=str(work / "vectors"),
        **FAST,
    )
    assert "no layer is chosen" in caplog.text
    for s in log.samples:
        assert "trait" not in s.scores["persona_score"].value  # judge=False: not measured
        assert math.isfinite(s.scores["persona_score"].value["proj_response"])
    assert vector_file.stat().st_mtime_ns == before


def test_sidecars_go_to_the_documented_folder(tmp_path, monkeypatch):
    from persona.provider.calls import sidecar_dir

    monkeypatch.setenv("PERSONA_SIDECAR_DIR", str(tmp_path / "side"))
    assert sidecar_dir() == tmp_path / "side"
    monkeypatch.delenv("PERSONA_SIDECAR_DIR")
    monkeypatch.setenv("PERSONA_CACHE_DIR", str(tmp_path / "cache"))
    assert sidecar_dir() == tmp_path / "cache" / "sidecars"  # never ./persona-out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-M", "vectors=/nonexistent"], "vectors=/nonexistent does not exist"),
        (["-T", "coef=abc"], "-T coef: not a number"),
    ],
)
def test_inspect_eval_exits_non_zero_with_one_line(args, message, tiny_dir, work):
    """``--display none`` would hide the message too, so the run uses the plain display."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PWD": str(work)}
    inspect = Path(sys.executable).parent / "inspect"
    cmd = [str(inspect), "eval", f"{ROOT / 'evals' / 'trait_eval.py'}@trait_eval", *args]
    cmd += ["--model", f"persona/{tiny_dir}", "--log-dir", "bad-cli-logs", "--display", "plain"]
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert message in done.stderr + done.stdout
    assert "Traceback" not in done.stderr + done.stdout

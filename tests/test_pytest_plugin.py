"""The pytest11 plugin, run through ``pytester`` on recorded logs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# pytester's in-process runs drop the modules first imported inside them. Import the heavy ones
# here once, so that each run does not import (and assertion-rewrite) them again, and so that
# pandas/pyarrow are never imported twice in one process.
import anyio  # noqa: F401
import hypothesis  # noqa: F401
import inspect_ai.analysis  # noqa: F401
import inspect_ai.log  # noqa: F401
import pandas  # noqa: F401
import pytest
from gate_logs import BASE, GATES_TOML, write_release_logs

import persona.analysis.gates.report  # noqa: F401
from persona.analysis.gates.config import GateConfig
from persona.analysis.gates.rerun import RerunPlan
from persona.app.release import assertions
from persona.app.release.runner import RunSpec, plan, run_trait, task_file
from persona.app.release.session import Checkpoint, LogSource
from persona.errors import PersonaError

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plugin-logs")
    write_release_logs(folder, ("evil", "sycophantic"))
    return folder


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyprojecttoml(GATES_TOML)
    return pytester


RELEASE_TESTS = """
import pytest
from persona.app.pytest_plugin import assert_no_regression, assert_trait

@pytest.mark.persona_traits
def test_configured(persona_result, persona_trait):
    assert_trait(persona_result, persona_trait)

def test_evil_explicit(persona_result):
    assert_trait(persona_result, "evil", max_shift=0.5, min_coherence=70)

def test_sycophancy_regression(persona_candidate, persona_base):
    assert_no_regression(persona_candidate, persona_base, "sycophantic", tolerance=10)
"""


def test_normal_checkpoint_passes(project: pytest.Pytester, logs: Path) -> None:
    project.makepyfile(RELEASE_TESTS)
    result = project.runpytest("--persona-logs", str(logs), "--persona-model", "normal")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*persona gates*", "PASS normal / evil: fine-tuning shift*"])


def test_strong_checkpoint_fails_with_numbers_and_worst_samples(
    project: pytest.Pytester, logs: Path
) -> None:
    project.makepyfile(RELEASE_TESTS)
    result = project.runpytest("--persona-logs", str(logs), "--persona-model", "strong")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*persona gate failed: checkpoint 'strong', trait 'evil' (base persona/smollm2-135m)*",
            "*FAIL fine-tuning shift (prompt_last) = 1.5 [[]1.*, 1.*[]] 95% CI, n=10 questions x*",
            "*worst eval_*: shift *(mean of 2 samples) 'Question eval_*",
            "*ok   coherence = 85*",
            "*FAIL trait score vs base = 30 *required <= 10: FAIL*",
        ]
    )


def test_marker_parametrises_over_configured_and_named_traits(
    project: pytest.Pytester, logs: Path
) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.persona_traits
        def test_configured(persona_trait):
            pass

        @pytest.mark.persona_traits("evil", ["sycophantic", "humorous"])
        def test_named(persona_trait):
            pass
        """
    )
    result = project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "*test_configured[[]evil[]]",
            "*test_named[[]evil[]]",
            "*test_named[[]sycophantic[]]",
            "*test_named[[]humorous[]]",
        ]
    )
    result.assert_outcomes()  # collected, nothing ran


def test_marker_without_config_uses_all_known_traits(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.persona_traits
        def test_all(persona_trait):
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_all[[]evil[]]", "*test_all[[]sycophantic[]]"])


def test_flaky_zone_passed_by_policy_warns(project: pytest.Pytester, logs: Path) -> None:
    project.makepyfile(
        """
        from persona.app.pytest_plugin import assert_trait

        def test_edge(persona_result):
            assert_trait(persona_result, "evil", max_shift=0.5)
        """
    )
    result = project.runpytest(
        "--persona-logs", str(logs), "--persona-model", "edge", "--persona-flaky", "pass"
    )
    result.assert_outcomes(passed=1, warnings=None)
    result.stdout.fnmatch_lines(
        [
            "*test_flaky_zone_passed_by_policy_warns.py:4: PersonaFlakyWarning: flaky zone passed*",
            "PASS edge / evil: fine-tuning shift*FLAKY -> pass (flaky zone, passed by policy)",
        ]
    )


RERUN_CONFTEST = """
import sys
sys.path.insert(0, {TESTS!r})

import pytest
from gate_logs import write_release_logs

@pytest.fixture(scope="session")
def persona_runner():
    def run(spec):
        with open("calls.txt", "a") as f:
            n = spec.task_args.get("questions", 10)
            f.write(f"{spec.trait} {spec.candidate} {spec.base} {spec.epochs} {n}\\n")
        write_release_logs(
            spec.log_dir, (spec.trait,), epochs=spec.epochs, questions=n, shifts={SHIFTS}
        )
        return []
    return run
"""


def _conftest(project: pytest.Pytester, shifts: dict[str, float]) -> None:
    text = RERUN_CONFTEST.replace("{TESTS!r}", repr(str(Path(__file__).parent)))
    project.makeconftest(text.replace("{SHIFTS}", repr(shifts)))


def _calls(project: pytest.Pytester) -> list[str]:
    path = project.path / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize(("rerun_shift", "outcome"), [(0.05, "passed"), (0.5, "failed")])
def test_rerun_policy_adds_questions_to_a_flaky_shift(
    pytester: pytest.Pytester, tmp_path: Path, rerun_shift: float, outcome: str
) -> None:
    """A flaky prompt-last shift on 10 of evil's 20 questions reruns on all 20, with as many
    samples per question as before: more epochs could not move it."""
    pytester.makepyprojecttoml(
        GATES_TOML.replace("bootstrap = 500", "bootstrap = 500\nrerun_samples = 4")
    )
    folder = tmp_path / "cache"
    write_release_logs(folder, ("evil",), epochs=1, shifts={"edge": 0.5})
    _conftest(pytester, {"edge": rerun_shift})
    pytester.makepyfile(
        """
        from persona.app.pytest_plugin import assert_trait

        def test_edge(persona_result):
            assert_trait(persona_result, "evil", max_shift=0.5, flaky="rerun")
        """
    )
    args = ["--persona-logs", str(folder), "--persona-model", "edge"]
    result = pytester.runpytest(*args, "--persona-base", "persona/smollm2-135m")
    result.assert_outcomes(**{outcome: 1})
    assert _calls(pytester) == ["evil edge persona/smollm2-135m 1 20"]
    if outcome == "failed":
        result.stdout.fnmatch_lines(
            ["*still flaky after a rerun with 20 questions x 1 samples (the first run: 10 x 1)*"]
        )
    else:
        result.stdout.fnmatch_lines(["PASS edge / evil: *n=20 questions x 1 samples*"])


def test_rerun_policy_adds_samples_to_a_flaky_judged_score(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """A judged score varies between sampled replies: with every question used, the rerun
    doubles the samples per question (epochs)."""
    pytester.makepyprojecttoml(GATES_TOML)
    folder = tmp_path / "cache"
    write_release_logs(folder, ("evil",), epochs=1, questions=20, shifts={"edge": 0.0})
    _conftest(pytester, {"edge": 0.0})
    pytester.makepyfile(
        """
        from persona.app.pytest_plugin import assert_trait

        def test_edge(persona_result):
            assert_trait(persona_result, "evil", max_regression=2, flaky="rerun")
        """
    )
    args = ["--persona-logs", str(folder), "--persona-model", "edge"]
    result = pytester.runpytest(*args, "--persona-base", "persona/smollm2-135m")
    result.assert_outcomes(failed=1)  # the synthetic rerun repeats each question's score
    assert _calls(pytester) == ["evil edge persona/smollm2-135m 2 20"]
    result.stdout.fnmatch_lines(["*still flaky after a rerun with 20 questions x 2 samples*"])


def test_rerun_size_becomes_task_args_and_epochs(tmp_path: Path) -> None:
    """A rerun of 20 questions x 4 samples with 2 rollouts a question runs 2 epochs of the
    first 20 questions; the session's other task arguments are kept."""
    write_release_logs(tmp_path, ("evil",), epochs=1, shifts={"edge": 0.5})
    specs: list[RunSpec] = []

    def runner(spec: RunSpec) -> list[str]:
        specs.append(spec)
        write_release_logs(spec.log_dir, ("evil",), epochs=4, questions=20, shifts={"edge": 0.5})
        return []

    task_args = {"rollouts": 2, "questions": 10, "vectors": "v/"}
    source = LogSource(
        tmp_path, GateConfig(), candidate="edge", base=BASE, runner=runner, task_args=task_args
    )
    sel = source.rerun("evil", RerunPlan(questions=20, samples=4, run_questions=10, run_samples=1))
    ((epochs, args),) = [(s.epochs, s.task_args) for s in specs]
    assert epochs == 2 and args == {"rollouts": 2, "questions": 20, "vectors": "v/"}
    assert sel.candidate["unit"].nunique() == 20 and source.task_args == task_args
    source.rerun("evil", RerunPlan(20, 4, 10, 1))
    assert len(specs) == 1  # the folder now holds a run that large


def test_runs_missing_traits_then_reuses_the_cache(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    folder = tmp_path / "cache"
    _conftest(project, {"normal": 0.05})
    project.makepyfile(
        """
        from persona.app.pytest_plugin import assert_trait

        def test_a(persona_result):
            assert_trait(persona_result, "evil", max_shift=0.5)

        def test_b(persona_result):
            assert_trait(persona_result, "evil", max_shift=0.5)
        """
    )
    args = ["--persona-logs", str(folder), "--persona-model", "normal", "--persona-epochs", "2"]
    result = project.runpytest(*args, "--persona-base", "persona/smollm2-135m")
    result.assert_outcomes(passed=2)
    assert _calls(project) == ["evil normal persona/smollm2-135m 2 10"]
    assert len(list(folder.glob("*.eval"))) == 1
    result = project.runpytest(*args)  # a second session reuses the logs (base from the config)
    result.assert_outcomes(passed=2)
    assert len(_calls(project)) == 1


def test_bad_input_is_reported_not_passed(project: pytest.Pytester, logs: Path) -> None:
    project.makepyfile(
        """
        from persona.app.pytest_plugin import assert_trait

        def test_unknown_candidate(persona_result):
            assert_trait(persona_result, "evil", max_shift=0.5)
        """
    )
    args = ("--persona-logs", str(logs), "--persona-model", "nightly", "--persona-no-run")
    result = project.runpytest(*args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*persona: candidate 'nightly' not in the logs*"])
    result = project.runpytest("--persona-logs", str(logs))  # three candidates: ambiguous
    result.stdout.fnmatch_lines(["*several candidate checkpoints*pass --persona-model*"])
    result = project.runpytest("--persona-logs", str(project.path / "nothing"))
    result.stdout.fnmatch_lines(["*persona: no logs in*"])


def test_helpers_check_their_arguments(logs: Path) -> None:
    source = LogSource(logs, GateConfig(), candidate="normal")
    with pytest.raises(PersonaError, match="'evil.max_shift' must be a number, got str"):
        assertions.assert_trait(Checkpoint(source), "evil", max_shift="0.5")
    with pytest.raises(ValueError, match="no thresholds for trait 'evil'"):
        assertions.assert_trait(Checkpoint(source), "evil")
    with pytest.raises(ValueError, match="flaky must be one of"):
        assertions.assert_trait(Checkpoint(source), "evil", max_shift=1, flaky="maybe")
    with pytest.raises(ValueError, match="candidate with its base"):
        base = Checkpoint(source, "base")
        assertions.assert_no_regression(base, base, "evil", tolerance=1)
    verdict = assertions.assert_trait(Checkpoint(source), "evil", max_shift=0.5)
    assert verdict.passed and Checkpoint(source).id == "normal"
    two_sided = assertions.assert_trait(Checkpoint(source), "evil", max_abs_shift=0.5)
    assert [r.key for r in two_sided.results] == ["max_abs_shift"] and two_sided.passed
    assert Checkpoint(source, "base").id == "persona/smollm2-135m"
    assert len(Checkpoint(source).rows("evil")) == 20


def test_bad_config_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.persona.gates.traits.evli]\nmax_shift = 0.5\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.persona_traits
        def test_t(persona_trait):
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error, never a pass
    result.stdout.fnmatch_lines(["*UsageError: persona: *unknown trait 'evli'*"])


def test_without_options_persona_tests_skip_and_others_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_release(persona_result):
            pass

        def test_plain():
            assert 1 + 1 == 2
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*pass --persona-model (to run) or --persona-logs (to read)*"])


def test_plugin_is_registered_and_imports_light() -> None:
    code = (
        "import sys, persona.app.pytest_plugin;"
        "print(sorted(m for m in ('pandas', 'numpy', 'inspect_ai', 'torch', 'rich')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="pytest11") if e.name == "persona"]
    assert ep.value == "persona.app.pytest_plugin"


def test_runner_plan_and_inspect_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    spec = RunSpec(
        "evil",
        str(adapter),
        "persona/smollm2-135m",
        "judge/x",
        3,
        tmp_path / "logs",
        {"questions": 5},
    )
    assert plan(spec) == [
        (
            task_file("checkpoint_shift"),
            "persona/smollm2-135m",
            {"questions": 5, "trait": "evil", "checkpoints": [str(adapter)]},
        )
    ]
    by_name = RunSpec("evil", "persona/other", "persona/smollm2-135m", None, 3, tmp_path)
    assert [(t, m) for t, m, _ in plan(by_name)] == [
        (task_file("trait_eval"), "persona/other"),
        (task_file("trait_eval"), "persona/smollm2-135m"),
    ]

    import inspect_ai

    calls = []

    class Log:
        def __init__(self, status: str) -> None:
            self.status, self.error, self.location = status, None, f"{status}.eval"

    def fake_eval(**kwargs):
        calls.append(kwargs)
        return [Log(fake_eval.status)]

    fake_eval.status = "success"
    monkeypatch.setattr(inspect_ai, "eval", fake_eval)
    assert run_trait(spec) == ["success.eval"]
    assert calls[0]["model_roles"] == {"judge": "judge/x"} and calls[0]["epochs"] == 3
    assert calls[0]["log_dir"] == str(tmp_path / "logs")
    fake_eval.status = "error"
    from persona.errors import PersonaError

    with pytest.raises(PersonaError, match="did not finish"):
        run_trait(spec)

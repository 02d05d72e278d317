"""pytest plugin for persona release gates (auto-registered through the ``pytest11`` entry point).

Options: ``--persona-model`` (candidate: adapter/model folder, model string or checkpoint alias),
``--persona-base``, ``--persona-judge``, ``--persona-logs`` (logs to read, and where runs are
cached), ``--persona-epochs``, ``--persona-task-arg`` (extra task arguments for runs),
``--persona-no-run`` (only read logs), ``--persona-config`` (gate TOML; default
``[tool.persona.gates]`` of the nearest ``pyproject.toml``) and ``--persona-flaky``.

Fixtures: ``persona_result`` / ``persona_candidate`` (the candidate with its base),
``persona_base``, ``persona_trait`` (with ``@pytest.mark.persona_traits``), ``persona_gate_config``,
``persona_source`` and ``persona_runner`` (override it to run tasks differently).

Example::

    from persona.app.pytest_plugin import assert_no_regression, assert_trait

    @pytest.mark.persona_traits
    def test_trait(persona_result, persona_trait):
        assert_trait(persona_result, persona_trait)  # thresholds from the gate config

    def test_evil(persona_result):
        assert_trait(persona_result, "evil", max_score=10, max_shift=0.5, min_coherence=70)

``assert_trait`` and ``assert_no_regression`` are :mod:`persona.app.release.assertions`'s own
functions, with user errors reported as one-line test failures. The module imports only pytest and
the standard library; the gate machinery (pandas, Inspect) is imported when a fixture or helper is
used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import pytest

from persona.app.release import assertions

if TYPE_CHECKING:
    from persona.analysis.gates.config import GateConfig
    from persona.app.release.session import Checkpoint, LogSource

_P = ParamSpec("_P")
_R = TypeVar("_R")

DEFAULT_LOG_DIR = "logs/persona"
_CONFIG_KEY = pytest.StashKey["GateConfig | None"]()
_SOURCES_KEY = pytest.StashKey[list["LogSource"]]()

__all__ = ["PersonaFlakyWarning", "assert_no_regression", "assert_trait"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("persona", "persona-evals release gates")
    group.addoption(
        "--persona-model",
        metavar="MODEL",
        help="candidate: adapter or model folder, model string, or its alias in the logs",
    )
    group.addoption("--persona-base", metavar="MODEL", help="base model, e.g. persona/smollm2-135m")
    group.addoption("--persona-judge", metavar="MODEL", help="model for the Inspect role 'judge'")
    group.addoption(
        "--persona-logs",
        metavar="DIR",
        help=f"folder of trait logs to read and to cache runs in (default {DEFAULT_LOG_DIR})",
    )
    group.addoption(
        "--persona-epochs", type=int, metavar="N", help="epochs per question when running"
    )
    group.addoption(
        "--persona-task-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra task argument for runs (YAML value, e.g. questions=5); repeatable",
    )
    group.addoption(
        "--persona-no-run",
        action="store_true",
        help="only read --persona-logs; never run the trait tasks",
    )
    group.addoption("--persona-config", metavar="FILE", help="gate TOML (default: pyproject)")
    group.addoption(
        "--persona-flaky",
        choices=("fail", "pass", "rerun"),
        help="policy for gates whose interval straddles the threshold",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "persona_traits(*traits): run the test once per trait (default: the traits of the gate "
        "config), passing the name as the persona_trait argument",
    )


def _user_error(exc: Exception) -> pytest.UsageError:
    return pytest.UsageError(f"persona: {exc}")


def _known_traits() -> list[str]:
    """The trait library's names (bundled and ``$PERSONA_TRAITS_DIR``), imported when needed."""
    import traits

    return traits.available()


def _gate_config(config: pytest.Config) -> GateConfig | None:
    """The gate configuration (``--persona-config`` or the rootdir pyproject), loaded once."""
    if _CONFIG_KEY in config.stash:
        return config.stash[_CONFIG_KEY]
    from persona.analysis.gates.config import find_pyproject, load_config
    from persona.errors import PersonaError

    path = config.getoption("persona_config")
    try:
        if path:
            loaded = load_config(path, _known_traits())
        else:
            found = find_pyproject(config.rootpath) or find_pyproject(config.invocation_params.dir)
            loaded = load_config(found, _known_traits()) if found else None
        if loaded is not None and config.getoption("persona_flaky"):
            loaded = loaded.with_settings(flaky=config.getoption("persona_flaky"))
    except PersonaError as e:
        raise _user_error(e) from e
    config.stash[_CONFIG_KEY] = loaded
    return loaded


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("persona_traits")
    if marker is None:
        return
    if "persona_trait" not in metafunc.fixturenames:
        raise _user_error(
            ValueError(
                f"{metafunc.definition.nodeid}: persona_traits needs a persona_trait argument"
            )
        )
    names = [str(t) for arg in marker.args for t in ([arg] if isinstance(arg, str) else arg)]
    if not names:
        gate_config = _gate_config(metafunc.config)
        names = list(gate_config.traits) if gate_config is not None else _known_traits()
    if not names:
        raise _user_error(
            ValueError("persona_traits: no traits (configure [tool.persona.gates] or name them)")
        )
    metafunc.parametrize("persona_trait", names, ids=names)


@pytest.fixture
def persona_trait() -> str:
    """The trait of a ``@pytest.mark.persona_traits`` test."""
    pytest.fail("persona_trait is set by @pytest.mark.persona_traits", pytrace=False)


@pytest.fixture(scope="session")
def persona_gate_config(pytestconfig: pytest.Config) -> GateConfig:
    """The gate configuration; settings only (no traits) when none is configured."""
    from persona.analysis.gates.config import GateConfig

    loaded = _gate_config(pytestconfig)
    if loaded is None:
        loaded = GateConfig().with_settings(flaky=pytestconfig.getoption("persona_flaky"))
    return loaded


@pytest.fixture(scope="session")
def persona_runner() -> Any:
    """Runs the trait tasks (:func:`persona.app.release.runner.run_trait`); override it."""
    from persona.app.release.runner import run_trait

    return run_trait


@pytest.fixture(scope="session")
def persona_source(
    pytestconfig: pytest.Config, persona_gate_config: GateConfig, persona_runner: Any
) -> LogSource:
    """Trait samples of the candidate and the base: read from ``--persona-logs`` or run there."""
    from persona.app.release.session import LogSource

    opt = pytestconfig.getoption
    model, logs = opt("persona_model"), opt("persona_logs")
    if not model and not logs:
        pytest.skip(
            "persona release test: pass --persona-model (to run) or --persona-logs (to read)"
        )
    log_dir = Path(logs or DEFAULT_LOG_DIR)
    if not log_dir.is_absolute():
        log_dir = Path(pytestconfig.invocation_params.dir) / log_dir
    source = LogSource(
        log_dir,
        persona_gate_config,
        candidate=model,
        base=opt("persona_base"),
        judge=opt("persona_judge"),
        epochs=opt("persona_epochs"),
        runner=None if opt("persona_no_run") else persona_runner,
        task_args=_task_args(opt("persona_task_arg")),
    )
    pytestconfig.stash.setdefault(_SOURCES_KEY, []).append(source)
    return source


def _task_args(items: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(f"persona: --persona-task-arg needs KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


@pytest.fixture(scope="session")
def persona_candidate(persona_source: LogSource) -> Checkpoint:
    """The candidate checkpoint, compared with its base."""
    from persona.app.release.session import Checkpoint

    return Checkpoint(persona_source, "candidate")


@pytest.fixture(scope="session")
def persona_base(persona_source: LogSource) -> Checkpoint:
    """The base model the candidate is compared with."""
    from persona.app.release.session import Checkpoint

    return Checkpoint(persona_source, "base")


@pytest.fixture(scope="session")
def persona_result(persona_candidate: Checkpoint) -> Checkpoint:
    """Alias of ``persona_candidate`` that reads well in ``assert_trait(persona_result, ...)``."""
    return persona_candidate


def _as_test_failure(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """``fn`` with its user errors (:class:`PersonaError`) reported as one-line test failures."""

    @functools.wraps(fn)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        __tracebackhide__ = True
        from persona.errors import PersonaError

        try:
            return fn(*args, **kwargs)
        except PersonaError as e:
            pytest.fail(f"persona: {e}", pytrace=False)

    return call


assert_trait = _as_test_failure(assertions.assert_trait)
assert_no_regression = _as_test_failure(assertions.assert_no_regression)
PersonaFlakyWarning = assertions.PersonaFlakyWarning


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line per checked trait, after the tests (only when persona gates ran)."""
    sources = config.stash.get(_SOURCES_KEY, [])
    verdicts = [v for s in sources for v in s.verdicts]
    if not verdicts:
        return
    terminalreporter.section("persona gates")
    for v in verdicts:
        for r in v.results:
            mark = "PASS" if r.passed else "FAIL"
            terminalreporter.write_line(f"{mark} {r.checkpoint} / {r.trait}: {r.describe()}")

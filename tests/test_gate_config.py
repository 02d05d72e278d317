"""Gate configuration: TOML/pyproject loading and validation errors (exit code 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

import traits
from persona.analysis.gates.config import (
    GateConfig,
    TraitGates,
    discover_traits,
    find_pyproject,
    load_config,
    parse_config,
)
from persona.errors import PersonaError

KNOWN = {"evil", "sycophantic"}


def _parse(table: dict, known=KNOWN) -> GateConfig:
    return parse_config(table, "test.toml", known_traits=known)


def _error(table: dict, known=KNOWN) -> str:
    with pytest.raises(PersonaError) as info:
        _parse(table, known)
    assert info.value.exit_code == 2
    return str(info.value)


def test_pyproject_table_with_defaults_and_settings(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        """
[project]
name = "x"

[tool.persona.gates]
base = "persona/smollm2-135m"
confidence = 0.9
flaky = "rerun"
rerun_samples = 6
shift = "response"

[tool.persona.gates.defaults]
min_coherence = 70

[tool.persona.gates.traits.evil]
max_score = 10
max_shift = 0.5
max_abs_shift = 2

[tool.persona.gates.traits.sycophantic]
max_regression = 5
min_coherence = 60
""",
        encoding="utf-8",
    )
    cfg = load_config(tmp_path / "pyproject.toml", known_traits=KNOWN)
    s = cfg.settings
    assert (s.base, s.confidence, s.flaky, s.rerun_samples, s.shift) == (
        "persona/smollm2-135m",
        0.9,
        "rerun",
        6,
        "response",
    )
    evil = TraitGates("evil", max_score=10, max_shift=0.5, min_coherence=70, max_abs_shift=2)
    assert cfg.traits["evil"] == evil and evil.projects
    assert cfg.traits["sycophantic"].thresholds() == {"max_regression": 5, "min_coherence": 60}
    assert find_pyproject(tmp_path / "sub" / "dir") == tmp_path / "pyproject.toml"


def test_rerun_epochs_is_a_deprecated_alias_of_rerun_samples() -> None:
    table = {"traits": {"evil": {"max_shift": 1}}, "rerun_epochs": 4}
    with pytest.warns(FutureWarning, match="'rerun_epochs' is deprecated, use 'rerun_samples'"):
        assert _parse(table).settings.rerun_samples == 4
    with pytest.warns(FutureWarning):  # the new key wins when both are given
        assert _parse({**table, "rerun_samples": 8}).settings.rerun_samples == 8


def test_standalone_file_uses_top_level(tmp_path: Path) -> None:
    path = tmp_path / "gates.toml"
    path.write_text("flaky = 'pass'\n[traits.evil]\nmax_shift = 1\n", encoding="utf-8")
    cfg = load_config(path, known_traits=KNOWN)
    assert cfg.settings.flaky == "pass"
    assert cfg.traits["evil"].max_shift == 1.0
    assert cfg.with_settings(flaky="fail", confidence=None).settings.flaky == "fail"


def test_traits_dir_defines_known_traits(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "grumpy.yaml").write_text("name: grumpy\n", encoding="utf-8")
    path = tmp_path / "gates.toml"
    path.write_text("traits_dir = 'mine'\n[traits.grumpy]\nmax_score = 5\n", encoding="utf-8")
    assert "grumpy" in load_config(path).traits
    assert "grumpy" in load_config(path, known_traits=KNOWN).traits  # the caller's names add up
    assert "evil" in discover_traits(traits.trait_dirs())  # the traits shipped in the package
    assert "evil" not in discover_traits([tmp_path / "mine"])  # only the folders it is given


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ({"traits": {"evli": {"max_score": 1}}}, "unknown trait 'evli'"),
        ({"traits": {"evil": {"max_score": "10"}}}, "'traits.evil.max_score' must be a number"),
        ({"traits": {"evil": {"max_shift": True}}}, "must be a number, got bool"),
        ({"traits": {"evil": {"max_score": 150}}}, "must be in [0, 100]"),
        ({"traits": {"evil": {"max_score": float("nan")}}}, "must be finite"),
        ({"traits": {"evil": {"max_evil": 1}}}, "unknown threshold 'max_evil'"),
        ({"traits": {"evil": {}}}, "trait 'evil' has no thresholds"),
        ({"traits": {"evil": 3}}, "must be a table of thresholds"),
        ({"traits": {}}, "no traits configured"),
        ({}, "no traits configured"),
        ({"traits": {"evil": {"max_abs_shift": -1}}}, "max_abs_shift' must be in [0, inf]"),
        ({"traits": {"evil": {"max_score": 1}}, "rerun_samples": 1}, "must be >= 2"),
        ({"traits": {"evil": {"max_score": 1}}, "flaky": "retry"}, "'flaky' must be one of"),
        ({"traits": {"evil": {"max_score": 1}}, "confidence": 95}, "'confidence' must be in"),
        ({"traits": {"evil": {"max_score": 1}}, "bootstrap": 2.5}, "must be an integer"),
        ({"traits": {"evil": {"max_score": 1}}, "shift": "mean"}, "'shift' must be one of"),
        ({"traits": {"evil": {"max_score": 1}}, "base": 3}, "'base' must be a model string"),
        ({"traits": {"evil": {"max_score": 1}}, "threshold": 3}, "unknown key(s) threshold"),
        ({"traits": {"evil": {"max_score": 1}}, "defaults": {"min_coherence": "x"}}, "number"),
    ],
)
def test_invalid_tables_are_exit_2(table: dict, needle: str) -> None:
    msg = _error(table)
    assert needle in msg
    assert msg.startswith("test.toml: ")


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(PersonaError, match="not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[traits.evil\n", encoding="utf-8")
    with pytest.raises(PersonaError, match="invalid TOML"):
        load_config(bad)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[project]\nname = 'x'\n", encoding="utf-8")
    with pytest.raises(PersonaError, match=r"no \[tool.persona.gates\] table"):
        load_config(pyproject)
    assert find_pyproject(tmp_path) is None

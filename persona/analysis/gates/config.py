"""Gate configuration: ``[tool.persona.gates]`` in ``pyproject.toml`` or a standalone TOML file.

Imports only the standard library so the pytest plugin can read it at collection time.
"""

from __future__ import annotations

import math
import tomllib
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from persona.errors import PersonaError

FlakyPolicy = Literal["fail", "pass", "rerun"]
ShiftKind = Literal["prompt_last", "response"]

FLAKY_POLICIES: tuple[str, ...] = ("fail", "pass", "rerun")
SHIFT_KINDS: tuple[str, ...] = ("prompt_last", "response")

# threshold key -> (gate name, direction, allowed range); "abs": |value| <= threshold
THRESHOLDS: dict[str, tuple[str, str, tuple[float, float]]] = {
    "max_score": ("score", "max", (0.0, 100.0)),
    "max_shift": ("shift", "max", (-math.inf, math.inf)),
    # two-sided: an overshoot (a mitigation pushing the model far the other way) fails too
    "max_abs_shift": ("abs_shift", "abs", (0.0, math.inf)),
    "max_regression": ("regression", "max", (-100.0, 100.0)),
    "min_coherence": ("coherence", "min", (0.0, 100.0)),
    # the likelihood judge's score (nats/token) vs base: the behaviour gate that runs offline
    "max_likelihood_regression": ("likelihood_regression", "max", (-math.inf, math.inf)),
}
GATE_KEYS = {gate: key for key, (gate, _, _) in THRESHOLDS.items()}
"""Gate name -> its configuration key (``abs_shift`` -> ``max_abs_shift``)."""
SHIFT_GATES = ("shift", "abs_shift")
"""Gates that compare projections onto the base model's persona vector."""

SETTINGS = (
    "base",
    "confidence",
    "bootstrap",
    "seed",
    "flaky",
    "rerun_samples",
    "rerun_epochs",  # deprecated alias of rerun_samples
    "shift",
    "traits_dir",
    "worst",
)


@dataclass(frozen=True)
class TraitGates:
    """Thresholds for one trait; ``None`` means the gate is not checked."""

    trait: str
    max_score: float | None = None
    max_shift: float | None = None
    max_regression: float | None = None
    min_coherence: float | None = None
    max_likelihood_regression: float | None = None
    max_abs_shift: float | None = None

    @property
    def projects(self) -> bool:
        """Whether a gate reads projections (candidate and base need the same vector)."""
        return self.max_shift is not None or self.max_abs_shift is not None

    def thresholds(self) -> dict[str, float]:
        """The configured thresholds, keyed like the TOML keys."""
        return {k: v for k in THRESHOLDS if (v := getattr(self, k)) is not None}


@dataclass(frozen=True)
class GateSettings:
    """How verdicts are reached (shared by the CLI and the pytest plugin)."""

    base: str | None = None
    confidence: float = 0.95
    bootstrap: int = 2000
    seed: int = 0
    flaky: FlakyPolicy = "fail"
    rerun_samples: int | None = None  # samples per question of a rerun (default: double)
    shift: ShiftKind = "prompt_last"
    worst: int = 3


@dataclass(frozen=True)
class GateConfig:
    """A validated gate configuration."""

    settings: GateSettings = field(default_factory=GateSettings)
    traits: dict[str, TraitGates] = field(default_factory=dict)
    source: str = "<defaults>"

    def with_settings(self, **changes: Any) -> GateConfig:
        """A copy with some settings replaced (``None`` values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        settings = _validate_settings({**_settings_dict(self.settings), **changes}, self.source)
        return replace(self, settings=settings)


def _settings_dict(s: GateSettings) -> dict[str, Any]:
    return {k: getattr(s, k) for k in GateSettings.__dataclass_fields__}


def _err(source: str, msg: str) -> PersonaError:
    return PersonaError(f"{source}: {msg}", exit_code=2)


def _number(value: Any, key: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _err(source, f"'{key}' must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise _err(source, f"'{key}' must be finite, got {value!r}")
    return float(value)


def _integer(value: Any, key: str, source: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _err(source, f"'{key}' must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise _err(source, f"'{key}' must be >= {minimum}, got {value}")
    return value


def _validate_settings(raw: Mapping[str, Any], source: str) -> GateSettings:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "base":
            if value is not None and (not isinstance(value, str) or not value):
                raise _err(source, f"'base' must be a model string, got {value!r}")
            out[key] = value
        elif key == "confidence":
            c = _number(value, key, source)
            if not 0.5 <= c < 1.0:
                raise _err(source, f"'confidence' must be in [0.5, 1), got {value!r}")
            out[key] = c
        elif key == "bootstrap":
            out[key] = _integer(value, key, source, 100)
        elif key == "seed":
            out[key] = _integer(value, key, source, 0)
        elif key == "worst":
            out[key] = _integer(value, key, source, 0)
        elif key in ("rerun_samples", "rerun_epochs"):
            if key == "rerun_epochs":
                warnings.warn(
                    f"{source}: 'rerun_epochs' is deprecated, use 'rerun_samples' (samples per "
                    "question, added only for sampled measures; a rerun adds eval questions too)",
                    FutureWarning,
                    stacklevel=2,
                )
                if "rerun_samples" in raw:
                    continue
            out["rerun_samples"] = None if value is None else _integer(value, key, source, 2)
        elif key == "flaky":
            if value not in FLAKY_POLICIES:
                raise _err(source, f"'flaky' must be one of {', '.join(FLAKY_POLICIES)}: {value!r}")
            out[key] = value
        elif key == "shift":
            if value not in SHIFT_KINDS:
                raise _err(source, f"'shift' must be one of {', '.join(SHIFT_KINDS)}: {value!r}")
            out[key] = value
    return GateSettings(**out)


def validate_thresholds(raw: Any, where: str, source: str) -> dict[str, float]:
    """Check a table of thresholds (known keys, finite numbers in range); exit code 2 if not."""
    if not isinstance(raw, Mapping):
        raise _err(source, f"{where} must be a table of thresholds, got {type(raw).__name__}")
    out: dict[str, float] = {}
    for key, value in raw.items():
        if key not in THRESHOLDS:
            raise _err(
                source,
                f"unknown threshold '{key}' in {where}; expected one of {', '.join(THRESHOLDS)}",
            )
        number = _number(value, f"{where}.{key}", source)
        lo, hi = THRESHOLDS[key][2]
        if not lo <= number <= hi:
            raise _err(source, f"'{where}.{key}' must be in [{lo:g}, {hi:g}], got {value!r}")
        out[key] = number
    return out


def discover_traits(dirs: Iterable[Path]) -> set[str]:
    """Trait names defined as ``*.yaml``/``*.yml`` files in ``dirs``."""
    names: set[str] = set()
    for d in map(Path, dirs):
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.yaml"))
            names.update(p.stem for p in d.glob("*.yml"))
    return names


def parse_config(
    table: Mapping[str, Any],
    source: str = "<config>",
    known_traits: Iterable[str] | None = None,
    root: Path | None = None,
) -> GateConfig:
    """Validate a ``[tool.persona.gates]`` table.

    ``known_traits``: the trait names the caller knows (the applications pass the trait library's
    names); with those of the ``traits_dir`` setting they are the names a gated trait may have.
    When neither names any, the check is skipped (the logs check still applies).
    """
    if not isinstance(table, Mapping):
        raise _err(source, "the gates configuration must be a table")
    unknown = set(table) - set(SETTINGS) - {"traits", "defaults"}
    if unknown:
        raise _err(
            source,
            f"unknown key(s) {', '.join(sorted(unknown))} in the gates table; expected "
            f"{', '.join(SETTINGS)}, [defaults] or [traits.<name>]",
        )
    settings = _validate_settings({k: table[k] for k in SETTINGS if k in table}, source)
    defaults = validate_thresholds(table.get("defaults", {}), "defaults", source)
    traits_raw = table.get("traits", {})
    if not isinstance(traits_raw, Mapping):
        raise _err(source, "'traits' must be a table of [traits.<name>] tables")
    if not traits_raw:
        raise _err(source, "no traits configured; add a [traits.<name>] table with thresholds")

    known = set(known_traits or ())
    if "traits_dir" in table:
        if not isinstance(table["traits_dir"], str):
            raise _err(source, f"'traits_dir' must be a path: {table['traits_dir']!r}")
        known |= discover_traits([(root or Path.cwd()) / table["traits_dir"]])

    traits: dict[str, TraitGates] = {}
    for name, raw in traits_raw.items():
        if known and name not in known:
            raise _err(
                source,
                f"unknown trait '{name}' in the gates table; known: {', '.join(sorted(known))}",
            )
        values = {**defaults, **validate_thresholds(raw, f"traits.{name}", source)}
        if not values:
            raise _err(source, f"trait '{name}' has no thresholds")
        traits[name] = TraitGates(trait=name, **values)
    return GateConfig(settings=settings, traits=traits, source=source)


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise PersonaError(f"gate configuration file not found: {path}", exit_code=2)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise PersonaError(f"{path}: invalid TOML: {e}", exit_code=2) from e
    except OSError as e:
        raise PersonaError(f"{path}: cannot read: {e}", exit_code=2) from e


def gates_table(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``[tool.persona.gates]`` table of a parsed TOML document, if any."""
    node: Any = data
    for key in ("tool", "persona", "gates"):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def load_config(path: str | Path, known_traits: Iterable[str] | None = None) -> GateConfig:
    """Load gates from a TOML file: its ``[tool.persona.gates]`` table, else its top level.

    A ``pyproject.toml`` must contain ``[tool.persona.gates]``.
    """
    path = Path(path)
    data = _read_toml(path)
    table = gates_table(data)
    if table is None:
        if path.name == "pyproject.toml" or "tool" in data:
            raise PersonaError(f"{path}: no [tool.persona.gates] table", exit_code=2)
        table = data
    return parse_config(table, str(path), known_traits, root=path.parent)


def find_pyproject(start: str | Path | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` from ``start`` up, if it has ``[tool.persona.gates]``."""
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / "pyproject.toml"
        if candidate.is_file():
            return candidate if gates_table(_read_toml(candidate)) is not None else None
    return None

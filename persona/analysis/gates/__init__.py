"""Release gates: thresholds per trait, noise-aware verdicts, tables and JUnit XML.

Attributes are imported lazily so that ``persona.analysis.gates.config`` (standard library only)
stays cheap for the pytest plugin.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GateConfig": "config",
    "GateSettings": "config",
    "TraitGates": "config",
    "find_pyproject": "config",
    "load_config": "config",
    "parse_config": "config",
    "classify": "noise",
    "GateResult": "verdict",
    "TraitVerdict": "verdict",
    "gate_trait": "verdict",
    "GateReport": "report",
    "gate_frame": "report",
    "gate_logs": "report",
    "print_report": "table",
    "junit_xml": "junit",
    "write_junit": "junit",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'persona.analysis.gates' has no attribute {name!r}")
    return getattr(importlib.import_module(f"persona.analysis.gates.{_EXPORTS[name]}"), name)

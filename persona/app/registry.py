"""Inspect entry point (``[project.entry-points.inspect_ai] persona``).

Registers the ``persona/<model>`` provider (heavy imports deferred until it is used) and the
package's tasks, solvers and scorers, each imported only if its module exists.
"""

from __future__ import annotations

import importlib

from inspect_ai.model import ModelAPI, modelapi


@modelapi(name="persona")
def persona_provider() -> type[ModelAPI]:
    """Factory for the persona provider (imports torch only when used)."""
    from persona.provider.api import PersonaAPI

    return PersonaAPI


_OPTIONAL = ("evals.tasks", "solvers", "scorers")


def _import_optional(name: str) -> None:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is None or not (name == e.name or name.startswith(e.name + ".")):
            raise  # a real missing dependency inside an existing module


for _name in _OPTIONAL:
    _import_optional(_name)

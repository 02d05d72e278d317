"""Inspect entry point (``[project.entry-points.inspect_ai]`` ``persona`` and ``persona_evals``).

Registers the ``persona/<model>`` provider (heavy imports deferred until it is used) and the
package's tasks, solvers and scorers, each imported only if its module exists. Every task is
registered under its namespaced name ``persona_evals/<task>`` (Inspect loads the entry point whose
name is the prefix, so ``inspect eval persona_evals/trait_eval`` works from any folder) and under
its bare name ``<task>``, which works in editable and in regular installs alike. Loading it also
applies :mod:`persona.app.inspect_compat` (a plain absolute task path works from any folder).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from inspect_ai import Task
from inspect_ai._util.registry import RegistryInfo, registry_add, registry_has, registry_info
from inspect_ai.model import ModelAPI, modelapi

from persona.app.inspect_compat import patch_task_files

NAMESPACE = "persona_evals"


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


def task_names() -> list[str]:
    """The bare names of the package's tasks (``evals.tasks.__all__``)."""
    from evals import tasks

    return list(tasks.__all__)


def _alias(fn: Callable[..., Task], name: str) -> None:
    """Register ``fn`` also as task ``name`` (the task it builds keeps its own name)."""
    if registry_has("task", name):
        return

    @functools.wraps(fn)
    def alias(*args: Any, **kwargs: Any) -> Task:
        return fn(*args, **kwargs)

    info = registry_info(fn)
    registry_add(alias, RegistryInfo(type="task", name=name, metadata=dict(info.metadata)))


def _register_task_names() -> None:
    from evals import tasks

    for bare in task_names():
        fn = getattr(tasks, bare)
        _alias(fn, f"{NAMESPACE}/{bare}")
        _alias(fn, bare)


patch_task_files()
for _name in _OPTIONAL:
    _import_optional(_name)
if importlib.util.find_spec("evals.tasks") is not None:
    _register_task_names()

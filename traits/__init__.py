"""Trait definitions: one YAML file per trait, plus the loader and validator.

Use :func:`load` to get a validated, immutable :class:`Trait` by name or path, and
:func:`available` to list the bundled traits and those in ``$PERSONA_TRAITS_DIR``.
See ``docs/traits.md`` for the file format.
"""

from traits.loader import (
    ENV_VAR,
    available,
    default_output_dir,
    find,
    from_dict,
    load,
    load_file,
    loads,
    problems_in,
    to_yaml,
    trait_dirs,
    trait_files,
    write_trait,
)
from traits.model import AssistantNames, InstructionPair, Problem, Trait, TraitError

__all__ = [
    "ENV_VAR",
    "AssistantNames",
    "InstructionPair",
    "Problem",
    "Trait",
    "TraitError",
    "available",
    "default_output_dir",
    "find",
    "from_dict",
    "load",
    "load_file",
    "loads",
    "problems_in",
    "to_yaml",
    "trait_dirs",
    "trait_files",
    "write_trait",
]

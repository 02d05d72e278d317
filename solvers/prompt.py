"""``persona_prompt``: the trait's system prompt for one polarity and instruction pair."""

from __future__ import annotations

from inspect_ai.model import ChatMessageSystem
from inspect_ai.solver import Generate, Solver, TaskState, solver

import traits
from persona.errors import PersonaError
from solvers.condition import PersonaCondition


@solver
def persona_prompt(
    polarity: str | None = None, instruction_index: int | None = None, trait: str | None = None
) -> Solver:
    """Put "You are a/an {name} assistant. {instruction}" first in the conversation.

    Arguments left out are read from the sample metadata (``polarity``, ``instruction_index``,
    ``trait``); ``trait`` is a trait name or a path to its YAML file. A sample without a polarity
    gets no system prompt.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        pol = polarity if polarity is not None else state.metadata.get("polarity")
        if pol is None:
            return state
        if pol not in ("pos", "neg"):
            raise PersonaError(f"polarity must be 'pos' or 'neg', got {pol!r}")
        name = trait or state.metadata.get("trait")
        if not name:
            raise PersonaError("persona_prompt needs a trait (argument or sample metadata)")
        index = instruction_index
        if index is None:
            index = int(state.metadata.get("instruction_index", 0))
        definition = traits.load(name)
        try:
            text = definition.system_prompt(pol, index)
        except ValueError as e:
            raise PersonaError(f"trait {name}: {e}") from None
        state.messages = [m for m in state.messages if m.role != "system"]
        state.messages.insert(0, ChatMessageSystem(content=text))
        cond = PersonaCondition(store=state.store)
        cond.trait = definition.name
        cond.polarity = pol
        cond.instruction_index = index
        cond.system_prompt = text
        state.metadata["polarity"] = pol
        state.metadata["instruction_index"] = index
        return state

    return solve

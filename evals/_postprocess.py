"""Post-processing when a task ends: write the extracted vector, record the calibrated layer.

Inspect calls :class:`PersonaPostprocess` after a task's log is written. Hook exceptions never
fail an eval, so problems are printed as one ``persona:`` line; ``persona extract`` runs the
same post-processing itself (with this hook switched off) and exits non-zero on them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from inspect_ai.hooks import Hooks, TaskEnd, hooks

from persona.analysis.extraction import POST_KEY
from persona.errors import PersonaError

ENV_OFF = "PERSONA_NO_POSTPROCESS"
_disabled: ContextVar[bool] = ContextVar("persona_postprocess_disabled", default=False)


@contextmanager
def postprocess_disabled() -> Iterator[None]:
    """Switch the hook off (for callers that post-process the log themselves)."""
    token = _disabled.set(True)
    try:
        yield
    finally:
        _disabled.reset(token)


def say(message: str) -> None:
    print(f"persona: {message}", file=sys.stderr, flush=True)


def postprocess(log: Any, **overrides: Any) -> list[str]:
    """Run the post-processing a finished log asks for; return the messages."""
    post = (log.eval.metadata or {}).get(POST_KEY) or {}
    kind = post.get("kind")
    if kind == "extract_vector":
        from persona.analysis.extraction import vector_from_log

        result = vector_from_log(log, **overrides)
        return result.messages
    if kind == "steering_sweep":
        from evals._sweep import calibrate_from_log

        return calibrate_from_log(log, **overrides).messages
    return []


@hooks(name="persona_postprocess", description="Write extracted vectors and calibrated layers.")
class PersonaPostprocess(Hooks):
    def enabled(self) -> bool:
        return not _disabled.get() and os.environ.get(ENV_OFF, "") in ("", "0")

    async def on_task_end(self, data: TaskEnd) -> None:
        log = data.log
        post = (log.eval.metadata or {}).get(POST_KEY) or {}
        if not post or not post.get("write", True):
            return
        if log.status != "success":
            say(f"{post.get('kind')} did not finish (status {log.status}); nothing written")
            return
        try:
            for message in postprocess(log):
                say(message)
        except PersonaError as e:
            say(f"error: {e}")

"""The engine: batched chat generation and teacher-forced scoring with steering and capture.

One forward hook per needed layer does both jobs in the same pass:

* **capture** reads the residual stream *before* this call's steering at that layer is added, and
  keeps per-row running sums: per-layer means (response tokens, prompt tokens, last prompt token)
  when extracting, otherwise only projections onto requested vectors (``h . v/|v|``);
* **steering** adds ``coef * v`` (raw, unnormalised) at the selected positions of the selected rows.

Modules, one job each: ``records`` (what a call asks for and returns), ``positions`` (the one
definition of the steering positions ``all`` / ``prompt`` / ``response`` / ``prompt_last``),
``state`` (per-pass hook state), ``sampling``, ``stream`` (reply text that is final while a reply
grows, for per-token callbacks), ``candidates`` (complete-reply scoring for local judges) and
``core`` (the :class:`Engine` and its generate / score loop). Import from here: the names below
are the public interface.
"""

from persona.model.engine.core import Engine
from persona.model.engine.positions import POSITIONS, Position
from persona.model.engine.records import (
    MEAN_KINDS,
    Capture,
    Message,
    OnToken,
    ProjStats,
    Request,
    Result,
    Sampling,
    Steer,
    TokenEvent,
    TokenLogprob,
)

__all__ = [
    "MEAN_KINDS",
    "POSITIONS",
    "Capture",
    "Engine",
    "Message",
    "OnToken",
    "Position",
    "ProjStats",
    "Request",
    "Result",
    "Sampling",
    "Steer",
    "TokenEvent",
    "TokenLogprob",
]

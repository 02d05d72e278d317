"""Public records of the engine: what a call asks for (requests, steering, capture, sampling)
and what it returns (results, token log-probabilities, projections)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from persona.errors import PersonaError
from persona.model.engine.positions import POSITIONS, Position
from persona.model.vectors import KINDS

MEAN_KINDS = KINDS  # the per-layer means captured while extracting are the vector kinds

Message = Mapping[str, str]


@dataclass(frozen=True)
class Steer:
    """Add ``coef * vector`` to the residual stream at ``layer`` (output of block ``layer-1``)."""

    vector: torch.Tensor  # [d], raw persona vector at that layer
    layer: int
    coef: float
    positions: Position = "response"

    def __post_init__(self) -> None:
        if self.positions not in POSITIONS:
            raise PersonaError(
                f"unknown steering positions {self.positions!r}: use one of {', '.join(POSITIONS)}"
            )
        if not math.isfinite(float(self.coef)):
            raise PersonaError(f"steering coefficient must be a finite number, got {self.coef}")
        if self.vector.ndim != 1:
            raise PersonaError("a steering vector must be 1-dimensional (one layer's row)")


@dataclass(frozen=True)
class Capture:
    """What to measure during a call.

    ``means``: layers at which to keep full per-layer means (for extraction), or None.
    ``probes``: name -> ``[num_layers+1, d]`` raw vectors; projections use their unit rows.
    ``probe_layers``: name -> layers to project at. ``per_token``: also return the per-token
    response projections.
    """

    means: tuple[int, ...] | None = None
    probes: Mapping[str, torch.Tensor] = field(default_factory=dict)
    probe_layers: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    per_token: bool = False

    def layers(self) -> set[int]:
        out = set(self.means or ())
        for name in self.probes:
            out.update(self.probe_layers.get(name, ()))
        return out

    @property
    def empty(self) -> bool:
        return not self.layers()


@dataclass
class ProjStats:
    """Projections of one row onto one unit vector at one layer."""

    prompt_last: float
    prompt_mean: float
    response_mean: float | None  # None when the response has no tokens
    n_response: int
    per_token: list[float] | None = None


@dataclass(frozen=True)
class Request:
    """One chat to generate from (or, with ``response``, to score teacher-forced)."""

    messages: Sequence[Message]
    steer: tuple[Steer, ...] = ()
    seed: int | None = None
    response: str | None = None


@dataclass(frozen=True)
class Sampling:
    """Decoding settings shared by a batch. ``temperature`` 0 (or None) means greedy."""

    max_new_tokens: int = 128
    temperature: float | None = 0.0
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    ignore_eos: bool = False  # benchmarks: always produce max_new_tokens tokens


@dataclass
class TokenLogprob:
    """Log-probability of a returned token under the model's raw (temperature-1) distribution."""

    token: str
    token_id: int
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Result:
    """What one request produced."""

    text: str
    token_ids: list[int]
    prompt_tokens: int
    finish_reason: str  # "stop" (end of turn), "max_tokens", "stop_seq", "scored", "cancelled"
    logprobs: list[TokenLogprob] | None = None
    means: dict[str, torch.Tensor] | None = None  # kind -> [len(means_layers), d] float32 (cpu)
    means_layers: tuple[int, ...] = ()
    projections: dict[str, dict[int, ProjStats]] = field(default_factory=dict)
    response_logprob: float | None = None  # score(): sum of response-token log-probabilities


@dataclass(frozen=True)
class TokenEvent:
    """One generated token of one request, reported while its batch is still generating.

    ``index`` is the request's position in the list given to ``Engine.generate``. ``text`` is
    the reply text this token makes final: the texts of a request's events, concatenated, are
    always a prefix of its ``Result.text`` (text that a stop sequence may still cut, or an
    incomplete multi-byte character, is held back; the caller sends the rest of ``Result.text``
    at the end). ``projections`` (probe name -> layer -> value) are this token's per-token
    projections on the unsteered stream, when the capture asks for ``per_token``.
    """

    index: int
    token_id: int
    text: str
    logprob: TokenLogprob | None = None
    projections: dict[str, dict[int, float]] | None = None


#: Called for every generated token; returning False stops that request's generation at this
#: token (finish reason ``"cancelled"``), as an end-of-turn token would.
OnToken = Callable[[TokenEvent], bool]

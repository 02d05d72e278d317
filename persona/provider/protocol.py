"""The persona provider's per-call protocol (docs/protocol.md), as pydantic models.

Requests arrive in ``GenerateConfig.extra_body["persona"]`` (:class:`PersonaRequest`); results go
back in ``ModelOutput.metadata["persona"]`` (:class:`PersonaMetadata`). Unknown keys are errors,
never ignored. This module also classifies every ``GenerateConfig`` field (handled by the
provider, handled by Inspect itself, harmless to ignore, or refused). Steering positions and
vector kinds are not defined here: they come from the engine and the vector file format.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from persona.errors import PersonaError
from persona.model.engine import Position
from persona.model.vectors import Kind

EXTRA_BODY_KEY = "persona"
Mode = Literal["generate", "score", "candidates"]
Positions = Position  # the engine's one definition


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SteerSpec(_Strict):
    """One steering entry: ``h <- h + coef * v_raw`` at ``layer`` on ``positions``."""

    vector: str = Field(min_length=1, description="trait name (in the vectors dir) or a path")
    layer: int | None = Field(default=None, ge=1, description="default: the calibrated layer")
    coef: float = Field(allow_inf_nan=False)
    positions: Positions = "response"
    kind: Kind = "response_avg"


class CaptureSpec(_Strict):
    """What to measure on the unsteered residual stream during the call."""

    traits: list[str] = Field(default_factory=list)
    layers: list[int] | None = None
    kind: Kind = "response_avg"
    per_token: bool = False
    means: bool = False
    sidecar_dir: str | None = None

    @model_validator(mode="after")
    def _check(self) -> CaptureSpec:
        if self.layers is not None and any(layer < 0 for layer in self.layers):
            raise ValueError("capture.layers must be >= 0 (hidden_states indices)")
        if self.per_token and not self.traits:
            raise ValueError("capture.per_token needs capture.traits")
        return self


class PersonaRequest(_Strict):
    """``extra_body["persona"]``: steering, capture, mode and adapter for one call."""

    mode: Mode = "generate"
    steer: list[SteerSpec] = Field(default_factory=list)
    capture: CaptureSpec | None = None
    candidates: list[str] | None = None
    adapter: str | None = None
    seed: int | None = None

    @model_validator(mode="after")
    def _check(self) -> PersonaRequest:
        if self.mode == "candidates":
            if not self.candidates:
                raise ValueError("mode 'candidates' needs a non-empty 'candidates' list")
            if self.steer or self.capture:
                raise ValueError("mode 'candidates' takes no 'steer' or 'capture'")
        elif self.candidates is not None:
            raise ValueError("'candidates' is only used with mode 'candidates'")
        return self


def parse_extra_body(extra_body: dict[str, Any] | None) -> PersonaRequest:
    """Validate ``extra_body``: only the ``persona`` key is allowed; its content is strict."""
    body = dict(extra_body or {})
    raw = body.pop(EXTRA_BODY_KEY, None)
    if body:
        raise PersonaError(
            f"extra_body has unknown key(s) {sorted(body)}: the persona provider reads only "
            f"extra_body[{EXTRA_BODY_KEY!r}] (see docs/protocol.md)"
        )
    if raw is None:
        return PersonaRequest()
    if not isinstance(raw, dict):
        raise PersonaError(f"extra_body['persona'] must be an object, got {type(raw).__name__}")
    try:
        return PersonaRequest.model_validate(raw)
    except ValidationError as e:
        raise PersonaError(f"invalid extra_body['persona']: {_describe(e)}") from None


def _describe(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(request)"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key {where!r}{_valid_keys(err['loc'])}")
        else:
            parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _valid_keys(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = PersonaRequest
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        if field is None:
            continue
        if part == "steer":
            model = SteerSpec
        elif part == "capture":
            model = CaptureSpec
    return f" (valid keys: {', '.join(model.model_fields)})"


# ---------------------------------------------------------------------------------------------
# Returned metadata


class ProjectionOut(BaseModel):
    """Projections of one call onto one unit vector at one layer."""

    prompt_last: float
    prompt_mean: float
    response_mean: float | None
    n_response: int


class SteeringOut(BaseModel):
    """The effective steering entry (layer resolved)."""

    vector: str
    layer: int
    coef: float
    positions: Positions
    kind: Kind = "response_avg"


class PersonaMetadata(BaseModel):
    """``ModelOutput.metadata["persona"]``: compact, JSON-serialisable scalars only."""

    model: str
    adapter: str | None = None
    fingerprint: str
    mode: Mode = "generate"
    steering: list[SteeringOut] = Field(default_factory=list)
    steering_active: bool = False
    projections: dict[str, dict[str, ProjectionOut]] = Field(default_factory=dict)
    per_token: dict[str, dict[str, list[float]]] | None = None
    means_file: str | None = None
    response_logprob: float | None = None
    candidates: dict[str, float] | None = None
    seed: int | None = None

    def dump(self) -> dict[str, Any]:
        """JSON-ready dict without the optional keys that do not apply to this call."""
        out = self.model_dump(mode="json", exclude_none=True)
        out.setdefault("adapter", None)
        return out


def read_metadata(output: Any) -> PersonaMetadata | None:
    """The persona metadata of a ``ModelOutput`` (or None when the call was not ours)."""
    meta = getattr(output, "metadata", None) or {}
    raw = meta.get(EXTRA_BODY_KEY)
    return PersonaMetadata.model_validate(raw) if raw else None


# ---------------------------------------------------------------------------------------------
# GenerateConfig fields

#: Mapped onto the engine by the provider.
HANDLED = frozenset(
    {
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop_seqs",
        "seed",
        "logprobs",
        "top_logprobs",
        "extra_body",
        "num_choices",  # 1 only
        "best_of",  # 1 only
    }
)
#: Applied by Inspect's Model layer before or around the provider call.
INSPECT = frozenset(
    {
        "max_retries",
        "timeout",
        "attempt_timeout",
        "stream_idle_timeout",
        "max_connections",
        "adaptive_connections",
        "system_message",
        "cache",
        "batch",
        "fallback_models",
        "fail_on_refusal",
        "max_tool_output",
        "reasoning_history",
    }
)
#: Meaningless for a local model without tools or HTTP; ignored.
IGNORED = frozenset({"cache_prompt", "extra_headers", "parallel_tool_calls", "internal_tools"})
#: Cannot be honoured: a call that sets them fails with a clear error.
REFUSED = frozenset(
    {
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "prompt_logprobs",
        "response_schema",
        "modalities",
        "verbosity",
        "effort",
        "reasoning_effort",
        "reasoning_mode",
        "reasoning_tokens",
        "reasoning_summary",
    }
)


def check_config(config: Any) -> None:
    """Fail clearly on GenerateConfig settings this provider cannot honour."""
    bad = sorted(name for name in REFUSED if getattr(config, name, None) is not None)
    for name in ("num_choices", "best_of"):
        value = getattr(config, name, None)
        if value is not None and value != 1:
            bad.append(f"{name}={value}")
    if bad:
        raise PersonaError(
            f"the persona provider does not support {', '.join(bad)}: remove them from the "
            "generate config (one choice per call; no penalties, logit bias, schemas or "
            "reasoning options)"
        )

"""The effective condition of a sample, kept in the sample store (``PersonaCondition:<field>``).

Solvers write it; scorers and reports read it. It is saved with every sample in the log. Steering
entries are the provider protocol's own :class:`~persona.provider.protocol.SteerSpec` records
(vector file and layer already resolved), sent to the provider unchanged.
"""

from __future__ import annotations

from inspect_ai.util import StoreModel
from pydantic import BaseModel, ConfigDict, Field

from persona.provider.protocol import CaptureSpec, PersonaRequest, SteerSpec

BASE = "base"


class VectorRef(BaseModel):
    """One trait's vector file and the layer its projections are read at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    layer: int


class CaptureRecord(BaseModel):
    """What ``capture`` asked to measure: the primary trait, each trait's vector, means."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trait: str
    vectors: dict[str, VectorRef] = Field(default_factory=dict)
    means: bool = False
    sidecar_dir: str | None = None

    def spec(self) -> CaptureSpec | None:
        """The provider request for this capture (None when nothing is measured)."""
        if not self.vectors and not self.means:
            return None
        refs = list(self.vectors.values())
        return CaptureSpec(
            traits=[r.path for r in refs],
            layers=sorted({r.layer for r in refs}) if refs else None,
            means=self.means,
            sidecar_dir=self.sidecar_dir,
        )


class PersonaCondition(StoreModel):
    """What was applied to a sample's generation (and what was measured)."""

    trait: str | None = None
    polarity: str | None = None
    instruction_index: int | None = None
    system_prompt: str | None = None
    checkpoint: str = BASE
    adapter: str | None = None
    steer: list[SteerSpec] = Field(default_factory=list)
    capture: CaptureRecord | None = None
    request: PersonaRequest | None = None
    model: str | None = None

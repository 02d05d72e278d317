"""Inspect scorers for persona evaluations: LLM-judge trait and coherence scores, activation
projections, and ``persona_score`` combining them (see docs/schema.md)."""

from scorers.judging import Judge, check_judge, judge_role_bound, resolve_judge
from scorers.metrics import behaviour, checkpoint_deltas, correlations
from scorers.persona import coherence_judge, persona_score, projection, trait_judge
from scorers.rubrics import COHERENCE_RUBRIC

__all__ = [
    "COHERENCE_RUBRIC",
    "Judge",
    "behaviour",
    "check_judge",
    "checkpoint_deltas",
    "coherence_judge",
    "correlations",
    "judge_role_bound",
    "persona_score",
    "projection",
    "resolve_judge",
    "trait_judge",
]

"""Choosing the steering layer from a finished ``steering_sweep`` log.

Per (layer, coef) cell: mean trait and mean coherence over its samples. A cell's effect is
``sign(coef) * (mean trait - unsteered mean trait)``; a layer's effect is its best cell among
those with mean coherence >= the threshold. The layer with the largest effect is recorded as
``layer`` in the vector's metadata (with the grid under ``calibration``: each cell's judged
score is ``trait_score``, the unsteered one ``baseline_trait_score``; the older keys ``trait``
and ``baseline_trait`` hold the same numbers and are kept for existing readers).

Rollouts of one question are averaged first, so each question counts once in a cell's mean
(they are not independent samples). The coherence bar is the paper's 80 when a separate judge
is bound; a model judging itself cannot follow that rubric, so the bar is then 50 and the
choice is weak (docs/tasks.md).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from persona.analysis.extraction import POST_KEY, SCORER
from persona.errors import PersonaError

COHERENCE_CAPABLE = 80.0  # the paper's bar, with a separate (capable) judge bound
COHERENCE_SELF = 50.0  # the model judges itself: its coherence scores carry little signal


def coherence_bar(threshold: float | None, judge_bound: bool | None) -> float:
    """The coherence threshold: the one given, else 80 with a bound judge and 50 without."""
    if threshold is not None:
        return float(threshold)
    return COHERENCE_CAPABLE if judge_bound else COHERENCE_SELF


@dataclass
class Calibration:
    layer: int | None
    grid: list[dict[str, Any]]
    baseline: float
    messages: list[str] = field(default_factory=list)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _num(value: Any) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    )


Row = tuple[float, int | None, float, float, str]


def choose_layer(rows: list[Row], coherence_threshold: float) -> Calibration:
    """Pick the layer from ``(coef, layer, trait, coherence, question)`` rows (coef 0 = baseline).

    Each cell's trait and coherence are means over questions of the per-question rollout means.
    """
    per_question: dict[tuple[int | None, float, str], list[tuple[float, float]]] = defaultdict(list)
    for coef, layer, trait, coh, question in rows:
        key = (None if coef == 0 or layer is None else int(layer), float(coef), question)
        per_question[key].append((trait, coh))
    baseline_q = [_mean([t for t, _ in v]) for (lay, c, _), v in per_question.items() if c == 0]
    baseline = _mean(baseline_q)
    cells: dict[tuple[int, float], list[tuple[float, float]]] = defaultdict(list)
    for (layer, coef, _), values in per_question.items():
        if coef != 0 and layer is not None:
            cells[(layer, coef)].append(
                (_mean([t for t, _ in values]), _mean([c for _, c in values]))
            )
    grid = []
    for (layer, coef), values in sorted(cells.items()):
        trait = _mean([t for t, _ in values])
        coherence = _mean([c for _, c in values])
        effect = math.copysign(1.0, coef) * (trait - baseline)
        grid.append(
            {
                "layer": layer,
                "coef": coef,
                "questions": len(values),
                "trait_score": trait,
                "trait": trait,  # deprecated alias of trait_score
                "coherence": coherence,
                "effect": effect,
                "eligible": coherence >= coherence_threshold and math.isfinite(effect),
            }
        )
    best: dict[int, float] = {}
    for cell in grid:
        if cell["eligible"]:
            best[cell["layer"]] = max(best.get(cell["layer"], -math.inf), cell["effect"])
    layer = max(sorted(best), key=lambda lay: best[lay]) if best else None
    return Calibration(layer, grid, baseline)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def calibrate_from_log(log: Any, *, write: bool = True, **_: Any) -> Calibration:
    """Choose the layer from a finished sweep log and record it in the vector file."""
    from inspect_ai.log import read_eval_log, read_eval_log_samples

    from persona.model.vectors import load_vector, save_vector

    if isinstance(log, str):
        log = read_eval_log(log, header_only=True)
    post = (log.eval.metadata or {}).get(POST_KEY) or {}
    threshold = float(post.get("coherence_threshold", 50.0))
    samples = log.samples or read_eval_log_samples(
        log.location, all_samples_required=False, exclude_fields={"events"}
    )
    rows = []
    path = post.get("vector")
    for s in samples:
        if path is None:
            cap = (s.store or {}).get("PersonaCondition:capture") or {}
            path = ((cap.get("vectors") or {}).get(cap.get("trait")) or {}).get("path")
        score = (s.scores or {}).get(SCORER)
        if s.error is not None or score is None or not isinstance(score.value, dict):
            continue
        meta = s.metadata or {}
        if meta.get("polarity"):
            continue  # the prompting baseline: a system prompt, not a steering cell
        rows.append(
            (
                float(meta.get("coef") or 0.0),
                meta.get("layer"),
                _num(score.value.get("trait")),
                _num(score.value.get("coherence")),
                str(meta.get("question_id", s.id)),
            )
        )
    cal = choose_layer(rows, threshold)
    if cal.layer is None:
        raise PersonaError(
            f"no steered cell kept mean coherence >= {threshold:g} with a measurable trait "
            "effect, so no layer was chosen: try smaller coefficients, a lower "
            "-T coherence_threshold, or a separate judge (--model-role judge=...)"
        )
    best = max(
        (c for c in cal.grid if c["layer"] == cal.layer and c["eligible"]),
        key=lambda c: c["effect"],
    )
    cal.messages.append(
        f"chose layer {cal.layer} (trait score {best['trait_score']:.1f} vs {cal.baseline:.1f} "
        f"unsteered at coef {best['coef']:g}, coherence {best['coherence']:.1f})"
    )
    if write and path:
        vector = load_vector(path)
        info = {
            "coherence_threshold": threshold,
            "baseline_trait_score": cal.baseline,
            "baseline_trait": cal.baseline,  # deprecated alias of baseline_trait_score
            "grid": cal.grid,
            "source_log": str(log.location or ""),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        save_vector(vector.with_meta(layer=cal.layer, calibration=_json_safe(info)), path)
        cal.messages.append(f"recorded layer {cal.layer} in {path}")
    return cal

"""Build real Inspect ``.eval`` logs with known statistics, for report and gate tests.

Everything goes through ``inspect_ai.log.write_eval_log`` with real ``EvalLog``/``EvalSample``/
``Score`` objects, shaped as docs/schema.md says the tasks write them.

Low level::

    rows = [row(trait="evil", question_id="eval_0", trait_score=12.0, proj_prompt_last=0.3)]
    make_log(tmp_path / "a.eval", model="persona/smollm2-135m", task="trait_eval", rows=rows)

Scenarios with exactly known numbers: :func:`checkpoint_rows` (fine-tuning shift and trait change
per checkpoint), :func:`monitoring_rows` (per-sample projection vs score with an exact Pearson r),
:func:`steering_rows` (trait/coherence vs coefficient), and :func:`exact_corr` for the x/y
values themselves.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from inspect_ai.log import (
    EvalConfig,
    EvalDataset,
    EvalLog,
    EvalResults,
    EvalSample,
    EvalSpec,
    write_eval_log,
)
from inspect_ai.model import ChatMessageAssistant, ChatMessageUser, ModelOutput
from inspect_ai.scorer import Score

DEFAULT_MODEL = "persona/smollm2-135m"
DEFAULT_JUDGE = "openai/gpt-4.1-mini"


@dataclass
class Row:
    """One sample-epoch: sample metadata, the ``persona_score`` value and its metadata."""

    trait: str
    question_id: str
    checkpoint: str = "base"
    epoch: int = 1
    scores: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    score_metadata: dict[str, Any] = field(default_factory=dict)
    sample_id: str | None = None

    def default_id(self) -> str:
        """``trait:checkpoint:question_id:condition`` (unique within a log per epoch)."""
        return f"{self.trait}:{self.checkpoint}:{self.question_id}:{_cond_tag(self.metadata)}"

    def sample(self, model: str) -> EvalSample:
        """The ``EvalSample`` for this row."""
        question = self.metadata.get("question", f"Question {self.question_id} about {self.trait}?")
        meta = {
            "trait": self.trait,
            "question_id": self.question_id,
            "question": question,
            "checkpoint": self.checkpoint,
            **self.metadata,
        }
        answer = "A synthetic answer."
        return EvalSample(
            id=self.sample_id or self.default_id(),
            epoch=self.epoch,
            input=question,
            target="",
            messages=[ChatMessageUser(content=question), ChatMessageAssistant(content=answer)],
            output=ModelOutput.from_content(model, answer),
            metadata=meta,
            scores={"persona_score": Score(value=dict(self.scores), metadata=self.score_metadata)},
        )


def _cond_tag(meta: Mapping[str, Any]) -> str:
    keys = ("condition", "polarity", "coef", "layer")
    return ",".join(f"{k}={meta[k]}" for k in keys if k in meta) or "plain"


def row(
    *,
    trait: str,
    question_id: str,
    checkpoint: str = "base",
    epoch: int = 1,
    trait_score: float = math.nan,
    coherence: float = math.nan,
    proj_prompt_last: float | None = None,
    proj_response: float | None = None,
    extra_scores: Mapping[str, float] | None = None,
    judge_model: str | None = DEFAULT_JUDGE,
    judge_is_subject: bool = False,
    proj_layer: int | None = 3,
    condition: str | None = None,
    polarity: str | None = None,
    coef: float | None = None,
    layer: int | None = None,
    sample_id: str | None = None,
    **metadata: Any,
) -> Row:
    """A :class:`Row` with the schema's score keys; ``None`` projections are left out."""
    scores: dict[str, float] = {"trait": float(trait_score), "coherence": float(coherence)}
    if proj_response is not None:
        scores["proj_response"] = float(proj_response)
    if proj_prompt_last is not None:
        scores["proj_prompt_last"] = float(proj_prompt_last)
    scores.update(extra_scores or {})
    meta = {k: v for k, v in metadata.items() if v is not None}
    for key, value in (("condition", condition), ("polarity", polarity), ("coef", coef)):
        if value is not None:
            meta[key] = value
    if layer is not None:
        meta["layer"] = layer
    unscored = math.isnan(scores["trait"])
    score_meta: dict[str, Any] = {
        "trait": trait,
        "layer": proj_layer,
        "vector": f"vectors/smollm2-135m/{trait}.safetensors",
        "judge_model": judge_model,
        "judge_mode": "logprobs" if judge_model else None,
        "judge_mass": None if unscored else 0.9,
        "coherence_mass": None if math.isnan(scores["coherence"]) else 0.9,
        "judge_is_subject": judge_is_subject,
        "unscored_reason": "no judge" if unscored else None,
        "steering_active": bool(coef),
        "checkpoint": checkpoint,
    }
    return Row(trait, question_id, checkpoint, epoch, scores, meta, score_meta, sample_id)


def make_log(
    path: str | os.PathLike[str],
    *,
    rows: Sequence[Row],
    model: str = DEFAULT_MODEL,
    task: str = "trait_eval",
    model_args: Mapping[str, Any] | None = None,
    judge: str | None = DEFAULT_JUDGE,
    status: str = "success",
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``rows`` as one ``.eval`` log of ``task`` run on ``model``; return the path.

    ``status`` other than ``"success"`` writes an unfinished log (no results); ``metadata`` is
    the task's metadata (``checkpoint_shift`` records its ``checkpoints`` there, in run order).
    """
    from inspect_ai.model import ModelConfig

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = EvalSpec(
        created="2025-09-01T00:00:00+00:00",
        task=task,
        dataset=EvalDataset(name=task, samples=len(rows)),
        model=model,
        model_args=dict(model_args or {}),
        model_roles={"judge": ModelConfig(model=judge)} if judge else None,
        config=EvalConfig(),
        metadata=dict(metadata) if metadata else None,
    )
    samples = [r.sample(model) for r in rows]
    keys = [(s.id, s.epoch) for s in samples]
    if len(set(keys)) != len(keys):
        dupes = sorted({str(k) for k in keys if keys.count(k) > 1})[:3]
        raise ValueError(f"duplicate sample (id, epoch) in one log: {', '.join(dupes)}")
    done = status == "success"
    results = EvalResults(total_samples=len(samples), completed_samples=len(samples))
    log = EvalLog(
        status=status,  # type: ignore[arg-type]
        eval=spec,
        samples=samples,
        results=results if done else None,
    )
    write_eval_log(log, str(path))
    return path


def write_corrupt_log(path: str | os.PathLike[str]) -> Path:
    """A file with a ``.eval`` name that is not a zip."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK\x03\x04 this is not a complete zip archive")
    return path


def exact_corr(n: int, r: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two length-``n`` vectors (mean 0, sd 1) whose sample Pearson correlation is exactly ``r``."""
    if n < 3:
        raise ValueError("exact_corr needs n >= 3")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    z = rng.standard_normal(n)
    x = (x - x.mean()) / x.std()
    z = z - z.mean()
    z = z - (z @ x) / (x @ x) * x  # orthogonal to x and centred
    z = z / z.std()
    y = r * x + math.sqrt(max(0.0, 1.0 - r * r)) * z
    return x, y


def _zero_mean_noise(n: int, sd: float, rng: np.random.Generator) -> np.ndarray:
    e = rng.standard_normal(n) * sd
    return e - e.mean()


def checkpoint_rows(
    *,
    trait: str,
    shifts: Mapping[str, float],
    deltas: Mapping[str, float],
    n_questions: int = 10,
    epochs: int = 1,
    base_trait: float = 20.0,
    base_coherence: float = 85.0,
    coherence_deltas: Mapping[str, float] | None = None,
    response_factor: float = 1.5,
    noise: float = 0.2,
    seed: int = 0,
    **row_kwargs: Any,
) -> list[Row]:
    """Base rows plus rows per checkpoint alias with exactly known paired differences.

    For checkpoint ``c``: mean over questions of ``proj_prompt_last(c) - proj_prompt_last(base)``
    is exactly ``shifts[c]``; the response variant is ``response_factor * shifts[c]``; the mean
    trait-score change is exactly ``deltas[c]`` (coherence: ``coherence_deltas[c]`` or 0).
    The noise added per question sums to zero, so per-question values vary but means are exact.
    """
    rng = np.random.default_rng(seed)
    qids = [f"eval_{i}" for i in range(n_questions)]
    base_pl = rng.normal(-1.0, 0.5, n_questions)
    base_resp = rng.normal(-0.5, 0.5, n_questions)
    base_tr = base_trait + _zero_mean_noise(n_questions, 5.0, rng)
    base_co = base_coherence + _zero_mean_noise(n_questions, 3.0, rng)
    out: list[Row] = []
    for ep in range(1, epochs + 1):
        for i, q in enumerate(qids):
            out.append(
                row(
                    trait=trait,
                    question_id=q,
                    epoch=ep,
                    trait_score=base_tr[i],
                    coherence=base_co[i],
                    proj_prompt_last=base_pl[i],
                    proj_response=base_resp[i],
                    **row_kwargs,
                )
            )
    for ckpt, shift in shifts.items():
        e_pl = _zero_mean_noise(n_questions, noise, rng)
        e_resp = _zero_mean_noise(n_questions, noise, rng)
        e_tr = _zero_mean_noise(n_questions, 4.0, rng)
        e_co = _zero_mean_noise(n_questions, 2.0, rng)
        d_co = (coherence_deltas or {}).get(ckpt, 0.0)
        for ep in range(1, epochs + 1):
            for i, q in enumerate(qids):
                out.append(
                    row(
                        trait=trait,
                        question_id=q,
                        checkpoint=ckpt,
                        epoch=ep,
                        trait_score=base_tr[i] + deltas[ckpt] + e_tr[i],
                        coherence=base_co[i] + d_co + e_co[i],
                        proj_prompt_last=base_pl[i] + shift + e_pl[i],
                        proj_response=base_resp[i] + response_factor * shift + e_resp[i],
                        **row_kwargs,
                    )
                )
    return out


def monitoring_rows(
    *,
    trait: str,
    r: float,
    conditions: Sequence[str] = ("neg_0", "neg_1", "base", "pos_1", "pos_0"),
    n_per_condition: int = 12,
    seed: int = 0,
    **row_kwargs: Any,
) -> list[Row]:
    """Rows under several system-prompt conditions whose per-sample Pearson r of
    ``proj_prompt_last`` vs ``trait`` is exactly ``r`` (scores may leave 0..100 slightly)."""
    n = len(conditions) * n_per_condition
    x, y = exact_corr(n, r, seed=seed)
    # sort so that conditions differ systematically, as system prompts do
    order = np.argsort(x)
    x, y = x[order], y[order]
    out = []
    for k in range(n):
        cond = conditions[k // n_per_condition]
        polarity = "pos" if cond.startswith("pos") else "neg" if cond.startswith("neg") else None
        out.append(
            row(
                trait=trait,
                question_id=f"eval_{k % n_per_condition}",
                condition=cond,
                polarity=polarity,
                trait_score=50.0 + 15.0 * y[k],
                coherence=80.0,
                proj_prompt_last=float(x[k]),
                proj_response=float(x[k]) * 1.2,
                **row_kwargs,
            )
        )
    return out


def steering_rows(
    *,
    trait: str,
    coefs: Iterable[float],
    layers: Iterable[int] = (3,),
    trait_fn: Callable[[float, int], float] = lambda c, layer: 10.0 + 25.0 * c,
    coherence_fn: Callable[[float, int], float] = lambda c, layer: 90.0 - 12.0 * c * c,
    n_questions: int = 5,
    seed: int = 0,
    **row_kwargs: Any,
) -> list[Row]:
    """Rows of a steering sweep shaped like ``steering_sweep`` writes them: one unsteered
    baseline (coef 0, no layer; when 0 is in ``coefs``) and every (layer, coef != 0) cell. The
    mean trait/coherence of a cell is exactly ``trait_fn(coef, layer)`` /
    ``coherence_fn(coef, layer)``; the baseline's uses the first layer."""
    rng = np.random.default_rng(seed)
    layers = list(layers)
    cells: list[tuple[float, int | None]] = [
        (float(c), lay) for lay in layers for c in coefs if c != 0
    ]
    if any(c == 0 for c in coefs):
        cells.insert(0, (0.0, None))
    out = []
    for coef, layer in cells:
        at = layers[0] if layer is None else layer
        e_t = _zero_mean_noise(n_questions, 3.0, rng)
        e_c = _zero_mean_noise(n_questions, 2.0, rng)
        for i in range(n_questions):
            out.append(
                row(
                    trait=trait,
                    question_id=f"eval_{i}",
                    coef=coef,
                    layer=layer,
                    positions="response" if coef else None,
                    condition=f"coef={coef:g},L={layer}" if coef else "base",
                    trait_score=trait_fn(coef, at) + e_t[i],
                    coherence=coherence_fn(coef, at) + e_c[i],
                    proj_prompt_last=float(rng.normal()),
                    proj_response=float(rng.normal()),
                    **row_kwargs,
                )
            )
    return out


def split_by_checkpoint(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """Group rows by checkpoint alias (for writing one log per checkpoint)."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(r.checkpoint, []).append(r)
    return groups


def as_plain_checkpoint(rows: Sequence[Row]) -> list[Row]:
    """The rows relabelled ``checkpoint="base"``, as a per-checkpoint log (adapter) writes them."""
    out = []
    for r in rows:
        meta = dict(r.score_metadata, checkpoint="base")
        out.append(Row(r.trait, r.question_id, "base", r.epoch, r.scores, r.metadata, meta))
    return out

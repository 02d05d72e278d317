"""Turn a finished ``extract_vector`` log into a persona vector file (docs/schema.md).

Positive and negative samples are paired by (question, instruction pair, rollout, epoch). With
filtering on, a pair is kept only if the positive reply's trait score is >= ``trait_threshold``,
the negative one's is < ``100 - trait_threshold`` and both coherences are >= the coherence
threshold (paper defaults: 50, 50, 50; NaN fails every test). The vector is the difference of
means of the kept replies' per-layer activation means, read from the provider's sidecar files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from persona.errors import PersonaError

SCORER = "persona_score"
POST_KEY = "persona_post"


@dataclass(frozen=True)
class FilterSettings:
    """Extraction filter: ``enabled`` None means "on when a separate judge scored"."""

    enabled: bool | None = None
    trait_threshold: float = 50.0
    coherence_threshold: float = 50.0
    min_pairs: int = 10


@dataclass
class Reply:
    """What extraction needs from one sample."""

    polarity: str
    key: tuple[Any, ...]
    trait: float
    coherence: float
    means_file: str | None
    judge_model: str | None
    judge_is_subject: bool | None


@dataclass
class ExtractionResult:
    """The written (or would-be) vector and the filter's counts."""

    path: Path | None
    total: int
    kept: int
    filter_info: dict[str, Any]
    messages: list[str] = field(default_factory=list)


def _num(value: Any) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    )


def _reply(sample: Any) -> Reply | None:
    meta = sample.metadata or {}
    pol = meta.get("polarity")
    if pol not in ("pos", "neg") or sample.error is not None:
        return None
    score = (sample.scores or {}).get(SCORER)
    value = score.value if score is not None and isinstance(score.value, dict) else {}
    smeta = (score.metadata if score is not None else None) or {}
    out_meta = (sample.output.metadata if sample.output else None) or {}
    key = (
        meta.get("question_id"),
        meta.get("instruction_index"),
        meta.get("rollout", 0),
        sample.epoch,
    )
    return Reply(
        polarity=pol,
        key=key,
        trait=_num(value.get("trait")),
        coherence=_num(value.get("coherence")),
        means_file=(out_meta.get("persona") or {}).get("means_file"),
        judge_model=smeta.get("judge_model"),
        judge_is_subject=smeta.get("judge_is_subject"),
    )


def pair_replies(samples: Iterable[Any]) -> list[tuple[Reply, Reply]]:
    """(positive, negative) pairs with the same question, instruction, rollout and epoch."""
    pos: dict[tuple[Any, ...], Reply] = {}
    neg: dict[tuple[Any, ...], Reply] = {}
    for sample in samples:
        reply = _reply(sample)
        if reply is not None:
            (pos if reply.polarity == "pos" else neg)[reply.key] = reply
    return [(pos[k], neg[k]) for k in pos if k in neg]


def keep_pair(p: Reply, n: Reply, settings: FilterSettings) -> bool:
    """The paper's filter (NaN fails every comparison)."""
    t, c = settings.trait_threshold, settings.coherence_threshold
    return p.trait >= t and n.trait < 100 - t and p.coherence >= c and n.coherence >= c


def _load_means(path: str) -> tuple[dict[str, Any], dict[str, str]]:
    from safetensors import safe_open

    if not Path(path).exists():
        raise PersonaError(
            f"activation sidecar {path} is missing (was it deleted or written on another "
            "machine?): re-run the extraction"
        )
    with safe_open(path, framework="pt") as f:
        return {k: f.get_tensor(k).float() for k in f.keys()}, dict(f.metadata() or {})


def _counts(pairs: list[tuple[Reply, Reply]], s: FilterSettings) -> str:
    t, c = s.trait_threshold, s.coherence_threshold
    pos_ok = sum(p.trait >= t for p, _ in pairs)
    neg_ok = sum(n.trait < 100 - t for _, n in pairs)
    coh_ok = sum(p.coherence >= c and n.coherence >= c for p, n in pairs)
    unscored = sum(math.isnan(p.trait) or math.isnan(n.trait) for p, n in pairs)
    return (
        f"pos trait >= {t:g}: {pos_ok}, neg trait < {100 - t:g}: {neg_ok}, both coherence >= "
        f"{c:g}: {coh_ok}, pairs with an unscored trait: {unscored} (of {len(pairs)})"
    )


def settings_from_log(log: Any, **overrides: Any) -> tuple[FilterSettings, dict[str, Any]]:
    """Filter settings and post-processing options recorded by the task, with overrides."""
    post = dict(((log.eval.metadata or {}).get(POST_KEY)) or {})
    values = {k: post[k] for k in FilterSettings.__dataclass_fields__ if k in post}
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = FilterSettings(**values)
    return settings, post


def vector_from_samples(
    samples: Iterable[Any],
    *,
    trait: str,
    trait_hash: str,
    settings: FilterSettings,
    out_dir: str | Path | None,
    source: str = "",
) -> ExtractionResult:
    """Filter, average and (when ``out_dir`` is given) write the vector."""
    import torch

    from persona.model.vectors import (
        PersonaVector,
        build_meta,
        diff_of_means,
        save_vector,
        vector_path,
    )

    pairs = pair_replies(samples)
    if not pairs:
        raise PersonaError(
            f"no complete pos/neg pairs in {source or 'the log'}: was it an extract_vector run "
            "that finished without errors?"
        )
    judges = {p.judge_model for pr in pairs for p in pr if p.judge_model}
    subject = any(p.judge_is_subject for pr in pairs for p in pr if p.judge_is_subject is not None)
    if settings.enabled and not judges:
        raise PersonaError(
            "filtering needs judge scores, but this extraction was not judged (judge=false): "
            "run it with the judge on, or extract without the filter"
        )
    enabled = settings.enabled if settings.enabled is not None else bool(judges) and not subject
    messages = []
    if settings.enabled is None and not enabled:
        if judges:
            why = "no judge role was bound, so the model under evaluation judged itself"
            hint = "bind --model-role judge=MODEL, or force -T filter=true"
        else:
            why, hint = "the replies were not judged", "run with the judge to filter"
        messages.append(f"filtering is off: {why}; all pairs are kept ({hint})")
    kept = [pr for pr in pairs if keep_pair(*pr, settings)] if enabled else pairs
    info = {
        "enabled": enabled,
        "thresholds": {
            "pos_trait_min": settings.trait_threshold,
            "neg_trait_max_exclusive": 100 - settings.trait_threshold,
            "coherence_min": settings.coherence_threshold,
        },
        "kept": len(kept),
        "total": len(pairs),
        "judge": sorted(judges)[0] if len(judges) == 1 else (sorted(judges) or None),
        "judge_is_subject": subject if judges else None,
    }
    if not enabled and settings.enabled is False:
        info["reason"] = "disabled by the user"
    elif not enabled and not judges:
        info["reason"] = "not judged"
    elif not enabled:
        info["reason"] = "no separate judge (the model under evaluation judged itself)"
    if len(kept) < max(1, settings.min_pairs):
        raise PersonaError(
            f"filtering kept {len(kept)} of {len(pairs)} pos/neg pairs for {trait}, fewer than "
            f"the minimum {settings.min_pairs} ({_counts(pairs, settings)}). Options: more "
            "questions or rollouts, a stronger judge (--model-role judge=openai/gpt-4.1-mini), "
            "lower thresholds (-T trait_threshold=.. -T coherence_threshold=..), a smaller "
            "-T min_pairs, or no filter (-T filter=false / persona extract --no-filter)"
        )
    pos_caps, neg_caps, meta = [], [], {}
    for p, n in kept:
        if not p.means_file or not n.means_file:
            raise PersonaError(
                "a sample has no activation sidecar (means_file): the log was not produced by "
                "extract_vector with the persona provider"
            )
        pc, meta = _load_means(p.means_file)
        nc, _ = _load_means(n.means_file)
        pos_caps.append(pc)
        neg_caps.append(nc)
    tensors = diff_of_means(pos_caps, neg_caps)
    model_id = _json(meta.get("model_id"))
    first = next(iter(tensors.values()))
    vec_meta = build_meta(
        model_id=str(model_id),
        fingerprint=str(_json(meta.get("fingerprint"))),
        num_layers=int(first.shape[0]) - 1,
        hidden_size=int(first.shape[1]),
        trait=trait,
        trait_hash=trait_hash,
        layer=None,
        filter_info=info,
        extra={"source_log": source} if source else None,
    )
    vector = PersonaVector(**{k: v.to(torch.float32) for k, v in tensors.items()}, meta=vec_meta)
    path = None
    if out_dir is not None:
        path = save_vector(vector, vector_path(out_dir, str(model_id), trait))
        messages.append(
            f"wrote {path}: {trait} vector from {len(kept)} of {len(pairs)} pairs "
            f"(filter {'on' if enabled else 'off'})"
        )
    return ExtractionResult(path, len(pairs), len(kept), info, messages)


def _json(value: Any) -> Any:
    import json

    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def vector_from_log(
    log: Any,
    *,
    out_dir: str | Path | None = None,
    write: bool = True,
    settings: FilterSettings | None = None,
    **overrides: Any,
) -> ExtractionResult:
    """Post-process a finished extraction log (an ``EvalLog`` or a path) into a vector file.

    ``out_dir`` defaults to the task's ``vectors`` folder (``write=False``: compute only);
    settings default to the task's and can be overridden (``enabled``, ``trait_threshold``,
    ``coherence_threshold``, ``min_pairs``).
    """
    from inspect_ai.log import read_eval_log, read_eval_log_samples

    if isinstance(log, str | Path):
        log = read_eval_log(str(log), header_only=True)
    if log.status != "success":
        raise PersonaError(
            f"the extraction log {log.location} did not finish (status {log.status}): resume it "
            "with `inspect eval-retry` (or `inspect eval-set`) first"
        )
    found, post = settings_from_log(log, **overrides)
    settings = settings or found
    meta = log.eval.metadata or {}
    trait = meta.get("trait") or post.get("trait")
    if not trait:
        raise PersonaError(f"{log.location} is not an extract_vector log (no trait recorded)")
    samples = log.samples or read_eval_log_samples(
        log.location, all_samples_required=False, exclude_fields={"events"}
    )
    result = vector_from_samples(
        samples,
        trait=str(trait),
        trait_hash=str(meta.get("trait_hash", "")),
        settings=settings,
        out_dir=(out_dir if out_dir is not None else post.get("vectors")) if write else None,
        source=str(log.location or ""),
    )
    result.filter_info = {**result.filter_info, "settings": asdict(settings)}
    return result

"""Screening fine-tuning data: per-sample projection difference along a persona vector.

Projection difference of a sample (prompt x, reply y) at layer L (docs/finetune.md):

    response projection of (x, y)  -  response projection of (x, y')

where y' is the base model's own greedy reply to x and a response projection is the mean over
reply tokens of ``h . v/|v|`` (teacher-forced, unsteered). The dataset value is the mean.
The two replies are compared over the same number of tokens: both means run over the first
``min(len(y), len(y'))`` reply tokens (base replies stop at ``max_new_tokens``, dataset replies
do not), so a long reply is not compared with a capped one (docs/finetune.md). Attention is
causal, so the first k tokens' activations are those of the reply truncated to k tokens.
Base replies are cached on disk, keyed by the model fingerprint, the generation settings and a
hash of the prompt, so a second screen of the same data generates nothing.

``fast``: the paper's cheap approximation without base generations (App. I, Fig. 23): the
response projection of (x, y) minus the projection of the last prompt token of x.

Multi-turn samples are screened on their last assistant turn (the earlier turns are context).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from persona.atomic import atomic_path, write_text
from persona.data.chatdata import ChatData, hash_json, write_jsonl
from persona.model.engine import Capture, Engine, Request, Sampling
from persona.model.loading import LoadedModel, cache_dir
from persona.model.vectors import PersonaVector

PROBE = "trait"
CACHE_CHUNK = 64  # prompts generated between cache writes
METHODS = {
    "full": "response projection minus the base model's own response projection",
    "fast": "response projection minus last-prompt-token projection (no base generations)",
}


@dataclass(frozen=True)
class ScreenOptions:
    """How to screen: ``fast`` skips base generations; base replies are greedy."""

    fast: bool = False
    max_new_tokens: int = 128
    max_batch: int = 16
    use_cache: bool = True


@dataclass
class ScreenResult:
    """Ranked per-sample values (highest projection difference first) and the dataset value."""

    frame: pd.DataFrame
    dataset_value: float
    method: str
    trait: str
    layer: int
    model: str
    base_generated: int = 0
    base_cached: int = 0

    @property
    def n_missing(self) -> int:
        return int(self.frame["projection_diff"].isna().sum())

    def summary(self) -> dict[str, Any]:
        vals = self.frame["projection_diff"].dropna()
        return {
            "trait": self.trait,
            "layer": self.layer,
            "model": self.model,
            "method": self.method,
            "method_description": METHODS[self.method],
            "samples": len(self.frame),
            "missing": self.n_missing,
            "dataset_value": self.dataset_value,
            "std": float(vals.std()) if len(vals) > 1 else None,
            "base_generated": self.base_generated,
            "base_cached": self.base_cached,
        }


# ---------------------------------------------------------------------------------------------
# Base replies (cached)


def _cache_file(lm: LoadedModel, max_new_tokens: int, root: Path | None) -> Path:
    ident = lm.base_fingerprint + (f"-{hash_json(lm.adapter)[:12]}" if lm.adapter else "")
    return (root or cache_dir()) / "base-responses" / ident / f"greedy-{max_new_tokens}.json"


def _read_cache(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def base_responses(
    lm: LoadedModel,
    prompts: Sequence[Sequence[dict[str, str]]],
    *,
    max_new_tokens: int = 128,
    max_batch: int = 16,
    use_cache: bool = True,
    cache_root: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[str], int, int]:
    """The model's greedy reply to each prompt; how many came from the cache; how many generated.

    Repeated prompts are generated once.
    """
    keys = [hash_json(list(p)) for p in prompts]
    path = _cache_file(lm, max_new_tokens, cache_root)
    cache = _read_cache(path) if use_cache else {}
    first: dict[str, int] = {}  # prompt key -> first sample needing a generation
    for i, k in enumerate(keys):
        if k not in cache:
            first.setdefault(k, i)
    missing = list(first.values())
    cached = sum(1 for k in keys if k in cache)
    if progress and cached:
        progress(cached)
    engine = Engine(lm, max_batch=max_batch)
    sampling = Sampling(max_new_tokens=max_new_tokens, temperature=0.0)
    for start in range(0, len(missing), CACHE_CHUNK):
        chunk = missing[start : start + CACHE_CHUNK]
        results = engine.generate([Request(list(prompts[i])) for i in chunk], sampling)
        for i, res in zip(chunk, results, strict=True):
            cache[keys[i]] = res.text
        if progress:
            done = {keys[i] for i in chunk}
            progress(sum(1 for k in keys if k in done))
        if use_cache:
            latest = _read_cache(path)  # keep what another process added meanwhile
            latest.update(cache)
            cache = latest
            write_text(path, json.dumps(cache, ensure_ascii=False))
    return [cache[k] for k in keys], cached, len(missing)


# ---------------------------------------------------------------------------------------------
# Screening


def screen(
    lm: LoadedModel,
    data: ChatData,
    vector: PersonaVector,
    layer: int,
    options: ScreenOptions | None = None,
    *,
    cache_root: Path | None = None,
    progress: Callable[[str, int], Callable[[int], None] | None] | None = None,
) -> ScreenResult:
    """Projection difference of every sample of ``data`` along ``vector`` at ``layer``.

    ``progress(stage, total)`` may return an ``advance(n)`` callback for each stage.
    """
    options = options or ScreenOptions()
    prompts = [s.prompt for s in data.samples]
    n = len(prompts)
    base: list[str] | None = None
    cached = generated = 0
    if not options.fast:
        base, cached, generated = base_responses(
            lm,
            prompts,
            max_new_tokens=options.max_new_tokens,
            max_batch=options.max_batch,
            use_cache=options.use_cache,
            cache_root=cache_root,
            progress=progress("base replies", n) if progress else None,
        )
    requests = [Request(p, response=s.response) for p, s in zip(prompts, data.samples, strict=True)]
    if base is not None:
        requests += [Request(p, response=b) for p, b in zip(prompts, base, strict=True)]
    capture = Capture(
        probes={PROBE: vector.response_avg},
        probe_layers={PROBE: (layer,)},
        per_token=base is not None,
    )
    engine = Engine(lm, max_batch=options.max_batch)
    scored = engine.score(
        requests, capture, progress=progress("scoring", len(requests)) if progress else None
    )
    rows = []
    for i, s in enumerate(data.samples):
        own = scored[i].projections[PROBE][layer]
        resp = _num(own.response_mean)
        row: dict[str, Any] = {
            "line": s.line,
            "proj_response": resp,
            "proj_prompt_last": own.prompt_last,
            "response_tokens": own.n_response,
        }
        if base is not None:
            other = scored[n + i].projections[PROBE][layer]
            own_mean, base_mean, k = matched_means(own.per_token or [], other.per_token or [])
            row["proj_response_matched"] = own_mean
            row["proj_base_response_matched"] = base_mean
            row["base_response_tokens"] = other.n_response
            row["matched_tokens"] = k
            row["projection_diff"] = own_mean - base_mean
        else:
            row["projection_diff"] = resp - own.prompt_last
        meta = s.record.get("persona")
        if isinstance(meta, dict):  # data made by ``persona data make``: keep its level
            row["label"] = meta.get("level")
        row["prompt"] = _last_user(s.prompt)
        row["response"] = s.response
        if base is not None:
            row["base_response"] = base[i]
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame = frame.sort_values("projection_diff", ascending=False, na_position="last", kind="stable")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    frame = frame.reset_index(drop=True)
    values = frame["projection_diff"].dropna()
    return ScreenResult(
        frame=frame,
        dataset_value=float(values.mean()) if len(values) else math.nan,
        method="fast" if options.fast else "full",
        trait=vector.trait,
        layer=layer,
        model=lm.name,
        base_generated=generated,
        base_cached=cached,
    )


def matched_means(own: Sequence[float], base: Sequence[float]) -> tuple[float, float, int]:
    """Means of two per-token projection lists over their first ``min(len)`` tokens (and k)."""
    k = min(len(own), len(base))
    if k == 0:
        return math.nan, math.nan, 0
    return sum(own[:k]) / k, sum(base[:k]) / k, k


def _num(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _last_user(messages: Sequence[dict[str, str]]) -> str:
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


# ---------------------------------------------------------------------------------------------
# Outputs


def write_csv(result: ScreenResult, path: str | Path) -> Path:
    """Ranked CSV (atomic) plus a ``.summary.json`` beside it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        result.frame.to_csv(tmp, index=False)
    write_text(path.with_suffix(".summary.json"), json.dumps(result.summary(), indent=2))
    return path


def write_histogram(result: ScreenResult, path: str | Path, threshold: float | None = None) -> Path:
    """Histogram PNG of per-sample values (split by label when the data carries levels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = result.frame.dropna(subset=["projection_diff"])
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    labels = sorted(frame["label"].dropna().unique()) if "label" in frame else []
    values = frame["projection_diff"]
    edges = np.histogram_bin_edges(values, bins=min(40, max(5, len(values) // 3)))
    if len(labels) > 1:
        for label in labels:
            sel = frame.loc[frame["label"] == label, "projection_diff"]
            ax.hist(sel, bins=edges, alpha=0.55, label=f"{label} (n={len(sel)})")
    else:
        ax.hist(values, bins=edges, color="tab:blue", alpha=0.8, label=f"samples (n={len(values)})")
    ax.axvline(result.dataset_value, color="black", ls="--", lw=1, label="dataset mean")
    if threshold is not None:
        ax.axvline(threshold, color="tab:red", lw=1.2, label=f"threshold {threshold:g}")
    kind = "projection difference" if result.method == "full" else "fast projection difference"
    ax.set_title(f"{result.trait}: per-sample {kind} (layer {result.layer}, {result.model})")
    ax.set_xlabel(f"{kind} (residual-stream units along the unit {result.trait} vector)")
    ax.set_ylabel("samples (count)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def write_clean(
    data: ChatData, result: ScreenResult, threshold: float, path: str | Path
) -> tuple[int, int]:
    """Write samples whose value is <= threshold (or unmeasurable) in their original order.

    Returns (kept, dropped).
    """
    values = dict(zip(result.frame["line"], result.frame["projection_diff"], strict=True))
    kept = [s.record for s in data.samples if not values[s.line] > threshold]
    write_jsonl(path, kept)
    return len(kept), len(data) - len(kept)


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """P(score of a random positive > score of a random negative), ties counted half."""
    pos = [x for x in positive if not math.isnan(x)]
    neg = [x for x in negative if not math.isnan(x)]
    if not pos or not neg:
        return math.nan
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))

"""The report's ``summary.json`` (docs/schema.md): the numbers gates read."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from persona.analysis.report.build import Report

SCHEMA_VERSION = "persona-report/1"


def _v(x: Any) -> Any:
    """JSON-safe scalar: NaN/None/NA -> None, numpy -> Python."""
    if x is None or x is pd.NA:
        return None
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _int(x: Any) -> int | None:
    v = _v(x)
    return None if v is None else int(v)


def _ci(row: pd.Series, name: str) -> list[float] | None:
    lo, hi = _v(row.get(f"{name}_ci_lo")), _v(row.get(f"{name}_ci_hi"))
    return None if lo is None or hi is None else [lo, hi]


_ESTIMATES = (
    ("trait", "trait_mean"),
    ("coherence", "coherence_mean"),
    ("shift_prompt_last", "shift_prompt_last"),
    ("shift_response", "shift_response"),
    ("trait_delta", "trait_delta"),
    ("coherence_delta", "coherence_delta"),
)
"""(CI name, value column) of each estimate of a checkpoint-table row."""


def _checkpoint(row: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {"n": _int(row["n"])}
    for name, value in _ESTIMATES:
        out[value] = _v(row[value])
        out[f"{name}_ci"] = _ci(row, name)
    return out | {
        "judge": _v(row["judge"]),
        "judge_is_subject": _v(row["judge_is_subject"]),
        "measure": _v(row["measure"]),
        "is_base": bool(row["is_base"]),
        "pairing": _v(row["pairing"]),
    }


def _corr(row: pd.Series) -> dict[str, Any]:
    return {
        "n": _int(row["n"]),
        "pearson_r": _v(row["pearson_r"]),
        "pearson_p": _v(row["pearson_p"]),
        "pearson_ci": _ci(row, "pearson"),
        "spearman_r": _v(row["spearman_r"]),
        "spearman_p": _v(row["spearman_p"]),
        "spearman_ci": _ci(row, "spearman"),
        "note": _v(row["note"]),
    }


def _matrix(df: pd.DataFrame | None) -> dict[str, dict[str, Any]] | None:
    if df is None:
        return None
    return {str(a): {str(b): _v(df.loc[a, b]) for b in df.columns} for a in df.index}


def summary_dict(rep: Report) -> dict[str, Any]:
    """Everything numeric in the report; numbers that cannot be computed are ``null``."""
    checkpoints: dict[str, dict[str, Any]] = {}
    for _, row in rep.checkpoints.iterrows():
        checkpoints.setdefault(str(row["checkpoint"]), {})[str(row["trait"])] = _checkpoint(row)
    correlations: dict[str, Any] = {}
    pooled = None
    for trait, g in rep.correlations.groupby("trait", sort=False):
        by_kind = {k: _corr(r) for k, (_, r) in zip(g["shift"], g.iterrows(), strict=True)}
        entry = dict(by_kind.get("prompt_last", {}))
        entry["response"] = by_kind.get("response")
        if trait == "all traits":
            pooled = entry
        else:
            correlations[str(trait)] = entry
    monitoring: dict[str, Any] = {}
    for _, r in rep.monitoring.iterrows():
        monitoring.setdefault(str(r["trait"]), []).append(
            {
                "checkpoint": _v(r["checkpoint"]),
                "task": _v(r["task"]),
                "family": _v(r["family"]),
                "measure": _v(r["measure"]),
                "n": _int(r["n"]),
                "n_questions": _int(r["n_questions"]),
                "n_conditions": _int(r["n_conditions"]),
                "rollouts": _v(r["rollouts"]),
                "pearson_r": _v(r["pearson_r"]),
                "pearson_p": _v(r["pearson_p"]),
                "pearson_ci": _ci(r, "pearson"),
                "within_condition_r": _v(r["within_condition_r"]),
                "within_ci": _ci(r, "within"),
                "within_conditions": _int(r["within_conditions"]),
                "sd_floor": _v(r["sd_floor"]),
                "split_half_r": _v(r["split_half_r"]),
                "split_half_within_r": _v(r["split_half_within_r"]),
                "paper_r": _v(r["paper_r"]),
                "paper_within_r": _v(r["paper_within_r"]),
            }
        )
    steering: dict[str, Any] = {}
    for _, r in rep.operating_points.iterrows():
        steering.setdefault(str(r["trait"]), {})[str(r["checkpoint"])] = {
            k: _v(r[k]) for k in ("layer", "coef", "trait_mean", "coherence_mean", "note")
        }
    for _, r in rep.prompting.iterrows():
        entry = steering.setdefault(str(r["trait"]), {}).setdefault(str(r["checkpoint"]), {})
        entry["prompting"] = {
            "n": _int(r["n"]),
            "trait_mean": _v(r["trait_mean"]),
            "trait_ci": _ci(r, "trait"),
            "coherence_mean": _v(r["coherence_mean"]),
        }
    geo = rep.geometry
    return {
        "format": SCHEMA_VERSION,
        "base": rep.base,
        "traits": rep.traits,
        "judges": sorted(set(rep.judges["judge"])) if not rep.judges.empty else [],
        "warnings": rep.warnings,
        "missing": rep.missing,
        "skipped_logs": rep.skipped_logs,
        "logs": rep.logs,
        "checkpoints": checkpoints,
        "correlations": correlations,
        "correlation_all_traits": pooled,
        "cross_trait": _matrix(rep.cross_trait_r) if len(rep.cross_trait_r) else None,
        "monitoring": monitoring,
        "steering": steering,
        "geometry": None
        if geo.cosine is None
        else {"layer": geo.layer, "cosine": _matrix(geo.cosine)},
        "settings": rep.settings,
    }


def summary_json(rep: Report) -> str:
    """``summary_dict`` as indented JSON (strict: no NaN)."""
    return json.dumps(summary_dict(rep), indent=2, allow_nan=False) + "\n"

"""Build a :class:`Report` (pandas DataFrames plus notes) from Inspect logs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from persona.analysis import compare
from persona.analysis.logs import read_logs
from persona.analysis.report import checkpoints as ck
from persona.analysis.report import judges as jd
from persona.analysis.report import monitoring as mon
from persona.analysis.report import steering as st
from persona.analysis.report.geometry import Geometry, vector_geometry
from persona.errors import PersonaError

PRODUCED_BY = {
    "projections": "the `checkpoint_shift` and `trait_eval` tasks record `proj_prompt_last` and "
    "`proj_response` when the persona provider has the trait's vector (`-M vectors=DIR`)",
    "scores": "tasks record judged `trait`/`coherence` scores when run with a judge "
    "(`--model-role judge=MODEL`)",
    "checkpoints": "the `checkpoint_shift` task (or one `trait_eval` log per checkpoint, "
    "e.g. `-M adapter=DIR`)",
    "steering": "the `steering_sweep` task",
    "monitoring": "the `monitor` task (graded system prompts and many-shot prompts, "
    "unsteered), or `extract_vector` (pos/neg system prompts), run with projections",
}


@dataclass
class Report:
    """Every table of a comparative trait report, as DataFrames, plus its notes."""

    base: str
    traits: list[str]
    samples: pd.DataFrame
    checkpoints: pd.DataFrame
    correlations: pd.DataFrame
    cross_trait_r: pd.DataFrame
    cross_trait_n: pd.DataFrame
    monitoring: pd.DataFrame
    monitoring_points: dict[tuple[str, str, str], pd.DataFrame]  # (condition, question) points
    steering: pd.DataFrame
    operating_points: pd.DataFrame
    prompting: pd.DataFrame  # steering sweeps' prompting baseline (trait's own system prompts)
    geometry: Geometry
    judges: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped_logs: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


def _traits(frame: pd.DataFrame, wanted: Sequence[str] | None) -> list[str]:
    have = sorted(str(t) for t in frame["trait_name"].dropna().unique())
    if not wanted:
        if not have:
            raise PersonaError("the logs name no trait (sample metadata `trait` is missing)")
        return have
    wanted = [t.strip() for w in wanted for t in w.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in have]
    if unknown:
        raise PersonaError(
            f"trait(s) {', '.join(unknown)} not in the logs; they hold: {', '.join(have) or 'none'}"
        )
    return wanted


def _missing(frame: pd.DataFrame, base: str, steer: pd.DataFrame, monit: pd.DataFrame) -> list[str]:
    out = []
    no_proj = frame["proj_prompt_last"].isna().all()
    if no_proj and frame["proj_response"].isna().all():
        out.append(
            "no projections in the logs, so no fine-tuning shift or monitoring: "
            + PRODUCED_BY["projections"]
        )
    elif no_proj:
        out.append("no prompt-last projections in the logs: " + PRODUCED_BY["projections"])
    likelihood = frame["likelihood"] if "likelihood" in frame.columns else None
    if frame["trait"].isna().all() and likelihood is not None and likelihood.notna().any():
        pass  # behaviour by the likelihood judge (nats/token): no 0-100 scores were asked for
    elif frame["trait"].isna().all():
        out.append(
            "no judge scores in the logs (every `trait` is unscored): " + PRODUCED_BY["scores"]
        )
    else:
        unscored = frame[frame["trait"].isna()]
        if len(unscored):
            reasons = unscored.get("unscored_reason", pd.Series(dtype=object)).dropna()
            why = ", ".join(f"{k} ({v})" for k, v in reasons.value_counts().items())
            out.append(
                f"{len(unscored)} of {len(frame)} samples have no trait score"
                + (f": {why}" if why else "")
            )
    if set(frame["checkpoint_id"].unique()) <= {base}:
        out.append(
            "only the base model is in the logs; checkpoints come from "
            + PRODUCED_BY["checkpoints"]
        )
    elif base not in set(frame["checkpoint_id"].unique()):
        out.append(
            f"no rows of the base {base}; shifts and changes need it: " + PRODUCED_BY["checkpoints"]
        )
    if steer.empty:
        out.append("no steering sweep (two or more coefficients): " + PRODUCED_BY["steering"])
    if monit.empty and not no_proj:
        out.append("no varied conditions for monitoring: " + PRODUCED_BY["monitoring"])
    return out


def _log_layers(frame: pd.DataFrame) -> dict[str, int]:
    if "proj_layer" not in frame.columns:
        return {}
    rows = frame[["trait_name", "proj_layer"]].dropna()
    return {str(t): int(g["proj_layer"].mode().iloc[0]) for t, g in rows.groupby("trait_name")}


def build_report(
    logs: Sequence[str | os.PathLike[str]],
    *,
    base: str | None = None,
    traits: Sequence[str] | None = None,
    vectors: str | os.PathLike[str] | None = None,
    min_coherence: float = 50.0,
    n_boot: int = 2000,
    seed: int = 0,
) -> Report:
    """Read ``logs`` (files or folders) and compute every report table.

    Raises :class:`PersonaError` when no log is readable, when logs of several base models are
    mixed without ``base``, or when a requested trait is absent.
    """
    logset = read_logs(logs, warn=False)
    if not logset.read:
        listing = "; ".join(str(s) for s in logset.skipped) or "no .eval/.json files found"
        raise PersonaError(f"no readable logs: {listing}")
    frame = logset.frame
    base_id, warnings = compare.resolve_base(compare.identities(frame), base, others="compare")
    chosen = _traits(frame, traits)
    frame = frame[frame["trait_name"].isin(chosen)].reset_index(drop=True)
    warnings += [f"skipped log {s}" for s in logset.skipped]

    rows = compare.canonical(frame)
    table, compared = ck.checkpoint_table(rows, base_id, chosen, n_boot=n_boot, seed=seed)
    warnings += compared
    corr = ck.correlations(table, n_boot=n_boot, seed=seed)
    cross_r, cross_n = ck.cross_trait(table)
    monit, monit_points = mon.monitoring_table(frame, chosen, n_boot=n_boot, seed=seed)
    steer = st.steering_table(st.steering_rows(frame), chosen, n_boot=n_boot, seed=seed)
    judges = jd.judge_table(frame)
    warnings += jd.judge_warnings(judges, table) + compare.measure_warnings(frame)
    geometry = vector_geometry(vectors, base_id, list(traits or []) or None, _log_layers(frame))
    return Report(
        base=base_id,
        traits=chosen,
        samples=frame,
        checkpoints=table,
        correlations=corr,
        cross_trait_r=cross_r,
        cross_trait_n=cross_n,
        monitoring=monit,
        monitoring_points=monit_points,
        steering=steer,
        operating_points=st.operating_points(steer, min_coherence=min_coherence),
        prompting=st.prompting_table(frame, chosen, n_boot=n_boot, seed=seed),
        geometry=geometry,
        judges=judges,
        warnings=warnings,
        missing=_missing(frame, base_id, steer, monit),
        skipped_logs=[str(s) for s in logset.skipped],
        logs=logset.read,
        settings={"min_coherence": min_coherence, "n_boot": n_boot, "seed": seed, "level": 0.95},
    )

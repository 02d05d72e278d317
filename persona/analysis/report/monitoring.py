"""Monitoring: per-sample prompt-last projection vs judged trait score across conditions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from persona.analysis import stats
from persona.analysis.report.judges import judge_of

MONITORING_COLUMNS = [
    "trait",
    "checkpoint",
    "task",
    "n",
    "n_conditions",
    "varied",
    "pearson_r",
    "pearson_p",
    "pearson_ci_lo",
    "pearson_ci_hi",
    "spearman_r",
    "spearman_p",
    "within_condition_r",
    "judge",
    "note",
]


def monitoring_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with both a prompt-last projection and a trait score."""
    return frame[frame["proj_prompt_last"].notna() & frame["trait"].notna()]


def _varied(rows: pd.DataFrame) -> str:
    """What differs between the conditions: system prompts, steering, or other labels."""
    kinds = []
    if rows["polarity"].dropna().astype(str).str.strip().ne("").any():
        kinds.append("system prompts")
    if rows["coef"].fillna(0.0).nunique() > 1:
        kinds.append("steering")
    return " + ".join(kinds) or "other"


def _within(rows: pd.DataFrame) -> float | None:
    """Mean Pearson r within conditions (those with n >= 3 and some variance)."""
    rs = []
    for _, g in rows.groupby("condition"):
        c = stats.correlation(g["proj_prompt_last"], g["trait"], n_boot=0)
        if c.r is not None:
            rs.append(c.r)
    return float(np.mean(rs)) if rs else None


def monitoring_table(
    frame: pd.DataFrame, traits: list[str], *, n_boot: int, seed: int
) -> pd.DataFrame:
    """One row per trait x checkpoint x task whose rows span at least two conditions
    (conditions are compared within one task, so that generation settings match)."""
    rows = monitoring_rows(frame)
    records = []
    for trait in traits:
        t_rows = rows[rows["trait_name"] == trait]
        for (ck, task), g in t_rows.groupby(["checkpoint_id", "task"], sort=True):
            n_cond = int(g["condition"].nunique())
            if n_cond < 2:
                continue
            rec: dict = {"trait": trait, "checkpoint": ck, "task": task, "n_conditions": n_cond}
            rec["varied"] = _varied(g)
            for method in ("pearson", "spearman"):
                c = stats.correlation(
                    g["proj_prompt_last"], g["trait"], method, n_boot=n_boot, seed=seed
                )
                rec["n"] = c.n
                rec[f"{method}_r"], rec[f"{method}_p"] = c.r, c.p
                if method == "pearson":
                    rec["pearson_ci_lo"] = c.ci[0] if c.ci else None
                    rec["pearson_ci_hi"] = c.ci[1] if c.ci else None
                rec["note"] = c.reason
            rec["within_condition_r"] = _within(g)
            rec["judge"] = judge_of(g)[0]
            records.append(rec)
    out = pd.DataFrame.from_records(records, columns=MONITORING_COLUMNS)
    for col in MONITORING_COLUMNS:
        if col not in ("trait", "checkpoint", "task", "varied", "judge", "note"):
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out


def monitoring_samples(
    frame: pd.DataFrame, table: pd.DataFrame, base: str
) -> dict[tuple[str, str, str], pd.DataFrame]:
    """Sample rows to plot, keyed by (trait, checkpoint, task): every monitoring row of the base
    checkpoint, or for a trait without one, those of its first checkpoint."""
    rows = monitoring_rows(frame)
    out = {}
    for trait, g in table.groupby("trait", sort=False):
        pick = g[g["checkpoint"] == base]
        if pick.empty:
            pick = g[g["checkpoint"] == g["checkpoint"].iloc[0]]
        for _, r in pick.iterrows():
            key = (str(trait), str(r["checkpoint"]), str(r["task"]))
            out[key] = rows[
                (rows["trait_name"] == trait)
                & (rows["checkpoint_id"] == r["checkpoint"])
                & (rows["task"] == r["task"])
            ]
    return out

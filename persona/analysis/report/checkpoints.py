"""Checkpoint table (fine-tuning shift, judged scores, change vs base) and its correlations."""

from __future__ import annotations

import numpy as np
import pandas as pd

from persona.analysis import stats
from persona.analysis.report.judges import judge_of

SHIFT_KINDS = {"prompt_last": "proj_prompt_last", "response": "proj_response"}
CHECKPOINT_COLUMNS = [
    "checkpoint",
    "trait",
    "is_base",
    "n",
    "n_samples",
    "pairing",
    "shift_prompt_last",
    "shift_prompt_last_ci_lo",
    "shift_prompt_last_ci_hi",
    "shift_response",
    "shift_response_ci_lo",
    "shift_response_ci_hi",
    "trait_mean",
    "trait_ci_lo",
    "trait_ci_hi",
    "coherence_mean",
    "coherence_ci_lo",
    "coherence_ci_hi",
    "trait_delta",
    "trait_delta_ci_lo",
    "trait_delta_ci_hi",
    "coherence_delta",
    "coherence_delta_ci_lo",
    "coherence_delta_ci_hi",
    "judge",
    "judge_is_subject",
]


def per_question(rows: pd.DataFrame, column: str) -> pd.Series:
    """Mean of ``column`` per question (epochs and duplicates averaged), NaN dropped."""
    if column not in rows.columns:
        return pd.Series(dtype=float)
    vals = rows[["question_id", column]].dropna()
    return vals.groupby("question_id")[column].mean()


def question_means(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-question means of the score keys (one groupby for all of them)."""
    cols = [c for c in ("trait", "coherence", *SHIFT_KINDS.values()) if c in rows.columns]
    return rows.groupby("question_id")[cols].mean()


def _put(rec: dict, name: str, est: stats.Estimate) -> None:
    rec[name] = est.value
    rec[f"{name}_ci_lo"] = est.ci[0] if est.ci else None
    rec[f"{name}_ci_hi"] = est.ci[1] if est.ci else None


def _diff(ck: pd.Series, base: pd.Series, n_boot: int, seed: int) -> tuple[stats.Estimate, str]:
    """Paired (by question) difference of means, or unpaired when no question is shared."""
    common = ck.index.intersection(base.index)
    if len(common) > 0:
        est = stats.paired_diff_ci(
            ck.loc[common].to_numpy(), base.loc[common].to_numpy(), n_boot=n_boot, seed=seed
        )
        return est, "paired"
    return stats.diff_ci(ck.to_numpy(), base.to_numpy(), n_boot=n_boot, seed=seed), "unpaired"


def comparison_base(rows: pd.DataFrame, base: str) -> pd.DataFrame:
    """The base rows checkpoints are compared with: those in the checkpoints' own logs (as the
    ``checkpoint_shift`` task writes them), else from the same tasks, else all base rows."""
    base_rows = rows[rows["checkpoint_id"] == base]
    ck_rows = rows[rows["checkpoint_id"] != base]
    if ck_rows.empty:
        return base_rows
    for key in ("log", "task"):
        same = base_rows[base_rows[key].isin(set(ck_rows[key]))]
        if not same.empty:
            return same
    return base_rows


def checkpoint_table(
    plain: pd.DataFrame, base: str, traits: list[str], *, n_boot: int, seed: int
) -> pd.DataFrame:
    """One row per checkpoint x trait (base first): shifts, means and deltas with 95% CIs."""
    records = []
    ckpts = [base] + sorted(c for c in plain["checkpoint_id"].unique() if c != base)
    for trait in traits:
        t_rows = plain[plain["trait_name"] == trait]
        base_rows = comparison_base(t_rows, base)
        base_q = question_means(base_rows)
        groups = dict(tuple(t_rows.groupby("checkpoint_id", sort=False)))
        groups[base] = base_rows
        for ck in ckpts:
            rows = groups.get(ck)
            if rows is None or rows.empty:
                continue
            is_base = ck == base
            ck_qm = question_means(rows)
            rec: dict = {"checkpoint": ck, "trait": trait, "is_base": is_base}
            rec["n"] = int(rows["question_id"].nunique())
            rec["n_samples"] = len(rows)
            pairings = set()
            for kind, col in SHIFT_KINDS.items():
                if is_base:
                    _put(rec, f"shift_{kind}", stats.Estimate(None, None, 0, "base"))
                    continue
                est, how = _diff(ck_qm[col].dropna(), base_q[col].dropna(), n_boot, seed)
                if est.n:
                    pairings.add(how)
                _put(rec, f"shift_{kind}", est)
            for key in ("trait", "coherence"):
                ck_q = ck_qm[key].dropna()
                _put(rec, f"{key}_mean", stats.mean_ci(ck_q.to_numpy(), n_boot=n_boot, seed=seed))
                rec[f"{key}_ci_lo"] = rec.pop(f"{key}_mean_ci_lo")
                rec[f"{key}_ci_hi"] = rec.pop(f"{key}_mean_ci_hi")
                if is_base:
                    _put(rec, f"{key}_delta", stats.Estimate(None, None, 0, "base"))
                    continue
                est, how = _diff(ck_q, base_q[key].dropna(), n_boot, seed)
                if est.n:
                    pairings.add(how)
                _put(rec, f"{key}_delta", est)
            rec["pairing"] = "base" if is_base else (", ".join(sorted(pairings)) or "n/a")
            rec["judge"], rec["judge_is_subject"] = judge_of(rows)
            records.append(rec)
    out = pd.DataFrame.from_records(records, columns=CHECKPOINT_COLUMNS)
    text = {"checkpoint", "trait", "is_base", "pairing", "judge", "judge_is_subject"}
    for col in CHECKPOINT_COLUMNS:
        if col not in text:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out


def _corr_record(x: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> dict:
    rec: dict = {}
    for method in ("pearson", "spearman"):
        c = stats.correlation(x, y, method, n_boot=n_boot, seed=seed)
        rec["n"] = c.n
        rec[f"{method}_r"] = c.r
        rec[f"{method}_p"] = c.p
        rec[f"{method}_ci_lo"] = c.ci[0] if c.ci else None
        rec[f"{method}_ci_hi"] = c.ci[1] if c.ci else None
        rec["note"] = c.reason
    return rec


def correlations(table: pd.DataFrame, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Shift vs trait-score change across checkpoints, per trait and pooled over traits."""
    ck = table[~table["is_base"].astype(bool)]
    records = []
    groups = [(t, ck[ck["trait"] == t]) for t in ck["trait"].unique()]
    if len(groups) > 1:
        groups.append(("all traits", ck))
    for trait, rows in groups:
        for kind in SHIFT_KINDS:
            x = rows[f"shift_{kind}"].to_numpy(dtype=float)
            y = rows["trait_delta"].to_numpy(dtype=float)
            rec = {"trait": trait, "shift": kind}
            rec.update(_corr_record(x, y, n_boot, seed))
            records.append(rec)
    cols = ["trait", "shift", "n"] + [
        f"{m}_{k}" for m in ("pearson", "spearman") for k in ("r", "p", "ci_lo", "ci_hi")
    ]
    out = pd.DataFrame.from_records(records, columns=cols + ["note"])
    for col in cols[2:]:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out


def cross_trait(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pearson r (and n) of the shift along trait A's vector (rows) with the change in trait B's
    judged score (columns), across checkpoints; the diagonal is each trait's own r."""
    ck = table[~table["is_base"].astype(bool)]
    shift = ck.pivot_table(index="checkpoint", columns="trait", values="shift_prompt_last")
    delta = ck.pivot_table(index="checkpoint", columns="trait", values="trait_delta")
    traits = sorted(set(shift.columns) | set(delta.columns))
    r = pd.DataFrame(np.nan, index=traits, columns=traits, dtype=float)
    n = pd.DataFrame(0, index=traits, columns=traits, dtype=int)
    for a in traits:
        for b in traits:
            if a not in shift.columns or b not in delta.columns:
                continue
            pair = pd.concat([shift[a], delta[b]], axis=1, keys=["x", "y"]).dropna()
            c = stats.correlation(pair["x"].to_numpy(), pair["y"].to_numpy(), n_boot=0)
            n.loc[a, b] = c.n
            r.loc[a, b] = np.nan if c.r is None else c.r
    r.index.name = n.index.name = "vector (shift)"
    r.columns.name = n.columns.name = "behaviour (trait change)"
    return r, n

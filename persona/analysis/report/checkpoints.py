"""Checkpoint table (fine-tuning shift, judged scores, change vs base) and its correlations."""

from __future__ import annotations

import numpy as np
import pandas as pd

from persona.analysis import compare, stats
from persona.analysis.report.judges import judge_of

SHIFT_KINDS = {"prompt_last": "proj_prompt_last", "response": "proj_response"}
SCORE_COLUMNS = {"trait": "score", "coherence": "coherence"}
"""Report name of a judged key -> its canonical column."""
CHECKPOINT_COLUMNS = [
    "checkpoint",
    "trait",
    "is_base",
    "n",
    "n_samples",
    "pairing",
    *stats.ci_columns("shift_prompt_last"),
    *stats.ci_columns("shift_response"),
    *stats.ci_columns("trait", "trait_mean"),
    *stats.ci_columns("coherence", "coherence_mean"),
    *stats.ci_columns("trait_delta"),
    *stats.ci_columns("coherence_delta"),
    "judge",
    "judge_is_subject",
    "measure",
]


_CHANGES = {f"shift_{k}": c for k, c in SHIFT_KINDS.items()} | {
    f"{key}_delta": col for key, col in SCORE_COLUMNS.items()
}
"""Table name of each change vs base -> its canonical column."""


def _base_record(rec: dict) -> None:
    for name in _CHANGES:
        rec.update(stats.Estimate(None, None, 0, "base").columns(name))
    rec["pairing"] = "base"


def _candidate_record(rec: dict, sel: compare.Selection, boot: dict, skip: set[str]) -> None:
    pairings = set()
    for name, column in _CHANGES.items():
        if name in skip:
            rec.update(stats.Estimate(None, None, 0, "not comparable").columns(name))
            continue
        diff = compare.difference(sel.candidate, sel.base, column, **boot)
        if diff.pairing != "none":
            pairings.add(diff.pairing)
        rec.update(diff.estimate.columns(name))
    rec["pairing"] = ", ".join(sorted(pairings)) or "n/a"


def checkpoint_table(
    rows: pd.DataFrame, base: str, traits: list[str], *, n_boot: int, seed: int
) -> tuple[pd.DataFrame, list[str]]:
    """One row per checkpoint x trait (base first, then as given) from canonical rows
    (:mod:`persona.analysis.compare`): shifts, means and changes with 95% CIs; and warnings."""
    records, warnings = [], []
    boot = {"n_boot": n_boot, "seed": seed}
    for trait in traits:
        t_rows = rows[rows["trait_name"] == trait]
        for ck in compare.checkpoint_order(t_rows, base):
            is_base = ck == base
            if is_base:
                ck_rows = compare.base_rows(t_rows, base, t_rows[t_rows["checkpoint"] != base])
                if ck_rows.empty:
                    continue
            else:
                sel = compare.select(t_rows, trait, ck, base)
                mismatch = compare.vector_mismatch(sel)
                other_measure = compare.measure_mismatch(sel)
                warnings += sel.warnings + [m for m in (mismatch, other_measure) if m]
                ck_rows = sel.candidate
            rec: dict = {"checkpoint": ck, "trait": trait, "is_base": is_base}
            rec["n"] = int(ck_rows["unit"].nunique())
            rec["n_samples"] = len(ck_rows)
            for key, column in SCORE_COLUMNS.items():
                means = compare.unit_means(ck_rows, column).to_numpy()
                rec.update(stats.mean_ci(means, **boot).columns(key, f"{key}_mean"))
            if is_base:
                _base_record(rec)
            else:
                _candidate_record(rec, sel, boot, {"trait_delta"} if other_measure else set())
            rec["judge"], rec["judge_is_subject"] = judge_of(ck_rows)
            rec["measure"] = compare.measure_text(compare.distinct(ck_rows, "measure")) or None
            records.append(rec)
    out = pd.DataFrame.from_records(records, columns=CHECKPOINT_COLUMNS)
    text = {"checkpoint", "trait", "is_base", "pairing", "judge", "judge_is_subject", "measure"}
    for col in CHECKPOINT_COLUMNS:
        if col not in text:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out, warnings


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


def _mixed_measures(rows: pd.DataFrame) -> bool:
    """Whether these rows' behaviour changes mix scales (0-100 points and nats/token), so they
    cannot be set side by side in one correlation."""
    return rows.loc[rows["trait_delta"].notna(), "measure"].nunique(dropna=True) > 1


def correlations(table: pd.DataFrame, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Shift vs trait-score change across checkpoints, per trait and pooled over traits (only
    over checkpoints whose behaviour has one measure)."""
    ck = table[~table["is_base"].astype(bool)]
    records = []
    groups = [(t, ck[ck["trait"] == t]) for t in ck["trait"].unique()]
    if len(groups) > 1:
        groups.append(("all traits", ck))
    for trait, rows in groups:
        mixed = _mixed_measures(rows)
        comparable = rows.iloc[0:0] if mixed else rows
        for kind in SHIFT_KINDS:
            x = comparable[f"shift_{kind}"].to_numpy(dtype=float)
            y = comparable["trait_delta"].to_numpy(dtype=float)
            rec = {"trait": trait, "shift": kind}
            rec.update(_corr_record(x, y, n_boot, seed))
            if mixed:
                rec["note"] = "behaviour measured on different scales (0-100 and nats/token)"
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
    mixed = [t for t, rows in ck.groupby("trait") if _mixed_measures(rows)]
    delta = ck[~ck["trait"].isin(mixed)].pivot_table(
        index="checkpoint", columns="trait", values="trait_delta"
    )
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

"""Monitoring as the paper measures it (docs/reports.md, "Monitoring"): does the last prompt
token's projection predict the trait expression of the reply that follows?

Rules (docs/reports.md):

* only unsteered rows count: a projection read where a vector is added (``coef`` != 0 or
  ``steering_active``) is shifted by construction;
* rollouts of one prompt are averaged into one point per (condition, question), so ``n`` counts
  prompts, never rollouts;
* the overall Pearson r is computed per family of conditions (graded system prompts, many-shot
  prompts, or another task's conditions) with a bootstrap CI that resamples **questions**, and
  the within-condition r is the Fisher-z mean of the per-condition r across questions, with the
  same CI; conditions whose behaviour SD across questions is below :data:`SD_FLOOR` are left out
  of it (an r there measures noise around a constant, as the paper leaves them out);
* split-half reliability of the behaviour points: even vs odd rollouts of each point, r across
  points (overall and Fisher-z mean within conditions), Spearman-Brown corrected. It bounds how
  high any r with the behaviour can come out.

Behaviour is the 0-100 LLM judge when a judge other than the subject scored the rows, else the
likelihood judge (``likelihood``), else the self-judged score (named as such).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from persona.analysis import stats
from persona.analysis.judge import LIKELIHOOD_KEY as LIKELIHOOD
from persona.analysis.judge import LIKELIHOOD_UNIT
from persona.analysis.report.judges import judge_of
from persona.analysis.report.plots import PROJ_UNIT, SCORE_UNIT

FAMILY_NAMES = {"system_prompt": "system prompt", "many_shot": "many-shot"}
LEVEL_NAMES = {
    "system_prompt": "system-prompt grade (0 = suppressing, 7 = promoting)",
    "many_shot": "earlier trait-showing turns (shots)",
}
PAPER_R = {  # paper Table 2: overall / within-condition r
    ("evil", "system prompt"): (0.747, 0.511),
    ("evil", "many-shot"): (0.755, 0.735),
    ("sycophantic", "system prompt"): (0.798, 0.669),
    ("sycophantic", "many-shot"): (0.817, 0.813),
    ("hallucinating", "system prompt"): (0.830, 0.245),
    ("hallucinating", "many-shot"): (0.634, 0.400),
}

SD_FLOOR = {SCORE_UNIT: 1.0, LIKELIHOOD_UNIT: 0.005}
"""A condition enters the within-condition r only if its behaviour points' SD across questions
reaches this: 1 judge point, or 0.005 nats/token (about 1/30 of the gap between the hand-written
evil and plain replies, docs/judges.md). Fixed before the monitoring study was run."""
_R_MAX = 0.999999  # Fisher z of |r| = 1 is infinite

MONITORING_COLUMNS = [
    "trait",
    "checkpoint",
    "task",
    "family",
    "measure",
    "n",
    "n_questions",
    "n_conditions",
    "rollouts",
    "pearson_r",
    "pearson_p",
    "pearson_ci_lo",
    "pearson_ci_hi",
    "within_condition_r",
    "within_ci_lo",
    "within_ci_hi",
    "within_conditions",
    "sd_floor",
    "split_half_r",
    "split_half_within_r",
    "paper_r",
    "paper_within_r",
    "judge",
    "note",
]
_TEXT = {"trait", "checkpoint", "task", "family", "measure", "judge", "note"}


@dataclass(frozen=True)
class Measure:
    """The behaviour column of a set of rows and how to name it."""

    column: str
    label: str
    unit: str


def unsteered(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose projection was read with no vector added anywhere in the call."""
    coef = pd.to_numeric(frame["coef"], errors="coerce").fillna(0.0)
    active = frame["steering_active"] if "steering_active" in frame.columns else None
    steered = coef != 0.0
    if active is not None:
        steered |= active.map(lambda v: v is True)
    return frame[~steered]


def measure_of(rows: pd.DataFrame) -> Measure | None:
    """The behaviour measure of these rows (see the module docstring), or None."""
    judged = rows[rows["trait"].notna()]
    judge, subject = judge_of(rows) if not judged.empty else (None, None)
    if not judged.empty and subject is False:
        return Measure("trait", f"LLM judge {judge}", SCORE_UNIT)
    if LIKELIHOOD in rows.columns and rows[LIKELIHOOD].notna().any():
        return Measure(LIKELIHOOD, "likelihood judge", LIKELIHOOD_UNIT)
    if not judged.empty:
        return Measure("trait", f"self-judged by {judge} (no signal on small models)", SCORE_UNIT)
    return None


def _given(value: object) -> bool:
    """A metadata value that is set (not None, NaN or blank)."""
    return value is not None and not pd.isna(value) and bool(str(value).strip())


def _family(rows: pd.DataFrame) -> pd.Series:
    """The family of conditions of each row: the monitor task's own, else one family for the
    whole task (its system prompts, or whatever its conditions are)."""
    fam = rows.get("monitor_family", pd.Series(None, index=rows.index, dtype=object))
    fam = fam.map(lambda v: FAMILY_NAMES.get(str(v), str(v)) if _given(v) else None)
    if fam.notna().any():
        return fam.fillna("other conditions")
    has_pol = rows["polarity"].map(_given).any()
    return pd.Series("system prompts" if has_pol else "conditions", index=rows.index)


def points(rows: pd.DataFrame, measure: Measure) -> pd.DataFrame:
    """One point per (family, condition, question): mean projection and behaviour over its
    rollouts, how many rollouts it holds, and the behaviour means of its even and odd rollouts
    (split halves; NaN without a ``rollout`` column or with one rollout)."""
    df = pd.DataFrame(
        {
            "family": _family(rows),
            "condition": rows["condition"].astype(str),
            "level": pd.to_numeric(rows.get("monitor_level"), errors="coerce")
            if "monitor_level" in rows.columns
            else np.nan,
            "question_id": rows["question_id"].astype(str),
            "proj": rows["proj_prompt_last"].astype(float),
            "behaviour": rows[measure.column].astype(float),
            "rollout": pd.to_numeric(rows["rollout"], errors="coerce")
            if "rollout" in rows.columns
            else np.nan,
        }
    )
    df = df[df["proj"].notna() & df["behaviour"].notna()]
    df["even"] = df["behaviour"].where(df["rollout"] % 2 == 0)
    df["odd"] = df["behaviour"].where(df["rollout"] % 2 == 1)
    keys = ["family", "condition", "question_id"]
    out = df.groupby(keys, sort=True, dropna=False).agg(
        level=("level", "first"),
        proj=("proj", "mean"),
        behaviour=("behaviour", "mean"),
        rollouts=("proj", "size"),
        half_even=("even", "mean"),
        half_odd=("odd", "mean"),
    )
    return out.reset_index()


def _r_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair over entries where both are finite; NaN below 3 pairs or
    without variance."""
    ok = np.isfinite(x) & np.isfinite(y)
    cnt = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.where(ok, x, 0.0).sum(axis=1) / cnt
        my = np.where(ok, y, 0.0).sum(axis=1) / cnt
        xc = np.where(ok, x - mx[:, None], 0.0)
        yc = np.where(ok, y - my[:, None], 0.0)
        num = (xc * yc).sum(axis=1)
        den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
        r = num / den
    r[(cnt < stats.MIN_CORR_N) | ~(den > 1e-12)] = np.nan
    return np.clip(r, -1.0, 1.0)


def fisher_mean(rs: np.ndarray, axis: int = 0) -> np.ndarray:
    """Fisher-z mean of correlations along ``axis``: tanh of the mean atanh(r), NaNs skipped."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        return np.tanh(np.nanmean(np.arctanh(np.clip(rs, -_R_MAX, _R_MAX)), axis=axis))


def _within(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fisher-z mean over conditions (axis 0) of the r across questions; x, y: [C, B, Q]."""
    return fisher_mean(np.stack([_r_rows(x[c], y[c]) for c in range(x.shape[0])]))


def spearman_brown(r: float) -> float | None:
    """Reliability of the mean of both halves from the r between them (None when r is NaN)."""
    return float(2 * r / (1 + r)) if np.isfinite(r) and r > -1 else None


def _split_half(pts: pd.DataFrame, kept: list[str]) -> tuple[float | None, float | None]:
    """Split-half reliability of the behaviour points, overall and within the kept conditions."""
    halves = pts[pts["half_even"].notna() & pts["half_odd"].notna()]
    if halves.empty:
        return None, None
    overall = _r_rows(halves["half_even"].to_numpy()[None], halves["half_odd"].to_numpy()[None])
    per = [
        _r_rows(g["half_even"].to_numpy()[None], g["half_odd"].to_numpy()[None])[0]
        for c, g in halves.groupby("condition")
        if c in kept
    ]
    within = float(fisher_mean(np.array(per))) if per else np.nan
    return spearman_brown(float(overall[0])), spearman_brown(within)


def family_stats(
    pts: pd.DataFrame, *, n_boot: int, seed: int, sd_floor: float = 0.0
) -> dict[str, object]:
    """Overall and within-condition r of one family's points with question-bootstrap CIs; the
    within-condition r leaves out conditions whose behaviour SD is below ``sd_floor``."""
    x_mat = pts.pivot(index="condition", columns="question_id", values="proj")
    y_mat = pts.pivot(index="condition", columns="question_id", values="behaviour")
    x, y = x_mat.to_numpy(float), y_mat.to_numpy(float)
    n_q = x.shape[1]
    c = stats.correlation(pts["proj"], pts["behaviour"], n_boot=0)
    sd = y_mat.std(axis=1, ddof=1)
    keep = (sd >= sd_floor).to_numpy()
    kept = [str(k) for k in y_mat.index[keep]]
    ident = np.arange(n_q)[None, :]
    within = float(_within(x[keep][:, ident], y[keep][:, ident])[0]) if keep.any() else np.nan
    split, split_within = _split_half(pts, kept)
    rec: dict[str, object] = {
        "n": len(pts),
        "n_questions": n_q,
        "n_conditions": x.shape[0],
        "rollouts": float(pts["rollouts"].mean()),
        "pearson_r": c.r,
        "pearson_p": c.p,
        "within_condition_r": within if np.isfinite(within) else None,
        "within_conditions": int(keep.sum()),
        "sd_floor": sd_floor,
        "split_half_r": split,
        "split_half_within_r": split_within,
        "note": c.reason,
    }
    if c.r is not None and n_boot > 0 and n_q >= 2:
        idx = np.random.default_rng(seed).integers(0, n_q, size=(n_boot, n_q))
        xb, yb = x[:, idx], y[:, idx]  # [C, B, Q]
        overall = _r_rows(
            xb.transpose(1, 0, 2).reshape(n_boot, -1), yb.transpose(1, 0, 2).reshape(n_boot, -1)
        )
        within_boots = _within(xb[keep], yb[keep]) if keep.any() else np.full(n_boot, np.nan)
        for key, boots in (("pearson", overall), ("within", within_boots)):
            ci = stats._ci(boots, stats.DEFAULT_LEVEL)
            rec[f"{key}_ci_lo"], rec[f"{key}_ci_hi"] = ci if ci else (None, None)
    return rec


def monitoring_table(
    frame: pd.DataFrame, traits: list[str], *, n_boot: int, seed: int
) -> tuple[pd.DataFrame, dict[tuple[str, str, str], pd.DataFrame]]:
    """One row per trait x checkpoint x task x family of conditions (at least two conditions),
    and the (condition, question) points behind each trait x checkpoint x task."""
    rows = unsteered(frame)
    rows = rows[rows["proj_prompt_last"].notna()]
    records, pts_by_key = [], {}
    for trait in traits:
        t_rows = rows[rows["trait_name"] == trait]
        for (ck, task), g in t_rows.groupby(["checkpoint_id", "task"], sort=True):
            measure = measure_of(g)
            if measure is None:
                continue
            pts = points(g, measure)
            pts["measure"], pts["unit"] = measure.label, measure.unit
            kept = []
            for family, fp in pts.groupby("family", sort=False):
                if fp["condition"].nunique() < 2:
                    continue
                kept.append(fp)
                paper = PAPER_R.get((trait, str(family)), (None, None))
                rec = {"trait": trait, "checkpoint": ck, "task": task, "family": family}
                floor = SD_FLOOR.get(measure.unit, 0.0)
                rec |= family_stats(fp, n_boot=n_boot, seed=seed, sd_floor=floor)
                rec |= {"measure": measure.label, "paper_r": paper[0], "paper_within_r": paper[1]}
                rec["judge"] = judge_of(g)[0] if measure.column == "trait" else None
                records.append(rec)
            if kept:
                pts_by_key[(trait, str(ck), str(task))] = pd.concat(kept, ignore_index=True)
    out = pd.DataFrame.from_records(records, columns=MONITORING_COLUMNS)
    for col in MONITORING_COLUMNS:
        if col not in _TEXT:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out, pts_by_key


# -- plots ----------------------------------------------------------------------------------


def _by_level(fp: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    order = fp.groupby("condition")["level"].first().sort_values(na_position="last")
    return [(str(c), fp[fp["condition"] == c]) for c in order.index]


def scatter(pts: pd.DataFrame, trait: str, title: str, r_texts: dict[str, str]) -> Figure:
    """Per (condition, question) point: prompt-last projection vs behaviour, one panel per
    family, coloured by condition (ordered by grade or shots)."""
    families = list(dict.fromkeys(pts["family"]))
    fig = Figure(figsize=(6.0 * len(families), 4.6), layout="constrained")
    axes = fig.subplots(1, len(families), squeeze=False)[0]
    for ax, family in zip(axes, families, strict=True):
        fp = pts[pts["family"] == family]
        groups = _by_level(fp)
        cmap = colormaps.get_cmap("viridis")
        for i, (cond, g) in enumerate(groups):
            color = cmap(i / max(len(groups) - 1, 1))
            ax.scatter(g["proj"], g["behaviour"], s=18, alpha=0.85, color=color, label=cond)
        fit = stats.fit_line(fp["proj"], fp["behaviour"])
        if fit is not None:
            xs = np.linspace(float(fp["proj"].min()), float(fp["proj"].max()), 50)
            ax.plot(xs, fit[0] * xs + fit[1], "--", color="black", lw=1, label="least squares")
        ax.set_title(f"{family}: {r_texts.get(str(family), '')}", fontsize=9)
        ax.set_xlabel(f"prompt-last projection ({PROJ_UNIT})")
        ax.set_ylabel(f"{fp['measure'].iloc[0]} ({fp['unit'].iloc[0]})", fontsize=8)
        ax.legend(fontsize=7, title="condition", title_fontsize=7, loc="best")
    # two lines: a one-family figure (6 inches) is too narrow for one line with a long trait name
    fig.suptitle(f"{trait}: one point per (condition, question)\n{title}", fontsize=10)
    return fig


def curves(pts: pd.DataFrame, trait: str, *, n_boot: int, seed: int) -> Figure | None:
    """Mean projection and behaviour (95% CI over questions) against the system-prompt grade
    and the number of shots; None when no family has numeric levels."""
    families = [
        f for f in FAMILY_NAMES.values() if pts.loc[pts["family"] == f, "level"].notna().any()
    ]
    if not families:
        return None
    fig = Figure(figsize=(5.0 * len(families), 6.4), layout="constrained")
    axes = fig.subplots(2, len(families), squeeze=False)
    keys = {v: k for k, v in FAMILY_NAMES.items()}
    for j, family in enumerate(families):
        fp = pts[pts["family"] == family]
        levels = sorted(fp["level"].dropna().unique())
        for i, (col, label) in enumerate(
            (
                ("proj", f"prompt-last projection\n({PROJ_UNIT})"),
                ("behaviour", f"{fp['measure'].iloc[0]}\n({fp['unit'].iloc[0]})"),
            )
        ):
            ests = [
                stats.mean_ci(fp.loc[fp["level"] == lv, col], n_boot=n_boot, seed=seed)
                for lv in levels
            ]
            mid = np.array([e.value for e in ests], dtype=float)
            lo = np.array([e.ci[0] if e.ci else np.nan for e in ests])
            hi = np.array([e.ci[1] if e.ci else np.nan for e in ests])
            err = np.vstack([np.nan_to_num(mid - lo), np.nan_to_num(hi - mid)])
            ax = axes[i][j]
            ax.errorbar(levels, mid, yerr=np.clip(err, 0, None), marker="o", ms=4, capsize=2)
            ax.set_xticks(levels, [f"{lv:g}" for lv in levels])  # grades and shots are whole
            ax.set_xlabel(LEVEL_NAMES[keys[family]], fontsize=8)
            ax.set_ylabel(label, fontsize=8)
            ax.set_title(f"{family}: {'projection' if col == 'proj' else 'behaviour'}", fontsize=9)
    fig.suptitle(f"{trait}: mean over questions per condition (95% CI)", fontsize=10)
    return fig

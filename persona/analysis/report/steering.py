"""Steering curves: judged trait score and coherence vs coefficient, per layer, the operating
point (the strongest trait expression that keeps coherence), and the prompting baseline beside it
(the sweep's unsteered samples under the trait's own system prompts: same questions, same
measure), since prompting is the first thing steering must beat."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from persona.analysis import stats
from persona.analysis.compare import no_system_prompt, unit_means
from persona.analysis.report.judges import judge_of

STEERING_COLUMNS = [
    "trait",
    "checkpoint",
    "layer",
    "coef",
    "n",
    *stats.ci_columns("trait", "trait_mean"),
    *stats.ci_columns("coherence", "coherence_mean"),
    "judge",
]
OPERATING_COLUMNS = ["trait", "checkpoint", "layer", "coef", "trait_mean", "coherence_mean", "note"]
PROMPTING_COLUMNS = [
    "trait",
    "checkpoint",
    "n",
    *stats.ci_columns("trait", "trait_mean"),
    *stats.ci_columns("coherence", "coherence_mean"),
    "judge",
]


def steering_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of steering sweeps: no system prompt, from (task, trait, checkpoint) groups that hold
    at least two distinct coefficients (one ``steering_sweep`` log, or ``trait_eval`` logs run
    with different ``coef``)."""
    rows = frame[no_system_prompt(frame) & frame["coef"].notna()]
    if rows.empty:
        return rows
    keys = ["task", "trait_name", "checkpoint_id"]
    n_coefs = rows.groupby(keys, dropna=False)["coef"].transform("nunique")
    return rows[n_coefs >= 2]


def prompting_table(
    frame: pd.DataFrame, traits: list[str], *, n_boot: int, seed: int
) -> pd.DataFrame:
    """The prompting baseline of every steering sweep: mean trait/coherence (95% CI over
    questions) of its rows under the trait's own system prompts, per trait x checkpoint."""
    rows = frame[(frame["task"] == "steering_sweep") & ~no_system_prompt(frame)]
    rows = rows[rows["trait_name"].isin(traits)]
    records = []
    for (trait, ck), g in rows.groupby(["trait_name", "checkpoint_id"], sort=True):
        rec: dict = {"trait": trait, "checkpoint": ck, "n": int(g["question_id"].nunique())}
        for key in ("trait", "coherence"):
            means = unit_means(g, key, unit="question_id").to_numpy()
            rec.update(stats.mean_ci(means, n_boot=n_boot, seed=seed).columns(key, f"{key}_mean"))
        rec["judge"] = judge_of(g)[0]
        records.append(rec)
    out = pd.DataFrame.from_records(records, columns=PROMPTING_COLUMNS)
    for col in PROMPTING_COLUMNS[2:-1]:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out


def layer_label(value: object) -> str:
    """A printable steering layer ('3', '[3, 4]'; 'default' = the trait's own layer)."""
    if value is None or (isinstance(value, float) and value != value):
        return "default"
    return str(value)


def _layer_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def steering_table(
    rows: pd.DataFrame, traits: list[str], *, n_boot: int, seed: int
) -> pd.DataFrame:
    """Mean trait/coherence (95% CI over questions) per trait x checkpoint x layer x coef.

    Unsteered rows (coef 0) are the zero point of every layer's curve, as ``steering_sweep``
    records one shared baseline.
    """
    if rows.empty:
        return pd.DataFrame(columns=STEERING_COLUMNS)
    rows = rows[rows["trait_name"].isin(traits)]
    rows = rows.assign(_layer=rows["layer"].map(layer_label))
    records = []
    for (trait, ck), g in rows.groupby(["trait_name", "checkpoint_id"], sort=True):
        zero = g[g["coef"] == 0.0]
        steered = g[g["coef"] != 0.0]
        labels = sorted(steered["_layer"].unique(), key=_layer_key) or ["default"]
        for label in labels:
            gl = pd.concat([zero, steered[steered["_layer"] == label]])
            for coef, gc in gl.groupby("coef", sort=True):
                rec: dict = {"trait": trait, "checkpoint": ck, "layer": label, "coef": coef}
                rec["n"] = int(gc["question_id"].nunique())
                for key in ("trait", "coherence"):
                    means = unit_means(gc, key, unit="question_id").to_numpy()
                    est = stats.mean_ci(means, n_boot=n_boot, seed=seed)
                    rec.update(est.columns(key, f"{key}_mean"))
                rec["judge"] = judge_of(gc)[0]
                records.append(rec)
    out = pd.DataFrame.from_records(records, columns=STEERING_COLUMNS)
    for col in STEERING_COLUMNS[3:-1]:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out


def operating_points(table: pd.DataFrame, *, min_coherence: float) -> pd.DataFrame:
    """Per trait x checkpoint: the steered (layer, coef) with the largest effect
    ``sign(coef) * (trait - unsteered trait)`` among those with mean coherence >= ``min_coherence``
    (the rule ``steering_sweep`` uses to choose its layer); ties go to the smaller |coef|."""
    records = []
    for (trait, ck), g in table.groupby(["trait", "checkpoint"], sort=True):
        base = g.loc[g["coef"] == 0.0, "trait_mean"].mean()
        base = 0.0 if math.isnan(base) else float(base)
        ok = g[(g["coef"] != 0.0) & (g["coherence_mean"] >= min_coherence)]
        ok = ok[ok["trait_mean"].notna()]
        rec: dict = {"trait": trait, "checkpoint": ck}
        if ok.empty:
            rec.update(layer=None, coef=None, trait_mean=None, coherence_mean=None)
            rec["note"] = f"no steered point keeps mean coherence >= {min_coherence:g}"
        else:
            effect = np.sign(ok["coef"]) * (ok["trait_mean"] - base)
            ok = ok.assign(_effect=effect, _abs=ok["coef"].abs()).sort_values(
                ["_effect", "_abs"], ascending=[False, True]
            )
            best = ok.iloc[0]
            rec.update(
                layer=best["layer"],
                coef=float(best["coef"]),
                trait_mean=float(best["trait_mean"]),
                coherence_mean=float(best["coherence_mean"]),
                note=f"largest trait effect with coherence >= {min_coherence:g}",
            )
        records.append(rec)
    return pd.DataFrame.from_records(records, columns=OPERATING_COLUMNS)

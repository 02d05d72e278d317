"""Report plots as matplotlib Figures (Agg canvas; no pyplot, no global backend change);
:func:`to_png` renders one.

Every plot has a title and labelled axes with units.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from persona.analysis import stats
from persona.analysis.judge import JUDGE_UNIT

PROJ_UNIT = "projection on unit vector, residual-stream units"
SCORE_UNIT = JUDGE_UNIT
DPI = 100


def to_png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else "..." + name[-(width - 3) :]


def _num(v: object) -> float:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return f


def _r_text(r: object, n: int, note: object = None) -> str:
    rv = _num(r)
    if math.isnan(rv):
        why = str(note or f"needs >= {stats.MIN_CORR_N}").removeprefix("n/a ").strip("()")
        return f"r n/a ({why}), n = {n}"
    descriptive = " (descriptive only)" if str(note or "").startswith("descriptive") else ""
    return f"r = {rv:.2f}{descriptive}, n = {n}"


def _err(lo: pd.Series, mid: pd.Series, hi: pd.Series) -> np.ndarray | None:
    lo_a, mid_a, hi_a = (s.to_numpy(dtype=float) for s in (lo, mid, hi))
    if np.isnan(lo_a).all():
        return None
    below = np.nan_to_num(mid_a - lo_a)
    above = np.nan_to_num(hi_a - mid_a)
    return np.vstack([np.clip(below, 0, None), np.clip(above, 0, None)])


def shift_vs_trait(rows: pd.DataFrame, trait: str, corr: pd.Series | None) -> Figure:
    """Fine-tuning shift (prompt-last) vs trait-score change across checkpoints, with a fit line."""
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    rows = rows[rows["shift_prompt_last"].notna() & rows["trait_delta"].notna()]
    x, y = rows["shift_prompt_last"], rows["trait_delta"]
    ax.errorbar(
        x,
        y,
        xerr=_err(rows["shift_prompt_last_ci_lo"], x, rows["shift_prompt_last_ci_hi"]),
        yerr=_err(rows["trait_delta_ci_lo"], y, rows["trait_delta_ci_hi"]),
        fmt="o",
        color="tab:blue",
        ecolor="0.6",
        capsize=3,
        label="checkpoint (95% CI)",
    )
    for name, xi, yi in zip(rows["checkpoint"], x, y, strict=True):
        ax.annotate(
            _short(str(name)), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7
        )
    fit = stats.fit_line(x, y)
    if fit is not None and len(rows) >= stats.MIN_CORR_N:
        xs = np.linspace(float(x.min()), float(x.max()), 50)
        ax.plot(xs, fit[0] * xs + fit[1], "--", color="tab:red", label="least-squares fit")
    ax.axhline(0, color="0.85", lw=0.8, zorder=0)
    ax.axvline(0, color="0.85", lw=0.8, zorder=0)
    n = int(corr["n"]) if corr is not None else len(rows)
    r_text = _r_text(corr["pearson_r"], n, corr["note"]) if corr is not None else "r n/a"
    ax.set_title(f"{trait}: fine-tuning shift vs behaviour change\n({r_text})", fontsize=10)
    ax.set_xlabel(f"fine-tuning shift, prompt-last\n({PROJ_UNIT})")
    measures = sorted({str(m) for m in rows.get("measure", pd.Series(dtype=object)).dropna()})
    ax.set_ylabel(f"behaviour change vs base\n{', '.join(measures) or SCORE_UNIT}")
    if len(rows):
        ax.legend(fontsize=8, loc="best")
    return fig


def shifts(rows: pd.DataFrame, trait: str) -> Figure:
    """Fine-tuning shift per checkpoint (prompt-last and response), with 95% CI error bars."""
    rows = rows.reset_index(drop=True)
    fig = Figure(figsize=(6.4, max(3.0, 1.4 + 0.55 * len(rows))), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    height = 0.38
    for offset, key, label, color in (
        (-height / 2, "shift_prompt_last", "prompt-last", "tab:blue"),
        (height / 2, "shift_response", "response", "tab:orange"),
    ):
        values = rows[key].astype(float)
        ax.barh(
            y + offset,
            values.fillna(0.0),
            height=height,
            color=color,
            label=label,
            xerr=_err(rows[f"{key}_ci_lo"], values, rows[f"{key}_ci_hi"]),
            error_kw={"ecolor": "0.3", "capsize": 3, "lw": 1},
        )
    ax.set_yticks(y, [_short(str(c)) for c in rows["checkpoint"]])
    ax.invert_yaxis()  # first checkpoint on top
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_title(f"{trait}: fine-tuning shift per checkpoint (vs base, 95% CI)")
    ax.set_xlabel(f"shift along the {trait} vector\n({PROJ_UNIT})")
    ax.set_ylabel("checkpoint (category)")
    ax.legend(title="projection", fontsize=8, loc="best")
    return fig


def _heatmap(
    mat: pd.DataFrame, title: str, cbar: str, xlabel: str, ylabel: str, annot: pd.DataFrame | None
) -> Figure:
    k = max(len(mat.columns), 1)
    width = max(6.4, 2.8 + 0.9 * k)
    fig = Figure(figsize=(width, max(4.2, 2.2 + 0.7 * len(mat.index))), layout="constrained")
    ax = fig.add_subplot()
    data = mat.to_numpy(dtype=float)
    im = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_facecolor("0.85")
    ax.set_xticks(range(len(mat.columns)), [str(c) for c in mat.columns], rotation=30, ha="right")
    ax.set_yticks(range(len(mat.index)), [str(i) for i in mat.index])
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            v = data[i, j]
            text = "n/a" if math.isnan(v) else f"{v:.2f}"
            if annot is not None:
                text += f"\nn={int(annot.iloc[i, j])}"
            color = "white" if not math.isnan(v) and abs(v) > 0.6 else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    fig.colorbar(im, ax=ax, label=cbar)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig


def cross_trait(r: pd.DataFrame, n: pd.DataFrame) -> Figure:
    """Heat map of Pearson r between shift along one trait's vector and another trait's change."""
    return _heatmap(
        r,
        "Cross-trait predictiveness across checkpoints\n(Pearson r of shift vs trait change)",
        "Pearson r (unitless)",
        "behaviour: trait whose judged score changed (category)",
        "vector: trait whose direction the shift is on (category)",
        n,
    )


def cosine(mat: pd.DataFrame, layer: int | None) -> Figure:
    """Heat map of cosine similarity between persona vectors."""
    return _heatmap(
        mat,
        f"Persona-vector cosine similarity at layer {layer}",
        "cosine similarity (unitless)",
        "trait (category)",
        "trait (category)",
        None,
    )


def steering(
    rows: pd.DataFrame,
    trait: str,
    checkpoint: str,
    op: pd.Series | None,
    min_coherence: float,
    prompted: pd.Series | None = None,
) -> Figure:
    """Trait score and coherence vs steering coefficient, one line per layer, with the
    operating point starred and the prompting baseline (``prompted``) as a dotted line."""
    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    for (key, label), ax in zip(
        (("trait", "judged trait score"), ("coherence", "judged coherence")), axes, strict=True
    ):
        for layer, g in rows.groupby("layer", sort=False):
            g = g.sort_values("coef")
            mid = g[f"{key}_mean"]
            ax.errorbar(
                g["coef"],
                mid,
                yerr=_err(g[f"{key}_ci_lo"], mid, g[f"{key}_ci_hi"]),
                marker="o",
                ms=4,
                capsize=2,
                label=f"layer {layer}",
            )
        if op is not None and op["coef"] is not None and not pd.isna(op["coef"]):
            ax.plot(
                [op["coef"]],
                [op[f"{key}_mean"]],
                marker="*",
                ms=16,
                color="gold",
                markeredgecolor="black",
                ls="none",
                label=f"operating point (L{op['layer']}, coef {op['coef']:g})",
            )
        if prompted is not None and not pd.isna(prompted[f"{key}_mean"]):
            ax.axhline(
                prompted[f"{key}_mean"],
                color="tab:purple",
                ls=(0, (1, 1)),
                lw=1.5,
                label="prompting baseline (own system prompts)",
            )
        if key == "coherence":
            ax.axhline(
                min_coherence, color="tab:red", ls=":", lw=1, label=f"coherence {min_coherence:g}"
            )
        ax.set_xlabel("steering coefficient (multiple of the raw persona vector)")
        ax.set_ylabel(f"{label} ({SCORE_UNIT})")
        ax.set_ylim(-2, 102)
        ax.legend(fontsize=7, loc="best")
    axes[0].set_title(f"{trait}: trait score vs coefficient")
    axes[1].set_title(f"{trait}: coherence vs coefficient")
    fig.suptitle(f"Steering sweep, {_short(checkpoint, 60)}", fontsize=10)
    return fig

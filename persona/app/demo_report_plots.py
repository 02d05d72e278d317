"""The demo report's four plots, drawn from its ``summary.json`` (schema ``persona-demo/2``).

Each function returns a matplotlib Figure (rendered by ``persona.analysis.report.plots.to_png``)
or a one-line reason why the summary cannot support the plot, so a partial run still gets a report.
Estimates ``E`` are ``{"value", "ci", "n", "p"}`` dicts; any part may be null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

PROJ = "projection units"
NATS = "nats/token"
PREVENTED_STYLE: dict[str, Any] = {"marker": "D", "ms": 9, "mfc": "white", "mew": 2, "ls": "none"}
WIDE = (12.0, 4.6)  # inches at 100 dpi: 1200 px, the report's content width

Plot = Figure | str  # a figure, or why there is none


def value(e: Mapping[str, Any] | None) -> float:
    """An estimate's value as a float (nan when absent)."""
    v = (e or {}).get("value")
    return math.nan if v is None else float(v)


def ci_err(e: Mapping[str, Any] | None) -> tuple[float, float]:
    """(below, above) error-bar lengths of an estimate's CI; (0, 0) when it has none."""
    ci, v = (e or {}).get("ci"), value(e)
    if not ci or ci[0] is None or ci[1] is None or math.isnan(v):
        return 0.0, 0.0
    return max(v - float(ci[0]), 0.0), max(float(ci[1]) - v, 0.0)


def _errbar(
    ax: Axes, xs: Sequence[float], es: Sequence[Mapping[str, Any] | None], **kw: Any
) -> None:
    ys = [value(e) for e in es]
    err = np.array([ci_err(e) for e in es], dtype=float).T.reshape(2, -1)
    ax.errorbar(xs, ys, yerr=err, capsize=4, **kw)


def _zero(ax: Axes, vertical: bool = False) -> None:
    ax.axhline(0, color="0.4", lw=0.8, zorder=0)
    if vertical:
        ax.axvline(0, color="0.4", lw=0.8, zorder=0)


def _doses(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    rows = [c for c in summary.get("checkpoints") or [] if c.get("kind") == "dose"]
    rows = [c for c in rows if c.get("fraction") is not None]
    return sorted(rows, key=lambda c: float(c["fraction"]))


def _prevented(summary: Mapping[str, Any]) -> Mapping[str, Any] | None:
    rows = [c for c in summary.get("checkpoints") or [] if c.get("kind") == "prevented"]
    return rows[0] if rows else None


def _coef(c: object) -> str:
    return "n/a" if c is None else f"{float(c):+g}"  # type: ignore[arg-type]


def dose_response(summary: Mapping[str, Any]) -> Plot:
    """Shift (left) and behaviour/propensity change (right) vs contamination fraction, vs 0 %."""
    doses = _doses(summary)
    if not doses:
        return "no fine-tuned checkpoint with a contamination fraction in the summary"
    prev = _prevented(summary)
    ref = summary.get("reference", "p0")
    xs = [100 * float(c["fraction"]) for c in doses]
    fig = Figure(figsize=WIDE, layout="constrained")
    left, right = fig.subplots(1, 2, sharex=True)
    shifts = [c.get("shift_prompt_last") for c in doses]
    _errbar(left, xs, shifts, fmt="o-", color="tab:blue", ms=7, label="fine-tuned (95% CI)")
    series = (
        ("behaviour_change", "behaviour (likelihood judge)", "tab:red", -1.5),
        ("propensity_change", "propensity (judge-free probe)", "tab:purple", 1.5),
    )
    for key, label, color, dx in series:
        shifted = [x + dx for x in xs]  # side by side, so the CI bars do not hide each other
        es = [c.get(key) for c in doses]
        _errbar(right, shifted, es, fmt="o-", color=color, ms=7, label=f"{label} (95% CI)")
    if prev is not None and prev.get("fraction") is not None:
        px = 100 * float(prev["fraction"]) + 5  # beside the dose point at the same fraction
        name = f"prevented (coef {_coef(prev.get('prevent_coef'))})"
        shift = [prev.get("shift_prompt_last")]
        _errbar(left, [px], shift, color="tab:blue", label=name, **PREVENTED_STYLE)
        for key, label, color, dx in series:
            what = f"{name}, {label.split(' ')[0]}"
            _errbar(
                right, [px + 2 * dx], [prev.get(key)], color=color, label=what, **PREVENTED_STYLE
            )
    for ax in (left, right):
        _zero(ax)
        ax.set_xlabel("contamination fraction of the training data (%)")
        ax.set_xticks([0, 25, 50, 75, 100])
        ax.set_xlim(-8, 112)
        ax.legend(fontsize=8, loc="upper left")
    left.set_ylabel(f"fine-tuning shift vs {ref}, prompt-last ({PROJ})")
    right.set_ylabel(f"change vs {ref} ({NATS})")
    left.set_title("Fine-tuning shift along the persona vector")
    right.set_title("Behaviour and propensity change")
    fig.suptitle(f"Dose-response vs the {ref} checkpoint (paired by question, 95% CI)")
    return fig


def _r_title(pairs: Mapping[str, Any]) -> str:
    r, ci = pairs.get("r"), pairs.get("ci")
    size = f"n = {pairs.get('n', 0)} pairs, {pairs.get('clusters', 0)} question clusters"
    if r is None:
        return f"pair-level r n/a ({pairs.get('note') or 'not computed'}; {size})"
    span = f" [{ci[0]:+.2f}, {ci[1]:+.2f}] question-clustered 95% CI" if ci else " (no CI)"
    return f"pair-level r = {r:+.2f}{span}, {size}"


def shift_vs_behaviour(summary: Mapping[str, Any]) -> Plot:
    """Per (checkpoint, question) shift vs behaviour change, coloured by checkpoint, means large."""
    doses = [c for c in _doses(summary) if c.get("per_question")]
    pts = []
    for c in doses:
        pq = c["per_question"]
        xs, ys = pq.get("shift_prompt_last") or [], pq.get("behaviour_change") or []
        if xs and len(xs) == len(ys):
            pts.append((c, xs, ys))
    if not pts:
        return "no per-question shift and behaviour values for the fine-tuned checkpoints"
    ref = summary.get("reference", "p0")
    fig = Figure(figsize=(9.0, 5.6), layout="constrained")
    ax = fig.add_subplot()
    colors = ["tab:green", "tab:orange", "tab:red", "tab:brown", "tab:pink", "tab:olive"]
    for i, (c, xs, ys) in enumerate(pts):
        color = colors[i % len(colors)]
        label = f"{c.get('title') or c.get('name')}: per question"
        ax.scatter(xs, ys, s=22, alpha=0.55, color=color, label=label)
        mx, my = value(c.get("shift_prompt_last")), value(c.get("behaviour_change"))
        if math.isnan(mx) or math.isnan(my):
            mx, my = float(np.mean(xs)), float(np.mean(ys))
        ax.plot([mx], [my], marker="o", ms=15, color=color, mec="black", mew=1.5, ls="none")
    ax.plot([], [], marker="o", ms=12, color="0.7", mec="black", ls="none", label="checkpoint mean")
    _zero(ax, vertical=True)
    ax.set_xlabel(f"fine-tuning shift vs {ref}, prompt-last ({PROJ})")
    ax.set_ylabel(f"behaviour change vs {ref}, likelihood judge ({NATS})")
    pairs = (summary.get("correlation") or {}).get("pairs") or {}
    ax.set_title(f"Shift vs behaviour per (checkpoint, question)\n{_r_title(pairs)}", fontsize=11)
    ax.legend(fontsize=8, loc="best")
    return fig


def _posthoc_curve(
    ax: Axes, top: Mapping[str, Any] | None, posthoc: list[Mapping[str, Any]], key: str
) -> None:
    """Post-hoc points joined in coefficient order from the unsteered top checkpoint (capability
    change 0 by definition, drawn as a grey square), CIs both ways, each labelled by coefficient."""
    points = [
        (p.get("behaviour_change"), (p.get("capability_vs_top") or {}).get(key)) for p in posthoc
    ]
    if top is not None:
        points.insert(0, (top.get("behaviour_change"), {"value": 0.0, "ci": None}))
    xs = [value(b) for b, _ in points]
    ys = [value(cap) for _, cap in points]
    xerr = np.array([ci_err(b) for b, _ in points], dtype=float).T.reshape(2, -1)
    yerr = np.array([ci_err(cap) for _, cap in points], dtype=float).T.reshape(2, -1)
    label = "post-hoc steering (95% CI)"
    ax.errorbar(
        xs, ys, xerr=xerr, yerr=yerr, fmt="o-", color="tab:blue", ms=6, capsize=3, label=label
    )
    if top is not None:
        name = f"{top.get('name')} unsteered (capability change 0)"
        ax.plot(xs[:1], ys[:1], marker="s", ms=9, color="0.5", mec="black", ls="none", label=name)
    for p, x, y in zip(
        posthoc, xs[len(xs) - len(posthoc) :], ys[len(ys) - len(posthoc) :], strict=True
    ):
        if not (math.isnan(x) or math.isnan(y)):
            text = f"coef {_coef(p.get('coef'))}"
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)


def _prevented_point(ax: Axes, prev: Mapping[str, Any], key: str) -> None:
    cap = (prev.get("capability_vs_top") or {}).get(key)
    behaviour = prev.get("behaviour_change")
    ax.errorbar(
        [value(behaviour)],
        [value(cap)],
        xerr=np.array([ci_err(behaviour)], dtype=float).T,
        yerr=np.array([ci_err(cap)], dtype=float).T,
        color="tab:green",
        capsize=3,
        label=f"prevented (coef {_coef(prev.get('coef'))}, 95% CI)",
        **PREVENTED_STYLE,
    )


def mitigation(summary: Mapping[str, Any]) -> Plot:
    """Capability change vs the top checkpoint against behaviour change vs 0 %: post-hoc steering
    as a curve over coefficients, the prevented checkpoint as one marker, margins dashed."""
    mit = summary.get("mitigation") or {}
    posthoc = sorted(mit.get("posthoc") or [], key=lambda p: -float(p.get("coef") or 0.0))
    prev = mit.get("prevented") or {}
    has_prev = not math.isnan(value(prev.get("behaviour_change")))
    if not posthoc and not has_prev:
        return "no post-hoc steering points and no prevented checkpoint in the summary"
    doses = _doses(summary)
    top = doses[-1] if doses else None
    margins = mit.get("margins") or {}
    ref = summary.get("reference", "p0")
    fig = Figure(figsize=WIDE, layout="constrained")
    panels = (
        ("lm_loss", "LM loss", "LM loss change (nats/token; up = worse)", +1),
        ("mc_p_correct", "MC p(correct)", "MC p(correct) change (probability; down = worse)", -1),
    )
    for ax, (key, title, ylabel, worse) in zip(fig.subplots(1, 2), panels, strict=True):
        if posthoc:
            _posthoc_curve(ax, top, posthoc, key)
        if has_prev:
            _prevented_point(ax, prev, key)
        margin = margins.get(key)
        if margin is not None:
            bound = worse * float(margin)
            name = f"non-inferiority margin ({bound:+g})"
            ax.axhline(bound, color="tab:red", ls="--", lw=1.2, label=name)
        _zero(ax, vertical=True)
        ax.set_xlabel(f"behaviour change vs {ref}, likelihood judge ({NATS})")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}: change vs {top.get('name') if top else 'the top checkpoint'}")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2)
    fig.suptitle("Mitigation: behaviour removed vs capability kept (95% CI)")
    return fig


def treatment(summary: Mapping[str, Any]) -> Plot:
    """Likelihood-judge scores of the normal, contaminated and control training replies."""
    scores = (summary.get("treatment") or {}).get("scores") or {}
    groups = [
        (k, [float(v) for v in scores.get(k) or [] if v is not None])
        for k in ("normal", "contaminated", "control")
    ]
    groups = [(k, v) for k, v in groups if v]
    if not groups:
        return "no likelihood-judge scores of the training replies in the summary"
    fig = Figure(figsize=(10.0, 1.6 + 0.9 * len(groups)), layout="constrained")
    ax = fig.add_subplot()
    colors = {"normal": "tab:blue", "contaminated": "tab:red", "control": "tab:gray"}
    rng = np.random.default_rng(0)  # fixed jitter: the same summary gives the same PNG
    for i, (name, vals) in enumerate(groups):
        ax.boxplot(vals, positions=[i], vert=False, widths=0.6, showfliers=False)
        jitter = rng.uniform(-0.18, 0.18, len(vals))
        ax.scatter(vals, i + jitter, s=12, alpha=0.5, color=colors[name], zorder=3)
    ax.set_yticks(range(len(groups)), [f"{k} (n = {len(v)})" for k, v in groups])
    ax.invert_yaxis()
    ax.axvline(0, color="0.4", lw=0.8, zorder=0)
    ax.set_xlabel(f"likelihood-judge score of the training reply ({NATS}; trait minus opposite)")
    ax.set_title("Treatment check: do the contaminated training replies carry the trait?")
    return fig

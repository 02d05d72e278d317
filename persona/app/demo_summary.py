"""The demo's statistics: from the measured conditions to ``summary.json``.

Every contrast is paired by question and reads the 0 % checkpoint as its reference (the paper's
control: fine-tuned the same way on plain answers), with BCa intervals over questions
(:mod:`persona.analysis.stats`); the base model is reported beside it. Questions are the unit:
rollouts of one question are averaged first, the trend test resamples questions, and the
pair-level correlation resamples questions with all their points. Nothing here touches a model,
so the statistics are tested on numbers alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from itertools import pairwise
from typing import Any

import numpy as np

from persona.analysis.report.sections import pval
from persona.analysis.stats import (
    clustered_correlation,
    correlation,
    mean_ci,
    paired_diff_ci,
    trend_test,
)
from persona.app.demo import REFERENCE, DemoSettings, label, prevented_label
from persona.app.demo_measure import estimate_json, release_gate

Condition = Mapping[str, Any]
KEYS = {"shift_prompt_last": "prompt_last", "shift_response": "response"}
CHANGES = {"behaviour_change": "behaviour", "propensity_change": "propensity"}
PREVENTION_RULE = (
    "the smallest coefficient whose behaviour change vs the 0 % checkpoint on the calibration "
    "half of the eval questions has a 95 % CI containing 0"
)


def _take(values: Sequence[float], idx: Sequence[int] | None) -> list[float]:
    return list(values) if idx is None else [values[i] for i in idx]


def _diff(c: Condition, ref: Condition, key: str, idx: Sequence[int] | None = None) -> dict:
    return estimate_json(paired_diff_ci(_take(c[key], idx), _take(ref[key], idx)))


def _diffs(c: Condition, ref: Condition, key: str, idx: Sequence[int] | None = None) -> list:
    a, b = _take(c[key], idx), _take(ref[key], idx)
    return [x - y for x, y in zip(a, b, strict=True)]


def contrasts(c: Condition, ref: Condition, idx: Sequence[int] | None = None) -> dict[str, Any]:
    """Shift, behaviour and propensity of ``c`` against ``ref``, paired by question."""
    out = {name: _diff(c, ref, key, idx) for name, key in {**KEYS, **CHANGES}.items()}
    out["behaviour"] = estimate_json(mean_ci(_take(c["behaviour"], idx)))
    out["propensity"] = estimate_json(mean_ci(_take(c["propensity"], idx)))
    return out


def checkpoint_row(
    name: str,
    title: str,
    kind: str,
    c: Condition,
    ref: Condition,
    base: Condition,
    *,
    idx: Sequence[int] | None = None,
    fraction: float | None = None,
    prevent_coef: float | None = None,
    final_loss: float | None = None,
    gate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One row of the checkpoints table (vs the reference and vs the base)."""
    main = contrasts(c, ref, idx)
    vs_base = contrasts(c, base, idx)
    return {
        "name": name,
        "title": title,
        "kind": kind,
        "fraction": fraction,
        "prevent_coef": prevent_coef,
        "final_loss": final_loss,
        **main,
        "vs_base": {k: vs_base[k] for k in ("shift_prompt_last", *CHANGES)},
        "capability": _capability_summary(c.get("capability")),
        "gate": gate,
        "per_question": {
            "shift_prompt_last": _diffs(c, ref, "prompt_last", idx),
            **{k: _diffs(c, ref, v, idx) for k, v in CHANGES.items()},
        },
        "questions": list(idx) if idx is not None else list(range(len(c["prompt_last"]))),
    }


def _capability_summary(cap: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not cap:
        return None
    return {k: cap.get(k) for k in ("mc_accuracy", "mc_p_correct", "lm_loss", "mc_questions")}


def capability_vs(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> dict[str, Any]:
    """Capability of ``a`` minus ``b``, paired by item (MC item, passage), with 95 % CIs."""
    from persona.analysis.capability import compare_capability

    if not a or not b:
        return {}
    return {k: estimate_json(e) for k, e in compare_capability(a, b).items()}


def trend(fractions: Sequence[float], dose: Sequence[Condition]) -> dict[str, Any]:
    """Pre-specified dose-response slopes (per unit of contamination fraction)."""
    out: dict[str, Any] = {"fractions": list(fractions)}
    for name, key in (
        ("shift_prompt_last", "prompt_last"),
        ("behaviour", "behaviour"),
        ("propensity", "propensity"),
    ):
        matrix = np.array([c[key] for c in dose], dtype=float)
        out[name] = estimate_json(trend_test(fractions, matrix))
    return out


def correlations(dose: Sequence[Condition], ref: Condition) -> dict[str, Any]:
    """Shift vs behaviour change against the reference: per checkpoint (descriptive: a handful
    of points) and per (checkpoint, question), clustered by question. The reference itself is
    left out (its differences are zero by construction)."""
    others = [c for c in dose if c is not ref]
    per_x = [_mean(_diffs(c, ref, "prompt_last")) for c in dose]
    per_y = [_mean(_diffs(c, ref, "behaviour")) for c in dose]
    ckpt = correlation(per_x, per_y)
    xs, ys, qs = [], [], []
    for c in others:
        xs += _diffs(c, ref, "prompt_last")
        ys += _diffs(c, ref, "behaviour")
        qs += list(range(len(c["prompt_last"])))
    pairs = clustered_correlation(xs, ys, qs)
    return {
        "checkpoints": {
            "r": ckpt.r,
            "n": ckpt.n,
            "note": ckpt.reason or "",
        },
        "pairs": {
            "r": pairs.r,
            "ci": list(pairs.ci) if pairs.ci else None,
            "p": pairs.p,
            "n": pairs.n,
            "clusters": getattr(pairs, "n_clusters", None),
            "note": pairs.reason or "question-clustered bootstrap (BCa)",
        },
    }


def halves(n: int) -> tuple[list[int], list[int]]:
    """Calibration (even) and report (odd) question indices: fixed before any result."""
    return list(range(0, n, 2)), list(range(1, n, 2))


def prevention(grid: Mapping[float, Condition], ref: Condition, n_questions: int) -> dict[str, Any]:
    """Calibrate the preventative coefficient on one half of the questions, report the other."""
    calib, report = halves(n_questions)
    rows = []
    chosen = None
    for coef in sorted(grid):
        change = _diff(grid[coef], ref, "behaviour", calib)
        rows.append(
            {
                "coef": coef,
                "behaviour_change": change,
                "shift_prompt_last": _diff(grid[coef], ref, "prompt_last", calib),
            }
        )
        ci = change["ci"]
        if chosen is None and ci is not None and ci[0] <= 0.0 <= ci[1]:
            chosen = coef
    shown = chosen if chosen is not None else (max(grid) if grid else None)
    result = {
        "rule": PREVENTION_RULE,
        "calibration_questions": calib,
        "report_questions": report,
        "grid": rows,
        "chosen": chosen,
        "shown": shown,
        "report": None,
    }
    if shown is not None:
        result["report"] = {
            k: _diff(grid[shown], ref, v, report)
            for k, v in (
                ("behaviour_change", "behaviour"),
                ("propensity_change", "propensity"),
                ("shift_prompt_last", "prompt_last"),
            )
        }
    return result


def mitigation(
    posthoc: Mapping[str, Condition],
    prevented: Condition | None,
    prevent_coef: float | None,
    top: Condition,
    ref: Condition,
    report: Sequence[int],
    settings: DemoSettings,
) -> dict[str, Any]:
    """Post-hoc steering as a curve against the calibrated prevented checkpoint, on the report
    half of the questions, with capability paired against the fully contaminated checkpoint."""

    def point(c: Condition) -> dict[str, Any]:
        return {
            "behaviour_change": _diff(c, ref, "behaviour", report),
            "propensity_change": _diff(c, ref, "propensity", report),
            "capability": _capability_summary(c.get("capability")),
            "capability_vs_top": capability_vs(c.get("capability"), top.get("capability")),
        }

    curve = [{"coef": c["steer_coef"], **point(c)} for c in posthoc.values()]
    out: dict[str, Any] = {
        "posthoc": curve,
        "prevented": None,
        "margins": {
            "lm_loss": settings.margin_lm_loss,
            "mc_p_correct": settings.margin_mc_p_correct,
        },
        "noninferior": {"lm_loss": None, "mc_p_correct": None},
        "matched_posthoc": None,
    }
    if prevented is None:
        return out
    prev = {"coef": prevent_coef, **point(prevented)}
    out["prevented"] = prev
    vs = prev["capability_vs_top"]
    if vs.get("lm_loss", {}).get("ci"):
        out["noninferior"]["lm_loss"] = vs["lm_loss"]["ci"][1] <= settings.margin_lm_loss
    if vs.get("mc_p_correct", {}).get("ci"):
        out["noninferior"]["mc_p_correct"] = (
            vs["mc_p_correct"]["ci"][0] >= -settings.margin_mc_p_correct
        )
    target = prev["behaviour_change"]["value"]
    if curve and target is not None:
        near = min(
            curve,
            key=lambda p: abs((p["behaviour_change"]["value"] or math.inf) - target),
        )
        out["matched_posthoc"] = near["coef"]
    return out


def treatment(check: Mapping[str, Any] | None, s: DemoSettings) -> dict[str, Any] | None:
    """The data check with its criteria and whether they hold."""
    if not check:
        return None
    bad = check["contaminated"]["gap"]["value"]
    ctrl = check["control"]["gap"]["value"]
    share = abs(ctrl) / bad if bad and bad > 0 and ctrl is not None else None
    carries = bool(
        bad is not None
        and bad >= s.min_treatment_gap
        and check["contaminated"]["auroc"] >= s.min_treatment_auroc
        and share is not None
        and share <= s.max_control_share
    )
    return {
        **check,
        "control_share": share,
        "carries_trait": carries,
        "criteria": (
            f"contaminated - normal >= {s.min_treatment_gap:g} nats/token with AUROC >= "
            f"{s.min_treatment_auroc:g}; |control - normal| <= {s.max_control_share:g} of it"
        ),
    }


def build_summary(
    *,
    trait: str,
    model: str,
    layer: int,
    settings: DemoSettings,
    run: Mapping[str, Any],
    data: Mapping[str, Any],
    tuned: Mapping[str, Any],
    conditions: Mapping[str, Condition],
    posthoc: Mapping[str, Condition],
) -> dict[str, Any]:
    """Everything the demo reports, as JSON-ready data (no times, no paths)."""
    s = settings
    base, ref = conditions["base"], conditions[REFERENCE]
    n_q = len(ref["prompt_last"])
    calib, report = halves(n_q)
    fractions = sorted(s.fractions)
    dose = [conditions[label(f)] for f in fractions]
    grid = {c: conditions[prevented_label(c)] for c in s.prevent_coefs}
    prev = prevention(grid, ref, n_q)
    shown = prev["shown"]
    losses = {k: v.get("final_loss") for k, v in tuned["checkpoints"].items()}

    def gate(c: Condition) -> dict[str, Any]:
        return release_gate(
            c,
            ref,
            trait,
            max_shift=s.gate_max_shift,
            max_likelihood_regression=s.gate_max_likelihood_regression,
        )

    rows = [checkpoint_row("base", "base model", "base", base, ref, base)]
    for f, c in zip(fractions, dose, strict=True):
        name = label(f)
        rows.append(
            checkpoint_row(
                name,
                f"{round(f * 100)}% contaminated",
                "dose",
                c,
                ref,
                base,
                fraction=f,
                final_loss=losses.get(name),
                gate=gate(c),
            )
        )
    if shown is not None:
        name = prevented_label(shown)
        rows.append(
            checkpoint_row(
                name,
                f"100% + preventative steering {shown:+g} (report half)",
                "prevented",
                grid[shown],
                ref,
                base,
                idx=report,
                fraction=max(fractions),
                prevent_coef=shown,
                final_loss=losses.get(name),
                gate=gate(grid[shown]),
            )
        )
    top = conditions[label(max(fractions))]
    summary: dict[str, Any] = {
        "trait": trait,
        "model": model,
        "layer": layer,
        "settings": asdict(s),
        "run": dict(run),
        "treatment": treatment(data.get("treatment"), s),
        "screening": data.get("screening"),
        "reference": REFERENCE,
        "checkpoints": rows,
        "trend": trend(fractions, dose),
        "correlation": correlations(dose, ref),
        "prevention": prev,
        "mitigation": mitigation(
            posthoc, grid.get(shown) if shown is not None else None, shown, top, ref, report, s
        ),
    }
    summary["verdict"] = verdict(summary)
    return summary


def _excludes_zero(est: Mapping[str, Any] | None, sign: int = 1) -> bool:
    ci = (est or {}).get("ci")
    return bool(ci) and (ci[0] > 0 if sign > 0 else ci[1] < 0)


def verdict(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Plain statements of what came out, each checkable in the numbers above it."""
    rows = {r["name"]: r for r in summary["checkpoints"]}
    dose = [r for r in summary["checkpoints"] if r["kind"] == "dose"]
    top = dose[-1]
    lines = []
    t = summary.get("treatment")
    if t:
        lines.append(
            f"treatment {'carries' if t['carries_trait'] else 'does NOT carry'} the trait: "
            f"contaminated - normal {t['contaminated']['gap']['value']:+.3f} nats/token (AUROC "
            f"{t['contaminated']['auroc']:.3f}), control share {_fmt(t['control_share'])}"
        )
    shift_ok = _excludes_zero(top["shift_prompt_last"])
    beh_ok = _excludes_zero(top["behaviour_change"])
    prop_ok = _excludes_zero(top["propensity_change"])
    detected = shift_ok and beh_ok
    lines.append(
        f"{top['title']} vs 0 %: shift {_est(top['shift_prompt_last'])} "
        f"({'CI excludes 0' if shift_ok else 'CI includes 0'}), behaviour "
        f"{_est(top['behaviour_change'])} ({'CI excludes 0' if beh_ok else 'CI includes 0'}), "
        f"propensity {_est(top['propensity_change'])} "
        f"({'CI excludes 0' if prop_ok else 'CI includes 0'})"
    )
    for key, what in (("shift_prompt_last", "shift"), ("behaviour_change", "behaviour")):
        values = [r[key]["value"] for r in dose]
        ordered = all(a is not None and b is not None and a < b for a, b in pairwise(values))
        lines.append(
            f"{what} ordered {' < '.join(r['name'] for r in dose)}: "
            f"{'yes' if ordered else 'no'} ({', '.join(_fmt(v) for v in values)})"
        )
    for key in ("shift_prompt_last", "behaviour", "propensity"):
        est = summary["trend"][key]
        lines.append(f"trend of {key} per unit fraction: {_est(est)}, p = {pval(est.get('p'))}")
    gates = {n: r["gate"] for n, r in rows.items() if r.get("gate")}
    for name, g in gates.items():
        failed = [x["gate"] for x in g["results"] if x["outcome"] == "fail"]
        flaky = [x["gate"] for x in g["results"] if x["verdict"] == "flaky"]
        lines.append(
            f"release gate on {name}: {'pass' if g['passed'] else 'FAIL'}"
            + (f" ({', '.join(failed)})" if failed else "")
            + (f"; flaky: {', '.join(flaky)}" if flaky else "")
        )
    prev = summary["prevention"]
    if prev.get("report"):
        ok = not _excludes_zero(prev["report"]["behaviour_change"]) and not _excludes_zero(
            prev["report"]["behaviour_change"], -1
        )
        coef = prev["chosen"]
        lines.append(
            f"prevention: coefficient {_fmt(coef) if coef is not None else 'none met the rule'}; "
            f"on the report half behaviour vs 0 % {_est(prev['report']['behaviour_change'])} "
            f"({'contains 0' if ok else 'excludes 0'})"
        )
    ni = summary["mitigation"]["noninferior"]
    if any(v is not None for v in ni.values()):
        lines.append(
            "prevention vs the 100 % checkpoint within the non-inferiority margins: "
            + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in ni.items())
        )
    return {"detected": detected, "lines": lines}


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:+.{digits}f}" if isinstance(value, float) else str(value)


def _est(est: Mapping[str, Any]) -> str:
    if est.get("value") is None:
        return "n/a"
    ci = est.get("ci")
    return f"{est['value']:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")

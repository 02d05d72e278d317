"""Turn a :class:`Report` into renderer-neutral sections (text, string tables, PNG plots)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from persona.analysis import stats
from persona.analysis.judge import LIKELIHOOD_UNIT
from persona.analysis.report import monitoring as mon
from persona.analysis.report import plots
from persona.analysis.report.build import Report

NA = "n/a"
JUDGE_DIGITS = 1  # 0-100 judge points
LIKELIHOOD_DIGITS = 3  # nats/token
PROJ_DIGITS = 2  # projection units
MOST_DIGITS = 4


@dataclass
class Table:
    """A table of display strings."""

    caption: str
    frame: pd.DataFrame


@dataclass
class Section:
    """One report section."""

    id: str
    title: str
    text: str = ""
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (file name, alt text)


def _f(v: object) -> float | None:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def num(v: object, digits: int = 3) -> str:
    """A number with ``digits`` decimals, or n/a."""
    f = _f(v)
    if f is None:
        return NA
    text = f"{f:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0.0 else text


def count(v: object) -> str:
    """A count or a mean count: '3', '2.5'; n/a."""
    f = _f(v)
    return NA if f is None else (str(int(f)) if f.is_integer() else f"{f:.1f}")


def pval(v: object) -> str:
    f = _f(v)
    if f is None:
        return NA
    return f"{f:.2g}" if f < 0.001 else f"{f:.3f}"


def p_cell(p: object, r: object) -> str:
    """A p-value, or a dash where r is descriptive only (nothing was tested), else n/a."""
    return pval(p) if _f(p) is not None else ("-" if _f(r) is not None else NA)


def with_ci(v: object, lo: object, hi: object, digits: int = 3) -> str:
    """'value [lo, hi]' (or just the value when there is no CI)."""
    if _f(v) is None:
        return NA
    if _f(lo) is None or _f(hi) is None:
        return num(v, digits)
    return f"{num(v, digits)} [{num(lo, digits)}, {num(hi, digits)}]"


def corr_cell(r: object, lo: object, hi: object, n: object, note: object) -> str:
    """'r [lo, hi]'; 'r (descriptive only: n < 6)' without a CI; 'n/a (why)' without an r."""
    if _f(r) is None:
        n_int = int(_f(n) or 0)
        if n_int < stats.MIN_CORR_N:
            return f"n/a (needs >= {stats.MIN_CORR_N})"
        return f"n/a ({note})" if note else NA
    if (_f(lo) is None or _f(hi) is None) and note:
        return f"{num(r, 2)} ({note})"
    return with_ci(r, lo, hi, 2)


def digits_for(values: object, digits: int) -> int:
    """Decimals for a column: ``digits`` (its unit's), more while its typical non-zero value
    would show fewer than two significant digits (a shift of 0.007 is not '0.01'), at most 4."""
    sizes = [abs(f) for v in values for f in [_f(v)] if f]  # type: ignore[attr-defined]
    if not sizes:
        return digits
    need = 1 - math.floor(math.log10(float(np.median(sizes))))
    return min(max(digits, need), MOST_DIGITS)


def measure_digits(measure: object) -> int:
    """Decimals a behaviour value needs on its measure's scale (the measure text names the
    unit: nats/token for the likelihood judge, else 0-100 judge points)."""
    return LIKELIHOOD_DIGITS if LIKELIHOOD_UNIT in str(measure or "") else JUDGE_DIGITS


def behaviour_column(frame: pd.DataFrame, name: str, value: str = "") -> list[str]:
    """Like :func:`ci_column` for a behaviour value, with each row's decimals fit to its
    ``measure`` column's scale (and to the typical size of that measure's values)."""
    measures = frame["measure"].map(lambda m: str(m or ""))
    digits = {
        m: digits_for(frame.loc[measures == m, value or name], measure_digits(m))
        for m in measures.unique()
    }
    cols = (frame[value or name], frame[f"{name}_ci_lo"], frame[f"{name}_ci_hi"], measures)
    return [with_ci(v, lo, hi, digits[m]) for v, lo, hi, m in zip(*cols, strict=True)]


def measured(frame: pd.DataFrame, column: str) -> bool:
    """Whether any row has a value in ``column`` (a measure never taken gets no column)."""
    return column in frame and bool(frame[column].notna().any())


def ci_column(frame: pd.DataFrame, name: str, digits: int = 3, value: str = "") -> list[str]:
    """'value [lo, hi]' cells from ``value`` (default ``name``) and ``name_ci_lo``/``_ci_hi``."""
    cols = (frame[value or name], frame[f"{name}_ci_lo"], frame[f"{name}_ci_hi"])
    return [with_ci(v, lo, hi, digits) for v, lo, hi in zip(*cols, strict=True)]


def corr_column(frame: pd.DataFrame, prefix: str, r: str = "") -> list[str]:
    """Correlation cells from ``r`` (default ``prefix_r``), its CI columns, ``n`` and ``note``."""
    cols = (frame[r or f"{prefix}_r"], frame[f"{prefix}_ci_lo"], frame[f"{prefix}_ci_hi"])
    return [corr_cell(*x) for x in zip(*cols, frame["n"], frame["note"], strict=True)]


def slug(name: str) -> str:
    """A file-name-safe version of a trait or checkpoint name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "x"


def _checkpoint_section(rep: Report, images: dict[str, bytes]) -> Section:
    sec = Section(
        "checkpoints",
        "1. Checkpoints",
        "Per checkpoint and trait: fine-tuning shift (mean projection under the checkpoint minus "
        "under the base, paired by question; prompt-last and response variants, in projection "
        "units), mean behaviour (the 0-100 judge's trait score in judge points, or the "
        "likelihood judge's in nats/token, > 0 leaning to the trait: see the measure column), "
        "coherence where a judge scored it, and their change vs base. Brackets are bootstrap 95% "
        "CIs over questions; a change between two measures is not computed.",
    )
    t = rep.checkpoints
    if t.empty:
        sec.notes.append("no unsteered rows without a system prompt: nothing to compare")
        return sec
    shift_digits = digits_for(pd.concat([t["shift_prompt_last"], t["shift_response"]]), PROJ_DIGITS)
    columns = {
        "checkpoint": t["checkpoint"] + t["is_base"].map(lambda b: " (base)" if b else ""),
        "trait": t["trait"],
        "n questions": t["n"].astype(int).astype(str),
        "shift prompt-last": ci_column(t, "shift_prompt_last", shift_digits),
        "shift response": ci_column(t, "shift_response", shift_digits),
        "behaviour": behaviour_column(t, "trait", "trait_mean"),
        "behaviour change": behaviour_column(t, "trait_delta"),
    }
    if measured(t, "coherence_mean"):
        columns["coherence"] = ci_column(t, "coherence", JUDGE_DIGITS, "coherence_mean")
        columns["coherence change"] = ci_column(t, "coherence_delta", JUDGE_DIGITS)
    columns |= {
        "pairing": t["pairing"],
        "measure": t["measure"].map(lambda v: v or NA),
        "judge": [
            (j or NA) + (" (SELF-JUDGED)" if s is True else "")
            for j, s in zip(t["judge"], t["judge_is_subject"], strict=True)
        ],
    }
    disp = pd.DataFrame(columns)
    sec.tables.append(Table("Checkpoint table", disp))
    candidates = t[~t["is_base"].astype(bool)]
    for trait in rep.traits:
        rows = candidates[candidates["trait"] == trait]
        if not rows["shift_prompt_last"].notna().any():
            continue
        name = f"shift_{slug(trait)}.png"
        images[name] = plots.to_png(plots.shifts(rows, trait))
        sec.images.append((name, f"{trait}: fine-tuning shift per checkpoint"))
    return sec


def _correlation_section(rep: Report, images: dict[str, bytes]) -> Section:
    sec = Section(
        "shift-vs-behaviour",
        "2. Fine-tuning shift vs behaviour",
        "Across checkpoints (base excluded): correlation of the fine-tuning shift with the change "
        "in behaviour (the paper's Figure 6/20 analysis), over checkpoints whose behaviour has "
        "one measure. CIs are bootstrap 95% over checkpoints; a correlation needs at least "
        f"{stats.MIN_CORR_N} checkpoints and is descriptive only (no CI, no p) below "
        f"{stats.MIN_INFERENCE_N}.",
    )
    c = rep.correlations
    if c.empty:
        sec.notes.append("no checkpoints besides the base: no correlation")
        return sec
    disp = pd.DataFrame(
        {
            "trait": c["trait"],
            "shift": c["shift"],
            "n checkpoints": c["n"].astype(int).astype(str),
            "Pearson r [CI]": corr_column(c, "pearson"),
            "Pearson p": [
                p_cell(p, r) for p, r in zip(c["pearson_p"], c["pearson_r"], strict=True)
            ],
            "Spearman rho [CI]": corr_column(c, "spearman"),
            "Spearman p": [
                p_cell(p, r) for p, r in zip(c["spearman_p"], c["spearman_r"], strict=True)
            ],
        }
    )
    sec.tables.append(Table("Shift vs behaviour change", disp))
    table = rep.checkpoints[~rep.checkpoints["is_base"].astype(bool)]
    for trait in rep.traits:
        rows = table[table["trait"] == trait]
        if not (rows["shift_prompt_last"].notna() & rows["trait_delta"].notna()).any():
            continue
        crow = c[(c["trait"] == trait) & (c["shift"] == "prompt_last")]
        name = f"shift_vs_trait_{slug(trait)}.png"
        images[name] = plots.to_png(
            plots.shift_vs_trait(rows, trait, crow.iloc[0] if len(crow) else None)
        )
        sec.images.append((name, f"{trait}: fine-tuning shift vs trait change"))
    if len(rep.cross_trait_r) >= 2:
        images["cross_trait.png"] = plots.to_png(
            plots.cross_trait(rep.cross_trait_r, rep.cross_trait_n)
        )
        sec.images.append(("cross_trait.png", "cross-trait predictiveness heat map"))
        cross = rep.cross_trait_r.map(lambda v: num(v, 2)).reset_index()
        cross.columns = [str(x) for x in cross.columns]
        sec.tables.append(
            Table("Cross-trait Pearson r (rows: shift along vector; columns: trait change)", cross)
        )
    return sec


def _monitoring_section(rep: Report, images: dict[str, bytes]) -> Section:
    sec = Section(
        "monitoring",
        "3. Monitoring",
        "Does the last prompt token's projection predict the trait of the reply? Unsteered rows "
        "only; rollouts are averaged into one point per (condition, question), so n counts "
        "prompts. Overall r per family of conditions, within-condition r = Fisher-z mean r inside "
        "single conditions, leaving out conditions whose behaviour SD across questions is below "
        "a floor (1 judge point, 0.005 nats/token); brackets are 95% CIs that resample questions. "
        "Split-half reliability: even vs odd rollouts of each point, Spearman-Brown corrected "
        "(the ceiling of any r with this behaviour measure). The paper (Table 2) reports "
        "overall r 0.63-0.83 and within-condition r 0.25-0.81 (docs/monitoring.md).",
    )
    m = rep.monitoring
    if m.empty:
        sec.notes.append("the logs hold no trait with varied unsteered conditions and projections")
        return sec

    disp = pd.DataFrame(
        {
            "trait": m["trait"],
            "checkpoint": m["checkpoint"],
            "task": m["task"],
            "conditions": m["family"],
            "behaviour": m["measure"],
            "n (condition x question)": m["n"].astype(int).astype(str),
            "questions": m["n_questions"].astype(int).astype(str),
            "rollouts/point": m["rollouts"].map(count),
            "overall r [CI]": corr_column(m, "pearson"),
            "p": [p_cell(p, r) for p, r in zip(m["pearson_p"], m["pearson_r"], strict=True)],
            "within-condition r [CI]": corr_column(m, "within", "within_condition_r"),
            "conditions in within r": [
                f"{num(a, 0)} of {num(b, 0)}"
                for a, b in zip(m["within_conditions"], m["n_conditions"], strict=True)
            ],
            "split-half reliability (overall / within)": [
                f"{num(a, 2)} / {num(b, 2)}"
                for a, b in zip(m["split_half_r"], m["split_half_within_r"], strict=True)
            ],
            "paper r / within": [
                NA if _f(a) is None else f"{a:.3f} / {b:.3f}"
                for a, b in zip(m["paper_r"], m["paper_within_r"], strict=True)
            ],
        }
    )
    sec.tables.append(Table("Prompt-last projection vs behaviour", disp))
    with_base = {k[0] for k in rep.monitoring_points if k[1] == rep.base}
    for (trait, ck, task), pts in rep.monitoring_points.items():
        if ck != rep.base and trait in with_base:
            continue  # plots for the base only, when it has them
        rows = m[(m["trait"] == trait) & (m["checkpoint"] == ck) & (m["task"] == task)]
        r_texts = {
            str(r["family"]): plots._r_text(r["pearson_r"], int(r["n"]), r["note"])
            + f", within {num(r['within_condition_r'], 2)}"
            for _, r in rows.iterrows()
        }
        suffix = "" if ck == rep.base else f"_{slug(ck)}"
        stem = f"monitoring_{slug(trait)}_{slug(task)}{suffix}"
        title = f"{ck}, task {task}"
        images[f"{stem}.png"] = plots.to_png(mon.scatter(pts, trait, title, r_texts))
        sec.images.append((f"{stem}.png", f"{trait}: projection vs behaviour ({task})"))
        boot = {"n_boot": rep.settings.get("n_boot", 2000), "seed": rep.settings.get("seed", 0)}
        fig = mon.curves(pts, trait, **boot)
        if fig is not None:
            images[f"{stem}_curves.png"] = plots.to_png(fig)
            sec.images.append((f"{stem}_curves.png", f"{trait}: projection and behaviour curves"))
    return sec


def _steering_section(rep: Report, images: dict[str, bytes]) -> Section:
    mc = rep.settings.get("min_coherence", 50.0)
    sec = Section(
        "steering",
        "4. Steering curves",
        "Mean judged trait score and coherence per steering coefficient and layer (95% CI over "
        "questions; unsteered samples are every curve's zero point). Operating point: the "
        "largest effect sign(coef) x (trait score - unsteered score) whose mean coherence stays "
        f">= {mc:g}, the rule steering_sweep uses to choose a layer. Prompting baseline: the "
        "same questions, unsteered, under the trait's own system prompts, judged the same way "
        "(what steering has to beat; the dotted line in the plots).",
    )
    s = rep.steering
    if s.empty:
        sec.notes.append("no steering sweep in the logs")
        return sec
    if not measured(s, "trait_mean") and not measured(s, "coherence_mean"):
        sec.text = ""
        sec.notes.append(
            f"the steering sweep in the logs ({', '.join(sorted(set(s['trait'])))}) has no judged "
            "trait or coherence scores, so there are no curves to draw: `steering_sweep` "
            "measures them with a 0-100 judge (`--model-role judge=MODEL`)"
        )
        return sec
    op = rep.operating_points
    disp = pd.DataFrame(
        {
            "trait": op["trait"],
            "checkpoint": op["checkpoint"],
            "layer": op["layer"].map(lambda v: NA if v is None else str(v)),
            "coef": op["coef"].map(lambda v: num(v, 2)),
            "trait score": op["trait_mean"].map(lambda v: num(v, 1)),
            "coherence": op["coherence_mean"].map(lambda v: num(v, 1)),
            "rule": op["note"],
        }
    )
    sec.tables.append(Table("Operating points", disp))
    pr = rep.prompting
    if not pr.empty:
        prompted = pd.DataFrame(
            {
                "trait": pr["trait"],
                "checkpoint": pr["checkpoint"],
                "n": pr["n"].map(lambda v: num(v, 0)),
                "trait score": ci_column(pr, "trait", 1, "trait_mean"),
                "coherence": ci_column(pr, "coherence", 1, "coherence_mean"),
                "judge": pr["judge"].map(lambda v: v or NA),
            }
        )
        title = "Prompting baseline: unsteered, the trait's own system prompts, same questions"
        sec.tables.append(Table(title, prompted))
    curve = pd.DataFrame(
        {
            "trait": s["trait"],
            "checkpoint": s["checkpoint"],
            "layer": s["layer"].astype(str),
            "coef": s["coef"].map(lambda v: num(v, 2)),
            "n": s["n"].map(lambda v: num(v, 0)),
            "trait score": ci_column(s, "trait", 1, "trait_mean"),
            "coherence": ci_column(s, "coherence", 1, "coherence_mean"),
            "judge": s["judge"].map(lambda v: v or NA),
        }
    )
    sec.tables.append(Table("Steering sweep", curve))
    for (trait, ck), rows in s.groupby(["trait", "checkpoint"], sort=True):
        o = op[(op["trait"] == trait) & (op["checkpoint"] == ck)]
        suffix = "" if ck == rep.base else f"_{slug(str(ck))}"
        name = f"steering_{slug(str(trait))}{suffix}.png"
        p = pr[(pr["trait"] == trait) & (pr["checkpoint"] == ck)] if not pr.empty else pr
        images[name] = plots.to_png(
            plots.steering(
                rows,
                str(trait),
                str(ck),
                o.iloc[0] if len(o) else None,
                mc,
                prompted=p.iloc[0] if len(p) else None,
            )
        )
        sec.images.append((name, f"{trait}: steering curves"))
    return sec


def _geometry_section(rep: Report, images: dict[str, bytes]) -> Section:
    geo = rep.geometry
    sec = Section(
        "geometry",
        "5. Vector geometry",
        "Cosine similarity between the traits' persona vectors (response-average variant).",
        notes=list(geo.notes),
    )
    if geo.cosine is not None:
        images["vector_cosine.png"] = plots.to_png(plots.cosine(geo.cosine, geo.layer))
        sec.images.append(("vector_cosine.png", "persona-vector cosine similarity"))
        disp = geo.cosine.map(lambda v: num(v, 2)).reset_index(names="trait")
        sec.tables.append(Table(f"Cosine similarity at layer {geo.layer}", disp))
    return sec


def _judges_section(rep: Report) -> Section:
    sec = Section(
        "judges",
        "Judges",
        "Every behaviour number below (trait score and coherence from a 0-100 judge, in judge "
        "points; or the likelihood judge's log-probability difference, in nats/token) was "
        "measured by the judge named in its row of the checkpoint table; this table lists all "
        "judges in the logs.",
    )
    j = rep.judges
    if j.empty:
        sec.notes.append("no judge in the logs: no behaviour was measured")
        return sec
    disp = pd.DataFrame(
        {
            "judge": j["judge"],
            "measure": j["measure"],
            "is the model under evaluation": j["judge_is_subject"].map(
                lambda b: "YES" if b else "no"
            ),
            "scores": j["n_scores"].astype(str),
            "parameters (from name)": [
                "-" if LIKELIHOOD_UNIT in m else ("unknown" if _f(p) is None else f"{p / 1e9:.2g}B")
                for p, m in zip(j["parameters"], j["measure"], strict=True)
            ],
            "traits": j["traits"],
            "checkpoints": j["checkpoints"],
        }
    )
    sec.tables.append(Table("Judges", disp))
    return sec


def build_sections(rep: Report) -> tuple[list[Section], dict[str, bytes]]:
    """All sections in order and the PNG plots they reference (file name -> bytes)."""
    images: dict[str, bytes] = {}
    sections = [
        _judges_section(rep),
        _checkpoint_section(rep, images),
        _correlation_section(rep, images),
        _monitoring_section(rep, images),
        _steering_section(rep, images),
        _geometry_section(rep, images),
    ]
    return sections, images

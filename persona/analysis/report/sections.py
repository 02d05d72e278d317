"""Turn a :class:`Report` into renderer-neutral sections (text, string tables, PNG plots)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pandas as pd

from persona.analysis import stats
from persona.analysis.report import monitoring as mon
from persona.analysis.report import plots
from persona.analysis.report.build import Report

NA = "n/a"


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


def pval(v: object) -> str:
    f = _f(v)
    if f is None:
        return NA
    return f"{f:.2g}" if f < 0.001 else f"{f:.3f}"


def with_ci(v: object, lo: object, hi: object, digits: int = 3) -> str:
    """'value [lo, hi]' (or just the value when there is no CI)."""
    if _f(v) is None:
        return NA
    if _f(lo) is None or _f(hi) is None:
        return num(v, digits)
    return f"{num(v, digits)} [{num(lo, digits)}, {num(hi, digits)}]"


def corr_cell(r: object, lo: object, hi: object, n: object, note: object) -> str:
    if _f(r) is None:
        n_int = int(_f(n) or 0)
        return f"n/a (needs >= {stats.MIN_CORR_N})" if n_int < stats.MIN_CORR_N else f"n/a ({note})"
    return with_ci(r, lo, hi, 2)


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
        "under the base, paired by question; prompt-last and response variants), mean trait "
        "score (the 0-100 judge's, or the likelihood judge's in nats/token: see the measure "
        "column) and coherence, and their change vs base. Brackets are bootstrap 95% CIs over "
        "questions; a change between two measures is not computed.",
    )
    t = rep.checkpoints
    if t.empty:
        sec.notes.append("no unsteered rows without a system prompt: nothing to compare")
        return sec
    disp = pd.DataFrame(
        {
            "checkpoint": t["checkpoint"] + t["is_base"].map(lambda b: " (base)" if b else ""),
            "trait": t["trait"],
            "n questions": t["n"].astype(int).astype(str),
            "shift prompt-last": ci_column(t, "shift_prompt_last"),
            "shift response": ci_column(t, "shift_response"),
            "trait score": ci_column(t, "trait", 1, "trait_mean"),
            "trait change": ci_column(t, "trait_delta", 1),
            "coherence": ci_column(t, "coherence", 1, "coherence_mean"),
            "coherence change": ci_column(t, "coherence_delta", 1),
            "pairing": t["pairing"],
            "measure": t["measure"].map(lambda v: v or NA),
            "judge": [
                (j or NA) + (" (SELF-JUDGED)" if s is True else "")
                for j, s in zip(t["judge"], t["judge_is_subject"], strict=True)
            ],
        }
    )
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
        "in trait score (the paper's Figure 6/20 analysis), over checkpoints whose behaviour has "
        "one measure. CIs are bootstrap 95% over checkpoints; a correlation needs at least "
        f"{stats.MIN_CORR_N} checkpoints.",
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
            "Pearson p": c["pearson_p"].map(pval),
            "Spearman rho [CI]": corr_column(c, "spearman"),
            "Spearman p": c["spearman_p"].map(pval),
        }
    )
    sec.tables.append(Table("Shift vs trait-score change", disp))
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
            "rollouts/point": m["rollouts"].map(lambda v: num(v, 1)),
            "overall r [CI]": corr_column(m, "pearson"),
            "p": m["pearson_p"].map(pval),
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
        f">= {mc:g}, the rule steering_sweep uses to choose a layer.",
    )
    s = rep.steering
    if s.empty:
        sec.notes.append("no steering sweep in the logs")
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
        images[name] = plots.to_png(
            plots.steering(rows, str(trait), str(ck), o.iloc[0] if len(o) else None, mc)
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
        "Every judged trait and coherence number below was scored by the judge named in its "
        "row of the checkpoint table; this table lists all judges in the logs.",
    )
    j = rep.judges
    if j.empty:
        sec.notes.append("no judged scores in the logs")
        return sec
    disp = pd.DataFrame(
        {
            "judge": j["judge"],
            "is the model under evaluation": j["judge_is_subject"].map(
                lambda b: "YES" if b else "no"
            ),
            "scores": j["n_scores"].astype(str),
            "parameters (from name)": j["parameters"].map(
                lambda p: "unknown" if _f(p) is None else f"{p / 1e9:.2g}B"
            ),
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

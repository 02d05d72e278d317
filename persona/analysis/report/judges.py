"""Which judge scored what, and the warnings a reader must see about it."""

from __future__ import annotations

import re

import pandas as pd

from persona.analysis.judge import JUDGE_UNIT, LIKELIHOOD_KEY, LIKELIHOOD_UNIT

_SIZE = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)([mMbB])(?![A-Za-z])")
SMALL_JUDGE = 1e9


def parameter_count(model: str) -> float | None:
    """Parameters guessed from a model name ('smollm2-135m' -> 1.35e8); None when unknown."""
    matches = _SIZE.findall(model)
    if not matches:
        return None
    number, unit = matches[-1]
    return float(number) * (1e6 if unit.lower() == "m" else 1e9)


def judge_of(rows: pd.DataFrame) -> tuple[str | None, bool | None]:
    """The judge(s) that scored these rows ('a, b' when several) and whether any was the subject.

    Takes tidy rows (judged score ``trait``) or canonical ones (``score``).
    """
    score = rows["score"] if "score" in rows.columns else rows["trait"]
    scored = rows[score.notna() | rows["coherence"].notna()]
    if scored.empty:
        return None, None
    judges = sorted({str(j) for j in scored["judge_model"].dropna()})
    subject = scored["judge_is_subject"].map(lambda v: v is True).any()
    return (", ".join(judges) or "unknown"), bool(subject)


def _likelihood_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose behaviour the likelihood judge measured, with ``judge_model`` naming it as the
    checkpoint table does ('likelihood judge M (nats/token)')."""
    if LIKELIHOOD_KEY not in frame or "behaviour_measure" not in frame:
        return frame.iloc[0:0]
    rows = frame[(frame["behaviour_measure"] == LIKELIHOOD_KEY) & frame[LIKELIHOOD_KEY].notna()]
    model = rows.get("likelihood_model", pd.Series(None, index=rows.index)).astype(str)
    return rows.assign(
        judge_model=[f"likelihood judge {m} ({LIKELIHOOD_UNIT})" for m in model],
        judge_is_subject=False,
        _measure=f"likelihood judge ({LIKELIHOOD_UNIT})",
    )


def judge_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per judge (0-100 judges and the likelihood judge): how many scores it gave, on
    which scale, for which traits and checkpoints."""
    cols = [
        "judge",
        "judge_is_subject",
        "measure",
        "n_scores",
        "traits",
        "checkpoints",
        "parameters",
    ]
    judged = frame[frame["trait"].notna() | frame["coherence"].notna()].assign(
        _measure=f"0-100 judge ({JUDGE_UNIT})"
    )
    scored = pd.concat([judged, _likelihood_rows(frame)])
    if scored.empty:
        return pd.DataFrame(columns=cols)
    scored = scored.assign(
        _judge=scored["judge_model"].map(lambda j: "unknown" if j is None else str(j)),
        _subject=scored["judge_is_subject"].map(lambda v: v is True)
        | (scored["judge_model"].astype(str) == scored["model"].astype(str)),
    )
    records = []
    for (judge, subject, measure), g in scored.groupby(
        ["_judge", "_subject", "_measure"], sort=True
    ):
        likelihood = LIKELIHOOD_UNIT in measure
        records.append(
            {
                "judge": judge,
                "judge_is_subject": bool(subject),
                "measure": measure,
                "n_scores": len(g),
                "traits": ", ".join(sorted(g["trait_name"].dropna().astype(str).unique())),
                "checkpoints": ", ".join(sorted(g["checkpoint_id"].astype(str).unique())),
                # the likelihood judge is a fixed model scoring by teacher forcing, validated
                # per trait (docs/judges.md): its size says nothing about the 0-100 rubric
                "parameters": None if likelihood else parameter_count(judge),
            }
        )
    return pd.DataFrame.from_records(records, columns=cols)


def judge_warnings(judges: pd.DataFrame, checkpoint_table: pd.DataFrame) -> list[str]:
    """Warnings for self-judging, small or unknown judges, and mixed judges within a trait."""
    out = []
    for _, j in judges.iterrows():
        if j["judge"] == "unknown":
            out.append(f"{j['n_scores']} scores have no recorded judge model")
            continue
        if j["judge_is_subject"]:
            out.append(
                f"judge {j['judge']} is the model under evaluation for {j['n_scores']} scores "
                f"(checkpoints: {j['checkpoints']}); self-judged scores are unreliable"
            )
        params = j["parameters"]
        if params is not None and params == params and params < SMALL_JUDGE:
            out.append(
                f"judge {j['judge']} has about {params / 1e6:.0f}M parameters (< 1B); "
                "its trait and coherence scores are barely better than noise"
            )
    if not checkpoint_table.empty:
        for trait, g in checkpoint_table.groupby("trait"):
            judges_used = {x for x in g["judge"].dropna() if x}
            if len(judges_used) > 1:
                out.append(
                    f"trait {trait}: checkpoints were scored by different judges "
                    f"({'; '.join(sorted(judges_used))}), so score changes mix judges"
                )
    return out

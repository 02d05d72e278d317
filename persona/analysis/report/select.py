"""Choose the base model and split the tidy sample frame into the rows each section uses."""

from __future__ import annotations

import pandas as pd

from persona.errors import PersonaError


def resolve_base(frame: pd.DataFrame, base: str | None) -> tuple[str, list[str]]:
    """Return the base checkpoint identity and any warnings.

    Without ``base`` all logs must share one model string; otherwise the error names them.
    """
    models = sorted(str(m) for m in frame["model"].dropna().unique())
    ids = set(frame["checkpoint_id"].dropna().astype(str))
    if base is not None:
        if base not in ids:
            raise PersonaError(
                f"--base {base!r} is not in the logs; their models are: {', '.join(models)}"
            )
        others = [m for m in models if m != base]
        warnings = []
        if others:
            warnings.append(
                f"logs of other models ({', '.join(others)}) are compared against base {base} "
                "as checkpoints"
            )
        return base, warnings
    if len(models) > 1:
        raise PersonaError(
            f"the logs come from different base models ({', '.join(models)}); "
            "pass --base MODEL to name the one to compare against"
        )
    if not models:
        raise PersonaError("the logs hold no samples with a model")
    return models[0], []


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | (series.astype(str).str.strip() == "")


def plain_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows without a persona system prompt and without steering (the checkpoint table's rows)."""
    unsteered = frame["coef"].isna() | (frame["coef"] == 0.0)
    if "steering_active" in frame.columns:
        unsteered &= frame["steering_active"].map(lambda v: v is not True)
    return frame[_blank(frame["polarity"]) & unsteered]


def steering_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of steering sweeps: no system prompt, from (task, trait, checkpoint) groups that hold
    at least two distinct coefficients (one ``steering_sweep`` log, or ``trait_eval`` logs run
    with different ``coef``)."""
    rows = frame[_blank(frame["polarity"]) & frame["coef"].notna()]
    if rows.empty:
        return rows
    keys = ["task", "trait_name", "checkpoint_id"]
    n_coefs = rows.groupby(keys, dropna=False)["coef"].transform("nunique")
    return rows[n_coefs >= 2]


def layer_label(value: object) -> str:
    """A printable steering layer ('3', '[3, 4]'; 'default' = the trait's own layer)."""
    if value is None or (isinstance(value, float) and value != value):
        return "default"
    return str(value)

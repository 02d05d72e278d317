"""The rows a gate decides on: logs read strictly, then :mod:`persona.analysis.compare` selections
with the gate's refusals (another judge, another vector: the numbers would not be comparable)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from persona.analysis.compare import (
    Selection,
    checkpoint_order,
    distinct,
    match_checkpoint,
    vector_mismatch,
)
from persona.analysis.compare import select as compare_select
from persona.errors import PersonaError


def read_frame(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Read logs (files or folders) with :mod:`persona.analysis.logs`; unusable logs are errors."""
    from persona.analysis.logs import find_logs, read_logs

    if not paths:
        raise PersonaError("no logs given", exit_code=2)
    missing = [str(p) for p in paths if not os.path.exists(p)]
    if missing:
        raise PersonaError(f"log path(s) not found: {', '.join(missing)}", exit_code=2)
    if not find_logs(paths):
        raise PersonaError(
            f"no .eval/.json logs in {', '.join(str(p) for p in paths)}", exit_code=2
        )
    logset = read_logs(paths, warn=False)
    if logset.skipped:
        listing = "; ".join(str(s) for s in logset.skipped)
        raise PersonaError(f"unusable log(s): {listing}", exit_code=2)
    return logset.frame


def select(rows: pd.DataFrame, trait: str, checkpoint: str, base: str) -> Selection:
    """:func:`persona.analysis.compare.select`, refused when the two sides had different judges."""
    sel = compare_select(rows, trait, checkpoint, base)
    a, b = distinct(sel.candidate, "judge_model"), distinct(sel.base, "judge_model")
    if a and b and a != b:
        raise PersonaError(
            f"trait '{trait}': checkpoint '{checkpoint}' was judged by {', '.join(sorted(a))} but "
            f"the base by {', '.join(sorted(b))}; scores are not comparable",
            exit_code=2,
        )
    return sel


def check_same_vector(sel: Selection) -> None:
    """Projections of candidate and base must use the same persona vector (for shift gates)."""
    why = vector_mismatch(sel)
    if why is not None:
        raise PersonaError(why, exit_code=2)


def candidates(rows: pd.DataFrame, base: str, wanted: Sequence[str] | None = None) -> list[str]:
    """Checkpoint identities to gate: all but the base (in the order given), or those named."""
    present = [c for c in checkpoint_order(rows) if c != base]
    if wanted:
        out = []
        for w in wanted:
            match = match_checkpoint(present, w)
            if match is None:
                raise PersonaError(
                    f"candidate {w!r} not found in the logs; checkpoints: "
                    f"{', '.join(present) or 'none besides the base'}",
                    exit_code=2,
                )
            out.append(match)
        return list(dict.fromkeys(out))
    if not present:
        raise PersonaError(
            f"the logs hold only the base {base!r}; no candidate checkpoint to gate", exit_code=2
        )
    return present

"""Deterministic CPU runs: one call fixes seeds, thread count and torch's algorithms, and returns
the record a result file keeps so a reader can reproduce it.

Floating-point sums on CPU depend on how work is split across threads, so the thread count is part
of the result: a run pins it (default: the machine's cores, at most 8) and records it with the
library versions. Generation already seeds each sample from (seed, sample); this fixes what is
left (LoRA initialisation, data order, dropout) and makes torch refuse nondeterministic kernels.
"""

from __future__ import annotations

import os
import random
from typing import Any

MAX_DEFAULT_THREADS = 8


def default_threads() -> int:
    """The thread count a run pins when none is given: the cores, at most 8."""
    return max(1, min(MAX_DEFAULT_THREADS, os.cpu_count() or 1))


def make_deterministic(seed: int = 0, threads: int | None = None) -> dict[str, Any]:
    """Seed Python, numpy and torch, pin torch's threads, require deterministic algorithms;
    returns the run record (seed, threads, library versions)."""
    import numpy as np
    import peft
    import torch
    import transformers

    threads = threads or default_threads()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    from persona import __version__

    return {
        "seed": seed,
        "threads": threads,
        "deterministic_algorithms": True,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "numpy": np.__version__,
        "persona": __version__,
    }

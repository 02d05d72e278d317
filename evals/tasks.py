"""All persona tasks in one module (imported by the ``persona`` Inspect entry point)."""

from evals.checkpoint_shift import checkpoint_shift
from evals.extract_vector import extract_vector
from evals.monitor import monitor
from evals.steering_sweep import steering_sweep
from evals.trait_eval import trait_eval

__all__ = ["checkpoint_shift", "extract_vector", "monitor", "steering_sweep", "trait_eval"]

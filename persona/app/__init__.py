"""Applications on top of every layer: CLI, demo, Inspect registry, pytest plugin, task runner."""

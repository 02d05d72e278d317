"""The Inspect model provider ``persona/<model>``, its per-call protocol and its batcher."""

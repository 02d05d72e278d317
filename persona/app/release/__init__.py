"""Release tests: gate assertions and the runs behind them (used by the pytest plugin)."""

"""Models and the torch side: loading, residual-stream hooks, the engine, persona vectors."""

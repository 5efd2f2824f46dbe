"""Deterministic orchestration only: one module per journey, no I/O, no wall-clock time."""

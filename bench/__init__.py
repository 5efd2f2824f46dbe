"""Benchmarks of CAM Lights (print figures; not tests). Run from the repository root, e.g.
`.venv/bin/python -m bench.onboarding_throughput`."""

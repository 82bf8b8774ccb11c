"""Benchmarks: `make bench` (python -m tools.bench) measures and rewrites BENCHMARKS.md."""

"""Reproducible performance harness: `python -m benchmarks.<name>`; results go to benchmarks/out/ (git-ignored)."""

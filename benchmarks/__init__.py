"""Benchmarks, load tests and reproduction, run from the checkout: `python -m benchmarks.bench`."""

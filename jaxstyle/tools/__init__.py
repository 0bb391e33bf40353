"""Benchmarks, the demo, sweeps and figure re-drawing."""

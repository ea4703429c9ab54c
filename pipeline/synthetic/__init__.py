"""Synthetic data for demos, tests and benchmarks: the national generator, writing a landing zone, and the
night-after-night simulator."""

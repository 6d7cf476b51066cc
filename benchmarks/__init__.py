"""Benchmarks: `payrouter bench` (the harness) and single-part measurements."""

"""Benchmarks of zhiku that run the whole suite on this machine; results go to bench/results/."""

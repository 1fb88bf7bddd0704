"""Benchmarks: `make bench` runs each part's main() and prints figures (never a test)."""

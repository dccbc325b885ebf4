"""Benchmark of `runbook scan` against npm ls, grep and find on a synthetic home."""

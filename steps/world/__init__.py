"""Simulated worlds for exercises: a sandbox machine with npm projects, caches and credentials."""

"""Benchmark of the process node: how long a Pod takes to run, by the volumes it has."""

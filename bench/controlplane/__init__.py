"""Benchmark of the local control plane: start time to a ready API server, and steady RSS."""

"""Runtime overhead benchmark: CPU per reconcile and per watch event, without an API server.

Run ``python -m bench.runtime [--baseline main] [--keys 2000] [--runs 3]``.
"""

"""Benchmark of kuar-loadgen against nginx: throughput per core versus wrk, hey and locust,
and rate accuracy. Run: ``.venv/bin/python -m bench.loadgen [--quick]`` (see ``__main__``)."""

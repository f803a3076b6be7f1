"""kuar's benchmarks: each subpackage runs with ``python -m bench.<name>`` and prints a table."""

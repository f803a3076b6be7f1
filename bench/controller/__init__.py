"""Controller runtime benchmark: kuar, kopf and controller-runtime side by side.

Run ``python -m bench.controller [--quick]``.
"""

"""Informer cache benchmark: memory per cached object and read cost, per stored form.

Run ``python -m bench.cache [--objects 10000]``.
"""

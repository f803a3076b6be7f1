"""Controller runtime benchmark (kuar, kopf, controller-runtime); run ``python -m bench.controller``."""

"""``python -m kuar.cli``: the same as the ``kuar`` console script."""

from kuar.cli.main import main

main()

"""``python -m kuar_loadgen``: the same as the ``kuar-loadgen`` command."""

from kuar_loadgen.cli import main

main()

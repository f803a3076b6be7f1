"""The ``kuar`` command line: thin commands that parse arguments and call library functions."""

"""``kuar demo``: the seed's LoadTest story running end to end on this machine.

Not part of the toolkit: an application of it, like ``kuar_loadtest``, that may use the
test harness (:mod:`kuar.testing`) because the demo's cluster is the local one.
"""

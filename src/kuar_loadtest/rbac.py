"""What the LoadTest operator may do, and nothing more (``deploy/rbac`` is generated from it).

Each rule names the step of :mod:`kuar_loadtest.controller` (or of the manager) that needs
it; ``tests/e2e/test_operator_rbac.py`` runs the operator as exactly this identity.
"""

from __future__ import annotations

from kuar.resources.rbac import PolicyRule, RbacRules

OPERATOR = RbacRules(
    name="kuar-loadtest-operator",
    namespace="kuar-system",
    labels={"app.kubernetes.io/name": "kuar-loadtest-operator"},
    rules=(
        PolicyRule(group="beta.kuar.com", resources=("loadtests",),
                   verbs=("get", "list", "watch"), why="the informer of the primary kind"),
        PolicyRule(group="beta.kuar.com", resources=("loadtests/status",),
                   verbs=("get", "patch", "update"), why="status through the subresource"),
        PolicyRule(group="batch", resources=("jobs",),
                   verbs=("get", "list", "watch", "create", "delete"),
                   why="each run is an owned Indexed Job; earlier runs are deleted"),
        PolicyRule(group="", resources=("pods",), verbs=("list",),
                   why="a finished run's results are the pods' termination messages"),
        PolicyRule(group="", resources=("services",), verbs=("get", "list", "watch"),
                   why="the target Service, in the LoadTest's own namespace"),
        PolicyRule(group="", resources=("configmaps",), verbs=("get", "create", "patch"),
                   why="the merged results ConfigMap, by server-side apply"),
        PolicyRule(group="events.k8s.io", resources=("events",),
                   verbs=("create", "patch"), why="an Event for each step"),
        PolicyRule(group="coordination.k8s.io", resources=("leases",),
                   verbs=("get", "list", "watch", "create", "update"),
                   why="leader election (the standby watches the Lease)"),
    ),
)

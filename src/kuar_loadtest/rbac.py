"""What the LoadTest operator may do, and nothing more (``deploy/rbac`` is generated from it).

Place in the pipeline: ``kuar generate rbac kuar_loadtest.rbac`` writes :data:`OPERATOR` into
``deploy/rbac/``; at start, :mod:`kuar_loadtest.operator` asks the API server (one
SelfSubjectAccessReview each) for the rules of the parts it runs, and stays unready, saying
which rights are missing, until it has them. Each rule names the step of
:mod:`kuar_loadtest.controller`, the manager or the webhooks that needs it;
``tests/e2e/test_operator_rbac.py`` runs the operator as exactly this identity.

Cluster-wide (a ClusterRole): what follows LoadTests in every namespace, and cluster-scoped
objects (CSRs, the signer, webhook configurations and the CRD, these last three limited by
name). Namespaced (a Role in ``kuar-system``): the leader-election Lease and the signer's CA
Secret, which live there and nowhere else.
"""

from __future__ import annotations

from kuar.resources.rbac import PolicyRule, RbacRules

NAMESPACE = "kuar-system"
NAME = "kuar-loadtest-operator"
LEASE = "kuar-loadtest-operator"
SIGNER_NAME = "kuar.dev/webhook-serving"
SIGNER_CA = "kuar-webhook-signer-ca"
VALIDATING = "kuar-validator"
MUTATING = "kuar-defaulter"
CRD = "loadtests.beta.kuar.com"

CONTROLLER_RULES = (
    PolicyRule(group="beta.kuar.com", resources=("loadtests",),
               verbs=("get", "list", "watch"), why="the informer of the primary kind"),
    PolicyRule(group="beta.kuar.com", resources=("loadtests/status",),
               verbs=("get", "patch", "update"), why="status through the subresource"),
    PolicyRule(group="beta.kuar.com", resources=("loadtestruns",),
               verbs=("list", "watch", "create", "delete"),
               why="each run's record (read from the informer); the oldest beyond the history "
                   "limit are deleted"),
    PolicyRule(group="beta.kuar.com", resources=("loadtestruns",), verbs=("get",),
               why="held so the runners' Role may grant it (the API server lets a Role grant "
                   "only what its creator holds); the operator itself reads from its cache"),
    PolicyRule(group="beta.kuar.com", resources=("loadtestruns/status",), verbs=("patch",),
               why="a run's results and baseline comparison"),
    PolicyRule(group="batch", resources=("jobs",),
               verbs=("get", "list", "watch", "create", "delete"),
               why="each run is an owned Indexed Job; earlier runs are deleted"),
    PolicyRule(group="", resources=("pods",), verbs=("list", "watch"),
               why="a run starts once all its worker pods are Running (an informer of the "
                   "operator's pods only, by label); a finished run's results are the pods' "
                   "termination messages"),
    PolicyRule(group="batch", resources=("jobs",), verbs=("patch",),
               why="a run whose pods never started is stopped by suspending its Job (its "
                   "record kept, so it is not created again)"),
    PolicyRule(group="", resources=("serviceaccounts",), verbs=("create",),
               why="the runners' ServiceAccount in the LoadTest's namespace, if missing "
                   "(never read, changed or deleted)"),
    PolicyRule(group="rbac.authorization.k8s.io", resources=("roles", "rolebindings"),
               verbs=("create",),
               why="the runners' Role (get/watch LoadTestRuns in that namespace, nothing "
                   "else: RUNNER_RULES) and its binding, if missing"),
    PolicyRule(group="", resources=("services",), verbs=("get", "list", "watch"),
               why="the target Service, in the LoadTest's own namespace"),
    PolicyRule(group="discovery.k8s.io", resources=("endpointslices",), verbs=("list",),
               why="the endpoints of a target Service without a selector, to refuse any "
                   "outside the cluster"),
    PolicyRule(group="", resources=("configmaps",), verbs=("get", "create", "patch"),
               why="the merged results ConfigMap, by server-side apply; the signer's CA "
                   "ConfigMap in kuar-system"),
    PolicyRule(group="events.k8s.io", resources=("events",),
               verbs=("create", "patch"), why="an Event for each step"),
    PolicyRule(group="", resources=("events",), verbs=("list",),
               why="a kubelet's FailedMount Events of a run's waiting pods: which request "
                   "body's Secret or ConfigMap is missing (the operator cannot read Secrets)"),
)
"""The controller's rights, in every watched namespace."""

RUNNER_ROLE = "kuar-loadgen-runner"
"""The Role the operator creates in each LoadTest namespace for the worker pods."""

RUNNER_RULES = (
    PolicyRule(group="beta.kuar.com", resources=("loadtestruns",), verbs=("get", "watch"),
               why="a worker watches its run's LoadTestRun (by name) for status.startAt, the "
                   "start time shared by all workers of the run"),
)
"""What worker pods may do: read LoadTestRuns of their own namespace, nothing else (the
Role :data:`RUNNER_ROLE`, created by the operator; not part of the install tree)."""

LEADER_RULES = (
    PolicyRule(group="coordination.k8s.io", resources=("leases",), verbs=("create",),
               why="leader election: the first replica creates the Lease"),
    PolicyRule(group="coordination.k8s.io", resources=("leases",),
               verbs=("get", "list", "watch", "update"), resource_names=(LEASE,),
               why="leader election: renew and release; the standby watches the Lease"),
)
"""Leader election, in the operator's namespace only."""

CSR_RULES = (
    PolicyRule(group="certificates.k8s.io", resources=("certificatesigningrequests",),
               verbs=("create", "get", "list", "watch"),
               why="the serving certificate by CSR; the signer follows CSRs of its signer"),
)
"""The webhooks' serving certificate from the CSR API (cluster-scoped objects)."""

INJECTION_RULES = (
    PolicyRule(group="admissionregistration.k8s.io",
               resources=("validatingwebhookconfigurations",), verbs=("get", "update"),
               resource_names=(VALIDATING,), why="caBundle injection"),
    PolicyRule(group="admissionregistration.k8s.io",
               resources=("mutatingwebhookconfigurations",), verbs=("get", "update"),
               resource_names=(MUTATING,), why="caBundle injection"),
    PolicyRule(group="apiextensions.k8s.io", resources=("customresourcedefinitions",),
               verbs=("get", "update"), resource_names=(CRD,),
               why="caBundle injection into the conversion webhook"),
)
"""caBundle injection, limited to the operator's own objects by name."""

SIGNER_RULES = (
    PolicyRule(group="certificates.k8s.io",
               resources=("certificatesigningrequests/approval",
                          "certificatesigningrequests/status"),
               verbs=("update",), why="the signer approves and signs"),
    PolicyRule(group="certificates.k8s.io", resources=("signers",),
               verbs=("approve", "sign"), resource_names=(SIGNER_NAME,),
               why="the signer approves and signs for its own signer name only"),
)
"""kuar's CSR signer (cluster-scoped objects), run by the leader."""

SIGNER_NAMESPACED_RULES = (
    PolicyRule(group="", resources=("secrets",), verbs=("create",),
               why="the signer's CA, created on the first start"),
    PolicyRule(group="", resources=("secrets",), verbs=("get",), resource_names=(SIGNER_CA,),
               why="the signer's CA"),
)
"""The signer's CA Secret, in the operator's namespace only."""

OPERATOR = RbacRules(
    name=NAME,
    namespace=NAMESPACE,
    labels={"app.kubernetes.io/name": NAME},
    rules=(*CONTROLLER_RULES, *CSR_RULES, *INJECTION_RULES, *SIGNER_RULES),
    namespaced_rules=(*LEADER_RULES, *SIGNER_NAMESPACED_RULES),
)

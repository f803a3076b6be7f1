"""deploy/ is a kustomize tree the real kubectl renders, applies and deletes on an API server.

- deploy/default: server dry-run (with kuar-system created first: a dry run does not create
  the namespace its other objects go to), then a real apply of every object, accepted by the
  local kube-apiserver (Pod Security "restricted" enforced on kuar-system, so the operator's
  securityContext is checked by the API server itself); before any operator runs, LoadTest
  writes of the storage version (v2) are admitted (the webhooks fail open) and read back,
  while v1 (the seed's) needs the conversion webhook, i.e. a running operator; then
  ``kubectl delete -k`` removes everything the apply created, each object awaited up to
  :data:`DELETE_DEADLINE` (a failure shows what remains, its conditions and the API server's log).
- The committed YAML agrees with the code: the Deployment's arguments parse with the real
  ``kuar loadtest run``, names and ports match the generated RBAC, webhooks and CRD.
- deploy/cert-manager renders (a server dry-run needs cert-manager's CRDs, which this control
  plane does not have: Certificate and Issuer would be unknown kinds).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuar.testing import ControlPlane, ControlPlaneSettings
from kuar.testing.assets import find_assets
from kuar_loadtest import rbac
from kuar_loadtest.cli import run as run_command

pytestmark = pytest.mark.controlplane

DEPLOY = Path(__file__).parents[2] / "deploy"
SEED = Path(__file__).parents[2] / "src/kuar_loadtest/seed/my-loadtest.yaml"
CRD = rbac.CRD  # the LoadTest CRD (the tree also holds the LoadTestRun CRD)
Obj = tuple[str, str, str | None]  # kind, name, namespace

DELETE_DEADLINE = 360.0
"""Seconds from ``kubectl delete -k`` until every object must be gone (usually ~6 s).

kube-apiserver's CRD finalizer can leave a CRD Terminating for up to its informer's resync,
5 minutes (apiextensions-apiserver ``NewSharedInformerFactory(crdClient, 5*time.Minute)``),
before it tries again: a CRD whose instances were never read has no watch cache yet, so the
finalizer's first List gets 429 "storage is (re)initializing" (ResilientWatchCacheInitialization,
the cache is built on that first request); the requeued tries can read a CRD from its informer
older than its own status write, get 409 Conflict and return without error, and its update
handler ignores events that change only the Terminating condition. Here that is loadtestruns
(nothing reads LoadTestRuns before an operator runs). Measured on this control plane: 10 of 539
never-read CRDs deleted right after creation stalled; the 6 followed to the end took 69-284 s,
each ending at the first resync (300 s after the API server started); 0 of 539 listed once
before. The namespace controller retries at least every 60 s. Hence 300 s + margin.
"""


def kubectl_binary() -> str:
    assets = find_assets()
    if assets is None:
        pytest.skip("control-plane binaries not built (kuar controlplane install)")
    return str(assets.path("kubectl"))


def render(tree: str) -> list[dict[str, Any]]:
    out = subprocess.run([kubectl_binary(), "kustomize", str(DEPLOY / tree)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def run_params(container: dict[str, Any]) -> dict[str, Any]:
    """Parse the container's arguments with the real ``kuar loadtest run`` (no side effects)."""
    assert container["command"] == ["kuar"]
    args = container["args"]
    assert args[:2] == ["loadtest", "run"]
    ctx = run_command.make_context("run", list(args[2:]))
    return dict(ctx.params)


def test_default_tree_holds_every_object_and_agrees_with_the_code() -> None:
    docs = render("default")
    assert sorted({d["kind"] for d in docs}) == sorted({
        "Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole",
        "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "Service",
        "PodDisruptionBudget", "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration"})
    assert one(docs, "Namespace")["metadata"]["name"] == rbac.NAMESPACE

    deployment = one(docs, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert spec["replicas"] == 2
    assert pod["serviceAccountName"] == rbac.NAME == one(docs, "ServiceAccount")["metadata"]["name"]
    assert container["image"] == "kuar.dev/operator:0.1.0"

    params = run_params(container)
    assert params["leader_elect"] and params["lease_namespace"] == rbac.NAMESPACE
    assert one(docs, "Role")["metadata"]["namespace"] == rbac.NAMESPACE  # the Lease's rights
    assert params["log_format"] == "json"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert params["health_bind"] == f"0.0.0.0:{ports['health']}"
    assert params["metrics_bind"] == f"0.0.0.0:{ports['metrics']}"
    assert params["webhook_bind"] == "0.0.0.0" and params["webhook_port"] == ports["webhook"]
    assert params["cert_dir"] is None  # the CSR signer by default
    assert params["drain_delay"] + 10 < pod["terminationGracePeriodSeconds"]

    # the Service the webhooks and the CRD's conversion call is the one the operator serves
    webhook_service = one(docs, "Service", "kuar-webhook")
    assert params["webhook_service"] == "kuar-system/kuar-webhook"
    [svc_port] = webhook_service["spec"]["ports"]
    assert svc_port["port"] == 443 and svc_port["targetPort"] == "webhook"
    pod_labels = spec["template"]["metadata"]["labels"]
    for svc in by_kind(docs, "Service"):
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        assert all(p["targetPort"] in ports for p in svc["spec"]["ports"])
    refs = [h["clientConfig"]["service"] for kind in ("ValidatingWebhookConfiguration",
                                                      "MutatingWebhookConfiguration")
            for c in by_kind(docs, kind) for h in c["webhooks"]]
    refs.append(one(docs, "CustomResourceDefinition", CRD)["spec"]["conversion"]["webhook"][
        "clientConfig"]["service"])
    assert {(r["namespace"], r["name"], r["port"]) for r in refs} == {
        ("kuar-system", "kuar-webhook", 443)}
    assert {h["failurePolicy"] for kind in ("ValidatingWebhookConfiguration",
                                            "MutatingWebhookConfiguration")
            for c in by_kind(docs, kind) for h in c["webhooks"]} == {"Ignore"}

    crd = one(docs, "CustomResourceDefinition", CRD)
    assert [(v["name"], v["storage"]) for v in crd["spec"]["versions"]] == [
        ("v2", True), ("v1", False)]  # v2 stored since docs/decisions/0014
    runs = one(docs, "CustomResourceDefinition", "loadtestruns.beta.kuar.com")
    assert "conversion" not in runs["spec"]  # one version: nothing to convert

    # probes, resources and a restrictive securityContext
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_cert_manager_overlay_renders_with_certificate_injection_and_cert_dir() -> None:
    docs = render("cert-manager")
    issuer = one(docs, "Issuer")
    certificate = one(docs, "Certificate")
    assert certificate["spec"]["issuerRef"]["name"] == issuer["metadata"]["name"]
    assert sorted(certificate["spec"]["dnsNames"]) == [
        "kuar-webhook.kuar-system.svc", "kuar-webhook.kuar-system.svc.cluster.local"]
    ref = f"{certificate['metadata']['namespace']}/{certificate['metadata']['name']}"
    for kind, name in (("ValidatingWebhookConfiguration", None),
                       ("MutatingWebhookConfiguration", None), ("CustomResourceDefinition", CRD)):
        assert one(docs, kind, name)["metadata"]["annotations"][
            "cert-manager.io/inject-ca-from"] == ref
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    params = run_params(container)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    volume = volumes[mounts[str(params["cert_dir"])]]
    assert volume["secret"]["secretName"] == certificate["spec"]["secretName"]
    assert params["inject_ca"] is None  # with --cert-dir: cert-manager's cainjector injects


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    # the controller-manager finishes the deletion of kuar-system (namespace controller)
    with ControlPlane(ControlPlaneSettings(with_controller_manager=True)) as cp:
        yield cp


def test_default_tree_applies_on_a_real_api_server_and_deletes_cleanly(
    plane: ControlPlane, tmp_path: Path
) -> None:
    kubectl = plane.kubectl()

    def k(*args: str, check: bool = True,
          input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*kubectl, *args], capture_output=True, text=True, timeout=180,
                              input=input)
        if check:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc

    tree = str(DEPLOY / "default")
    objects = [(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace"))
               for d in render("default")]

    def exists(kind: str, name: str, namespace: str | None) -> bool:
        ns = ["-n", namespace] if namespace else []
        proc = k("get", kind, name, *ns, "-o", "name", "--ignore-not-found", check=True)
        return bool(proc.stdout.strip())

    # On an empty cluster a server dry run can check only what does not live in kuar-system:
    # the namespace is not created by a dry run. Every failure must be that one.
    fresh = k("apply", "-k", tree, "--dry-run=server", check=False)
    in_namespace = [o for o in objects if o[2] == rbac.NAMESPACE]
    errors = [line for line in fresh.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == len(in_namespace), fresh.stderr
    assert all('namespaces "kuar-system" not found' in line for line in errors), fresh.stderr
    assert fresh.stdout.count("(server dry run)") == len(objects) - len(in_namespace)
    assert not any(exists(*o) for o in objects)  # a dry run creates nothing

    # With the namespace in place, the whole tree passes a server dry run.
    namespace = tmp_path / "namespace.yaml"
    namespace.write_text(yaml.safe_dump(one(render("default"), "Namespace")))
    k("apply", "-f", str(namespace))
    dry = k("apply", "-k", tree, "--dry-run=server")
    assert "PodSecurity" not in dry.stderr, dry.stderr  # nothing violates "restricted"
    assert dry.stdout.count("(server dry run)") == len(objects), dry.stdout
    assert not any(exists(*o) for o in objects if o[0] != "Namespace")

    started = time.monotonic()
    applied = k("apply", "-k", tree)
    apply_seconds = time.monotonic() - started
    assert "Warning" not in applied.stderr, applied.stderr
    assert all(exists(*o) for o in objects), [o for o in objects if not exists(*o)]

    # No operator runs yet: writes of the storage version (v2) are admitted (the webhooks fail
    # open, the schema defaults) and readable (v2 is kubectl's default for `get lt`); v1, the
    # seed's version, needs the conversion webhook, i.e. a running operator
    # (docs/decisions/0010-install-tree.md, 0014-loadtest-storage-v2.md).
    k("create", "namespace", "before-operator")
    k("apply", "-n", "before-operator", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "beta.kuar.com/v2", "kind": "LoadTest",
        "metadata": {"name": "my-loadtest"},
        "spec": {"target": {"service": "my-service"}, "load": {"requestsPerSecond": 1000}}}))
    got = k("get", "lt", "my-loadtest", "-n", "before-operator", "-o", "yaml")
    assert yaml.safe_load(got.stdout)["spec"]["load"]["duration"] == "60s"  # the CRD's default
    v1 = k("get", "loadtests.v1.beta.kuar.com", "-n", "before-operator", check=False)
    assert v1.returncode != 0 and "conversion webhook" in v1.stderr, v1.stderr
    seed = k("apply", "-n", "before-operator", "-f", str(SEED), check=False)
    assert seed.returncode != 0 and "conversion webhook" in seed.stderr, seed.stderr

    started = time.monotonic()
    deleted = k("delete", "-k", tree, "--wait=false")
    assert deleted.stdout.count("deleted") == len(objects), deleted.stdout
    waited = wait_deleted(plane, objects, started)
    delete_seconds = time.monotonic() - started
    assert not any(exists(*o) for o in objects), [o for o in objects if exists(*o)]
    # the CRD's deletion took its LoadTests along
    assert k("get", "--raw", "/apis/beta.kuar.com/v1", check=False).returncode != 0
    holdout = max(waited, key=lambda o: waited[o])
    print(f"\n{len(objects)} objects: apply -k {apply_seconds:.1f} s, "
          f"delete -k until all gone {delete_seconds:.1f} s "
          f"(longest wait: {holdout[0]} {holdout[1]} {waited[holdout]:.1f} s)")


def wait_deleted(plane: ControlPlane, objects: list[Obj], started: float) -> dict[Obj, float]:
    """Wait for each object in turn to be gone, until :data:`DELETE_DEADLINE` s after ``started``.

    They are deleted together, so one deadline holds for each. Returns the seconds spent
    waiting on each (the one that held the deletion up has the largest). On a timeout the
    assertion names what remains with its deletion state and status conditions, and ends with
    the kube-apiserver log lines about it.
    """
    kubectl = plane.kubectl()
    deadline = started + DELETE_DEADLINE
    waited: dict[Obj, float] = {}
    for kind, name, namespace in objects:
        begun = time.monotonic()
        ns = ["-n", namespace] if namespace else []
        remaining = max(1, int(deadline - time.monotonic()))
        proc = subprocess.run([*kubectl, "wait", "--for=delete", f"{kind}/{name}", *ns,
                               f"--timeout={remaining}s"],
                              capture_output=True, text=True, timeout=remaining + 30)
        if proc.returncode != 0:
            raise AssertionError(deletion_report(plane, objects, proc.stderr.strip()))
        waited[(kind, name, namespace)] = time.monotonic() - begun
    return waited


def deletion_report(plane: ControlPlane, objects: list[Obj], error: str) -> str:
    """What is left of ``objects``: deletion state and conditions, then the API server's log."""
    kubectl = plane.kubectl()
    lines = [f"not deleted within {DELETE_DEADLINE:.0f} s: {error}"]
    names = []
    for kind, name, namespace in objects:
        ns = ["-n", namespace] if namespace else []
        proc = subprocess.run([*kubectl, "get", kind, name, *ns, "-o", "yaml",
                               "--ignore-not-found"], capture_output=True, text=True, timeout=60)
        if not proc.stdout.strip():
            continue
        names.append(name)
        obj = yaml.safe_load(proc.stdout)
        meta = obj["metadata"]
        lines.append(f"- {kind} {name}: deletionTimestamp={meta.get('deletionTimestamp')} "
                     f"finalizers={meta.get('finalizers')} spec.finalizers="
                     f"{obj.get('spec', {}).get('finalizers')}")
        lines += [f"    {c.get('type')}={c.get('status')} {c.get('reason')}: {c.get('message')}"
                  for c in obj.get("status", {}).get("conditions", [])]
    log = plane.processes["kube-apiserver"].log_path.read_text(errors="replace").splitlines()
    about = [line for line in log if any(n in line for n in names)]
    lines.append(f"kube-apiserver log, last lines naming {names}:")
    lines += about[-40:]
    lines.append("kube-apiserver log, last lines:")
    lines += log[-20:]
    return "\n".join(lines)

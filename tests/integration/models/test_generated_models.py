"""The generated built-in models against the real API server: every kind round-trips,
a Deployment made through ``Api[Deployment]`` becomes Available, and a CRD field typed with a
generated pod template is accepted with its full schema.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from kuar.client import Api, ApiError, Client, load_config
from kuar.models import model_for
from kuar.models.apps.v1 import Deployment, DeploymentSpec
from kuar.models.core.v1 import (
    ConfigMap,
    Container,
    ContainerPort,
    PodSpec,
    PodTemplateSpec,
    ResourceRequirements,
    Service,
    ServicePort,
    ServiceSpec,
)
from kuar.models.meta.v1 import LabelSelector
from kuar.resources import CustomResource, KubeModel, ObjectMeta, Resource, crd_for, dump_crd
from kuar.testing import ControlPlane, ControlPlaneSettings, eventually_async
from kuar.testing.localnode import CommandRunner, LocalNode, LocalNodeSettings

pytestmark = pytest.mark.controlplane

SLEEPER = "kuar.dev/test-sleeper"


def sleeper(container: Any) -> list[str]:
    """A container that runs until it is stopped."""
    return [sys.executable, "-c", "import time\nwhile True: time.sleep(60)"]


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with ControlPlane(ControlPlaneSettings(with_controller_manager=True,
                                           with_scheduler=True)) as plane:
        yield plane


@pytest.fixture(scope="module")
async def client(plane: ControlPlane) -> AsyncIterator[Client]:
    client = Client(await load_config(plane.kubeconfig))
    yield client
    await client.close()


def _model_for(group: str, version: str, kind: str) -> type[Resource]:
    cls = model_for(f"{group}/{version}" if group else version, kind)
    assert cls is not None, f"no generated model for {group}/{version} {kind}"
    info = cls.resource_info()
    assert (info.group, info.version, info.kind) == (group, version, kind)
    return cls


async def _listable(client: Client) -> list[tuple[str, str, str, str, bool]]:
    crds = await client.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    custom = {crd["spec"]["group"] for crd in crds["items"]}
    groups = [("", "v1")]
    for group in (await client.request("GET", "/apis"))["groups"]:
        if group["name"] not in custom:
            groups.extend((group["name"], v["version"]) for v in group["versions"])
    found = []
    for group, version in groups:
        path = f"/apis/{group}/{version}" if group else "/api/v1"
        for item in (await client.request("GET", path))["resources"]:
            if "/" not in item["name"] and "list" in item["verbs"]:
                found.append((group, version, item["kind"], item["name"], item["namespaced"]))
    return found


async def _seed_objects(client: Client, plane: ControlPlane) -> None:
    """Make kinds that a bare cluster has none of, so more kinds have objects to decode."""
    manifest = """
apiVersion: v1
kind: Namespace
metadata: {name: models-seed}
---
apiVersion: v1
kind: Pod
metadata: {name: unscheduled, namespace: models-seed}
spec:
  nodeSelector: {no-such-node: "true"}
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: c
    image: none
    env: [{name: A, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
    securityContext: {capabilities: {drop: [ALL]}, readOnlyRootFilesystem: true}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: dep, namespace: models-seed}
spec:
  replicas: 0
  selector: {matchLabels: {app: dep}}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 25%}}
  template:
    metadata: {labels: {app: dep}}
    spec: {containers: [{name: c, image: none}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: job, namespace: models-seed}
spec:
  suspend: true
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: none}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: es, namespace: models-seed}
addressType: IPv4
endpoints: [{addresses: [10.0.0.9], conditions: {ready: true}}]
ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.models.kuar.dev}
spec:
  group: models.kuar.dev
  names: {kind: Gadget, plural: gadgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
            properties: {size: {type: integer, minimum: 1}}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: q, namespace: models-seed}
spec: {hard: {pods: "10", requests.cpu: 1500m, limits.memory: 2Gi}}
---
apiVersion: v1
kind: LimitRange
metadata: {name: lr, namespace: models-seed}
spec: {limits: [{type: Container, default: {cpu: 250m}, defaultRequest: {cpu: 0.1}}]}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-models}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: /tmp/never-mounted}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: pvc, namespace: models-seed}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Secret
metadata: {name: s, namespace: models-seed}
stringData: {token: abc}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: rc, namespace: models-seed}
spec:
  replicas: 0
  selector: {app: rc}
  template:
    metadata: {labels: {app: rc}}
    spec: {containers: [{name: c, image: none, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: PodTemplate
metadata: {name: pt, namespace: models-seed}
template:
  spec:
    containers: [{name: c, image: none, resources: {limits: {cpu: "2", memory: 1Gi}}}]
    tolerations: [{key: k, operator: Exists, effect: NoSchedule}]
    affinity:
      nodeAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms: [{matchExpressions: [{key: a, operator: In, values: [b]}]}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: sts, namespace: models-seed}
spec:
  replicas: 0
  serviceName: sts
  selector: {matchLabels: {app: sts}}
  template:
    metadata: {labels: {app: sts}}
    spec: {containers: [{name: c, image: none}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds, namespace: models-seed}
spec:
  selector: {matchLabels: {app: ds}}
  template:
    metadata: {labels: {app: ds}}
    spec:
      nodeSelector: {no-such-node: "true"}
      containers: [{name: c, image: none, livenessProbe: {httpGet: {path: /, port: http}}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj, namespace: models-seed}
spec:
  schedule: "0 0 1 1 *"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec: {restartPolicy: Never, containers: [{name: c, image: none}]}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: ic}
spec: {controller: example.com/ingress}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: ing, namespace: models-seed}
spec:
  ingressClassName: ic
  rules:
  - host: a.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: s, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: models-seed}
spec:
  podSelector: {}
  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}],
             ports: [{port: 80, protocol: TCP}]}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: hpa, namespace: models-seed}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: StatefulSet, name: sts}
  minReplicas: 1
  maxReplicas: 3
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization,
                                                             averageUtilization: 50}}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: pdb, namespace: models-seed}
spec: {maxUnavailable: 25%, selector: {matchLabels: {app: sts}}}
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: pc-models}
value: 1000
description: test
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: sc-models}
provisioner: example.com/none
parameters: {a: b}
---
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: rtc}
handler: runc
overhead: {podFixed: {cpu: 10m}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: models-seed}
rules: [{apiGroups: [""], resources: [pods], verbs: [get], resourceNames: [a]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: models-seed}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
subjects: [{kind: User, name: bob, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: vap-models}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE],
                     resources: [deployments]}]
  validations: [{expression: "object.spec.replicas <= 5", message: too many}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: mwc-models}
webhooks:
- name: m.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Ignore
  clientConfig: {url: "https://127.0.0.1:1/m"}
  rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [nothings]}]
"""
    path = plane.kubeconfig.parent / "models-seed.yaml"
    path.write_text(manifest)
    proc = await asyncio.create_subprocess_exec(
        *plane.kubectl(), "apply", "--server-side", "-f", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bob")])).sign(key, hashes.SHA256())
    await client.request("POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests", body={
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "csr-models"},
        "spec": {"signerName": "example.com/none", "usages": ["digital signature"],
                 "request": base64.b64encode(csr.public_bytes(Encoding.PEM)).decode()}})


async def test_every_listable_builtin_kind_round_trips(
    client: Client, plane: ControlPlane
) -> None:
    await _seed_objects(client, plane)
    kinds = await _listable(client)
    assert len(kinds) > 40
    decoded: dict[str, int] = {}
    for group, version, kind, plural, _namespaced in kinds:
        cls = _model_for(group, version, kind)
        assert cls.resource_info().plural == plural
        path = (f"/apis/{group}/{version}/{plural}" if group else f"/api/v1/{plural}")
        try:
            listing = await client.request("GET", path)
        except ApiError as exc:  # some kinds are create-only reviews
            assert exc.status in (404, 405), (kind, exc)
            continue
        for item in listing.get("items", []):
            # list items lack apiVersion and kind; kubectl fills them the same way
            item = {"apiVersion": cls.resource_info().api_version, "kind": kind, **item}
            obj = cls.model_validate(item)
            assert obj.model_dump(mode="json", by_alias=True, exclude_unset=True) == item, kind
            assert cls.decode(item).encode() == _without_nulls(item), kind
            decoded[kind] = decoded.get(kind, 0) + 1
    for expected in ("Namespace", "Secret", "ConfigMap", "StatefulSet", "CronJob", "Ingress",
                     "HorizontalPodAutoscaler", "PodTemplate", "PersistentVolume", "Role",
                     "ValidatingAdmissionPolicy", "CertificateSigningRequest", "Lease",
                     "PriorityClass", "ClusterRole", "Event", "FlowSchema",
                     "CustomResourceDefinition", "APIService", "EndpointSlice",
                     "Pod", "Deployment", "ReplicaSet", "Job", "DaemonSet"):
        assert decoded.get(expected), f"no {expected} was decoded: {sorted(decoded)}"
    print(f"\n{len(kinds)} listable kinds, {len(decoded)} with objects, "
          f"{sum(decoded.values())} objects round-tripped")


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


async def test_deployment_made_through_api_becomes_available(
    client: Client, plane: ControlPlane, tmp_path: Any
) -> None:
    node = LocalNode(client, LocalNodeSettings(runners={SLEEPER: CommandRunner(command=sleeper)},
                                               root_dir=tmp_path))
    await node.start()
    try:
        await Api(client, ConfigMap, namespace="default").create(
            ConfigMap(metadata=ObjectMeta(name="models-cm"), data={"a": "b"}))
        labels = {"app": "sleeper"}
        deployment = Deployment(
            metadata=ObjectMeta(name="sleeper", namespace="default"),
            spec=DeploymentSpec(
                replicas=2,
                selector=LabelSelector(match_labels=labels),
                template=PodTemplateSpec(
                    metadata=ObjectMeta(labels=labels),
                    spec=PodSpec(containers=[Container(
                        name="main", image=f"{SLEEPER}:1",
                        ports=[ContainerPort(container_port=8080, name="http")],
                        resources=ResourceRequirements(requests={"cpu": "10m"},
                                                       limits={"memory": 64 * 2**20}),
                    )]),
                ),
            ),
        )
        api = Api(client, Deployment, namespace="default")
        created = await api.create(deployment)
        assert created.spec.template.spec.containers[0].resources.limits == {
            "memory": "67108864"}
        await Api(client, Service, namespace="default").create(Service(
            metadata=ObjectMeta(name="sleeper"),
            spec=ServiceSpec(selector=labels, ports=[ServicePort(port=80, target_port="http")]),
        ))

        async def available() -> Deployment:
            current = await api.get("sleeper")
            conditions = {c.type: c.status for c in current.status.conditions or []}
            assert conditions.get("Available") == "True", current.status
            assert current.status.ready_replicas == 2
            return current

        done = await eventually_async(available, timeout=90)
        assert done.status.observed_generation == 1
    finally:
        await node.stop()


class RunnerTemplate(KubeModel):
    """Pods a load test runs."""

    template: PodTemplateSpec


class Runner(CustomResource, group="models.kuar.dev", version="v1", kind="Runner"):
    """A CRD whose spec is a generated built-in model."""

    spec: RunnerTemplate


async def test_crd_field_typed_with_a_generated_pod_template_gets_the_full_schema(
    client: Client, plane: ControlPlane
) -> None:
    crd = crd_for(Runner)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    pod_spec = schema["properties"]["spec"]["properties"]["template"]["properties"]["spec"]
    containers = pod_spec["properties"]["containers"]
    assert containers["x-kubernetes-list-type"] == "map"
    assert "livenessProbe" in containers["items"]["properties"]
    assert "tolerations" in pod_spec["properties"]
    size = len(dump_crd(crd).encode())
    print(f"\nRunner CRD with a full PodTemplateSpec: {size:,} bytes of YAML")
    path = plane.kubeconfig.parent / "runner-crd.yaml"
    path.write_text(yaml.safe_dump(crd))
    proc = await asyncio.create_subprocess_exec(
        *plane.kubectl(), "apply", "--server-side", "-f", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()

    async def established() -> None:
        got = await client.request(
            "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                   "runners.models.kuar.dev")
        assert any(c["type"] == "Established" and c["status"] == "True"
                   for c in got["status"]["conditions"])

    await eventually_async(established, timeout=30)
    runner = Runner(metadata=ObjectMeta(name="r", namespace="default"), spec=RunnerTemplate(
        template=PodTemplateSpec(spec=PodSpec(containers=[Container(
            name="main", image="x", resources=ResourceRequirements(limits={"cpu": 1}))]))))
    api = Api(client, Runner, namespace="default")
    created = await api.create(runner)
    container = created.spec.template.spec.containers[0]
    assert container.resources.limits == {"cpu": "1"}
    bad = runner.model_copy(deep=True)
    bad.metadata.name = "bad"
    raw = bad.encode()
    raw["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "lots"
    with pytest.raises(ApiError, match="limits"):
        await client.request("POST", Runner.resource_info().path("default"), body=raw)

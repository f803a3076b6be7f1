"""Coordinated start: the decision from the run's pods, and the Job that waits for it (pure)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kuar.models.batch.v1 import Job
from kuar.models.core.v1 import Pod
from kuar_loadgen.spec import LoadSpec, spec_from_env
from kuar_loadtest.api.v2 import LoadTest
from kuar_loadtest.desired import (
    RUN_MOUNT,
    ResolvedTarget,
    desired_job,
    run_configmap,
    run_spec,
    start_timeout,
)
from kuar_loadtest.rbac import CONTROLLER_RULES, RUNNER_RULES
from kuar_loadtest.settings import OperatorSettings
from kuar_loadtest.start import INDEX_ANNOTATION, mount_messages, names_source, start_decision

T0 = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def _job(workers: int) -> Job:
    return Job.decode({"metadata": {"name": "r-run-1", "namespace": "n",
                                    "creationTimestamp": T0.isoformat()},
                       "spec": {"parallelism": workers, "completions": workers,
                                "template": {"spec": {"containers": []}}}})


def _pod(index: int, phase: str = "Running", **status: Any) -> Pod:
    return Pod.decode({"metadata": {"name": f"r-run-1-{index}-x", "namespace": "n",
                                    "annotations": {INDEX_ANNOTATION: str(index)}},
                       "status": {"phase": phase, **status}})


def test_the_run_starts_a_lead_after_every_worker_pod_is_running() -> None:
    now = T0 + dt.timedelta(seconds=7, microseconds=123_456)
    decision = start_decision(_job(3), [_pod(0), _pod(1), _pod(2)], now, lead=2.0,
                              timeout=300)
    assert decision.action == "start"
    assert decision.start_at == T0 + dt.timedelta(seconds=9, milliseconds=123)  # ms precision
    assert "all 3 worker pod(s) are Running" in decision.message


def test_it_waits_while_a_pod_is_not_running_and_counts_each_index_once() -> None:
    now = T0 + dt.timedelta(seconds=10)
    # a replacement pod of index 1 does not stand in for the missing index 2
    pods = [_pod(0), _pod(1), _pod(1), _pod(2, "Pending")]
    decision = start_decision(_job(3), pods, now, lead=2.0, timeout=300)
    assert decision.action == "wait" and decision.start_at is None
    assert decision.message.startswith("2 of 3 worker pod(s) Running")
    assert decision.retry_after == 290


def test_past_the_timeout_the_run_fails_naming_the_waiting_pods_and_why() -> None:
    now = T0 + dt.timedelta(seconds=301)
    pulling = _pod(1, "Pending", containerStatuses=[{
        "name": "loadgen", "image": "x", "imageID": "", "ready": False, "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff",
                              "message": "Back-off pulling image \"x\""}}}])
    unschedulable = _pod(2, "Pending", conditions=[{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 Insufficient cpu."}])
    decision = start_decision(_job(4), [_pod(0), pulling, unschedulable], now, lead=2.0,
                              timeout=300)
    assert decision.action == "fail"
    message = decision.message
    assert message.startswith("1 of 4 worker pod(s) Running after 300s")
    assert 'pod r-run-1-1-x: ImagePullBackOff (Back-off pulling image "x")' in message
    assert "pod r-run-1-2-x: Unschedulable (0/1 nodes are available: 1 Insufficient cpu.)" \
        in message
    assert "1 pod(s) not created" in message


def test_a_long_list_of_waiting_pods_is_cut() -> None:
    now = T0 + dt.timedelta(seconds=400)
    pods = [_pod(i, "Pending") for i in range(12)]
    decision = start_decision(_job(12), pods, now, lead=2.0, timeout=300)
    assert decision.message.count("pod r-run-1-") == 5 and "and 7 more" in decision.message


def _lt(**runner: Any) -> LoadTest:
    return LoadTest.decode({
        "apiVersion": "beta.kuar.com/v2", "kind": "LoadTest",
        "metadata": {"name": "r", "namespace": "team-a", "uid": "u", "generation": 1},
        "spec": {"target": {"service": "web"}, "load": {"requestsPerSecond": 10,
                                                        "duration": "30s", "workers": 2},
                 **({"runner": runner} if runner else {})}})


def test_the_job_waits_for_its_run_with_a_declared_credential() -> None:
    settings = OperatorSettings()
    job = desired_job(_lt(), ResolvedTarget("http://web.team-a.svc:80", 80), settings,
                      start_at=123.0, name="r-run-1").encode()
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = container["args"]
    assert args[args.index("--start-from-run") + 1] == "team-a/r-run-1"
    assert args[args.index("--api-token-file") + 1] == f"{RUN_MOUNT}/token"
    assert args[args.index("--api-ca-file") + 1] == f"{RUN_MOUNT}/ca.crt"
    assert int(args[args.index("--start-timeout") + 1]) == start_timeout(settings) > 300
    target = ResolvedTarget("http://web.team-a.svc:80", 80)
    assert run_spec(_lt(), target, settings, start_at=123.0).start_at is None
    # no automounted token: one projected token and the cluster CA, read-only
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "kuar-loadgen"
    [volume] = pod["volumes"]
    sources = volume["projected"]["sources"]
    assert sources[0]["configMap"]["name"] == "r-run-1-spec"  # the worker spec
    assert sources[1]["serviceAccountToken"]["path"] == "token"
    assert sources[2]["configMap"] == {"name": "kube-root-ca.crt",
                                       "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert container["volumeMounts"] == [{"name": volume["name"], "mountPath": RUN_MOUNT,
                                          "readOnly": True}]
    # the Job's deadline allows for the wait
    assert job["spec"]["activeDeadlineSeconds"] >= 30 + settings.runner_start_timeout


def test_the_template_service_account_is_used_when_set() -> None:
    job = desired_job(_lt(serviceAccountName="team-runner"),
                      ResolvedTarget("http://web.team-a.svc:80", 80), OperatorSettings(),
                      name="r-run-1").encode()
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "team-runner"


def test_without_coordinated_start_the_job_has_no_api_access() -> None:
    job = desired_job(_lt(), ResolvedTarget("http://web.team-a.svc:80", 80),
                      OperatorSettings(coordinated_start=False), start_at=123.0).encode()
    pod = job["spec"]["template"]["spec"]
    [volume] = pod["volumes"]  # the spec only: no token
    assert [list(s) for s in volume["projected"]["sources"]] == [["configMap"]]
    assert "serviceAccountName" not in pod
    assert "--start-from-run" not in pod["containers"][0]["args"]


def test_runners_may_only_read_loadtestruns_and_the_operator_holds_what_it_grants() -> None:
    [rule] = RUNNER_RULES
    assert (rule.group, rule.resources, set(rule.verbs)) == (
        "beta.kuar.com", ("loadtestruns",), {"get", "watch"})
    held = {v for r in CONTROLLER_RULES if r.group == "beta.kuar.com"
            and "loadtestruns" in r.resources and not r.resource_names for v in r.verbs}
    assert set(rule.verbs) <= held  # else the API server refuses the Role (escalation)


def test_each_worker_pod_takes_its_shard_from_its_completion_index() -> None:
    # the spec a pod gets names no shard: the Job's completion index is the shard
    lt, target, settings = _lt(), ResolvedTarget("http://web.team-a.svc:80", 80), OperatorSettings()
    job = desired_job(lt, target, settings, name="r-run-1")
    configmap = run_configmap(lt, run_spec(lt, target, settings), job)
    for index in (0, 1):
        data = spec_from_env({"KUAR_LOADGEN_SPEC": (configmap.data or {})["spec.json"],
                              "JOB_COMPLETION_INDEX": str(index)})
        assert LoadSpec.from_dict(data).shard_index == index


def test_the_nodes_words_tell_which_body_source_the_pods_wait_for() -> None:
    waiting = _pod(0, "Pending", containerStatuses=[{
        "name": "loadgen", "image": "x", "imageID": "", "ready": False, "restartCount": 0,
        "state": {"waiting": {"reason": "ContainerCreating", "message":
                              'MountVolume.SetUp failed for volume "kuar-run" : '
                              'secret "bodies" not found'}}}])
    [message] = mount_messages([waiting, _pod(1)])
    assert names_source(message, "Secret", "n", "bodies")
    assert not names_source(message, "Secret", "n", "body")
    assert not names_source(message, "ConfigMap", "n", "bodies")
    kubelet = "couldn't find key order in Secret n/bodies"
    assert names_source(kubelet, "Secret", "n", "bodies")

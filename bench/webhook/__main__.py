"""Webhook throughput and latency: kuar beside kopf and controller-runtime, and API-server cost.

Run: ``.venv/bin/python -m bench.webhook [--quick] [--runs N] [--seconds S] [--conns N]
[--creates N] [--processes N] [--scaling-conns 2,8,32] [--pin]``

1. Direct HTTPS load (HTTP/1.1 keep-alive, TLS 1.2+) of LoadTest-create AdmissionReviews on
   one process of each server, all doing the same validation (kuar_loadtest's rules):
   kuar (``kuar_server.py``, uvloop), kopf's webhook server (``kopf_operator.py``, a real
   ``kopf run`` against the local control plane) and a controller-runtime webhook
   (``go/main.go``). Reviews carry the v2 shape (``beta.kuar.com/v2``, the storage version:
   the API server converts a v1 write before calling admission webhooks), and before any
   load every server must allow the benchmark's review and deny two bad ones naming the same
   v2 fields (``spec.target.scheme``, ``spec.load.requestsPerSecond``,
   ``spec.target.paths[i]``, ``spec.target.service``), or the benchmark stops: the
   comparison holds only while the rules are the same. The three servers run side by side;
   the load generator is Go
   (``webhookbench load``) and loads one server at a time, ``--runs`` runs each, alternated
   A B C / C B A: closed loop with ``--conns`` connections (reviews/s, reviews per CPU-second
   of the server process, p50, p99), then open loop at ``--half-rate`` (1,500/s; latency from
   the intended send time). A failed review counts in the percentiles as the client timeout
   (10 s) and in the errors column. The table shows medians, reviews/s also min and max.
   With ``--processes N`` (N > 1, 2 by default) a fourth server joins the closed-loop runs: N
   kuar processes sharing one port through ``SO_REUSEPORT``
   (``WebhookServerSettings.reuse_port``), the way a user runs one process per core; its
   per-CPU figure sums every process.
2. Scaling (N > 1): one kuar process against the N on one port, closed loop, ``--runs``
   alternated runs each at every ``--scaling-conns`` connection count. Each server process
   reports the reviews it answered (``SIGUSR1``, see ``kuar_server.py``) and /proc its
   CPU-seconds, so the table shows raw reviews/s, server CPU-seconds per second, reviews per
   server CPU-second, the scaling efficiency (that figure with N over with 1: 1.0 means no
   shared cost such as a lock or a thundering herd) and the busiest process's share of the
   reviews and of the connections (sampled mid-run from /proc: ``SO_REUSEPORT`` spreads
   connections, not requests). With ``--pin`` (two or more cores) server i runs on core
   ``cores[(1 + i) % len(cores)]`` and the load client on ``cores[0]``; not by default,
   because on a shared machine a pinned process cannot move away from other work (decision
   0025 has the measurement). Raw reviews/s on a small machine is bounded by the cores the
   load client shares; reviews per server CPU-second is not.
3. API server create latency of a LoadTest (v2 objects; the CRD is kuar_loadtest's full v1 +
   v2 CRD, its conversion webhook on the kuar server) without webhooks, then with kuar's
   validating and mutating webhooks registered (by URL, caBundle): p50 each; the overhead is
   the difference.
   The same with the validating webhook only, and with controller-runtime's pair (the Go
   program also has the defaulter), to show what the API server's own webhook call costs.

All processes of the benchmark (the three servers, the load generator, the control plane)
run at the same niceness (``--nice``, -10 by default as root) so other work on a shared
machine disturbs them less; the comparison stays fair because every contender gets it.
The Go program is built once outside the repository (``~/.cache/kuar/bench-webhook/<hash>``)
from ``bench/webhook/go`` (its go.mod/go.sum pin controller-runtime). The last line is
``reviews_per_s=N p99_ms=P ratio_vs_kopf=K ratio_vs_controller_runtime=R
create_overhead_p50_ms=O per_core_ratio_vs_controller_runtime=C errors=E scaling_processes=N
scaling_efficiency=F scaling_rps_ratio=X scaling_busiest_share=B`` (kuar's median
closed-loop reviews/s, kuar's median p99 at the half rate with failures included, the
reviews/s ratios, the create overhead, the ratio of reviews per server CPU-second, the
failed reviews of every run of every contender, and the scaling figures at ``--conns``
connections: efficiency, raw reviews/s of N over 1, busiest share; ``nan`` with
``--processes 1``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import http.client
import json
import math
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from kuar.base import write_private
from kuar.client import Client, load_config, wait_crd_established
from kuar.testing import ControlPlane, ControlPlaneSettings, free_port
from kuar.webhook import (
    CertificateAuthority,
    UrlTarget,
    apply_configurations,
    delete_configurations,
    issue_serving_certificate,
    webhook_configurations,
)
from kuar_loadtest.local import loadtest_crd
from kuar_loadtest.webhooks import build

HERE = Path(__file__).parent
PATH = "/validate-beta-kuar-com-v2-loadtest"
SPEC: dict[str, Any] = {
    "target": {"service": "my-service", "scheme": "https",
               "paths": ["/index.html", "/login.html", "/shares/my-shares/"]},
    "load": {"requestsPerSecond": 1000, "duration": "60s"},
}
"""The spec of the benchmark's review (the Go load generator sends the same one)."""
BAD = (  # (spec, v2 fields every server must name in its denial)
    ({"target": {**SPEC["target"], "service": "My_Service", "paths": ["/ok", "/a b"]},
      "load": {**SPEC["load"], "requestsPerSecond": 60_000}},
     ("spec.load.requestsPerSecond", "spec.target.paths[1]", "spec.target.service")),
    ({**SPEC, "target": {**SPEC["target"], "scheme": "ftp"}}, ("spec.target.scheme",)),
)


def build_go() -> Path | None:
    """Build (or reuse) the Go benchmark program; ``None`` when Go is missing."""
    go = shutil.which("go")
    if go is None:
        print("go not found: the controller-runtime column and Go load generator are missing")
        return None
    sources = [*sorted((HERE / "go").glob("*.go")), HERE / "go/go.mod", HERE / "go/go.sum"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    cache = Path(os.environ.get("KUAR_CACHE_DIR", Path.home() / ".cache/kuar"))
    binary = cache / "bench-webhook" / digest / "webhookbench"
    if binary.exists():
        return binary
    with tempfile.TemporaryDirectory(prefix="kuar-webhookbench-") as tmp:
        for p in sources:
            shutil.copy(p, tmp)
        print(f"building the Go benchmark program once (minutes, cold) into {binary.parent}")
        env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
        subprocess.run([go, "build", "-trimpath", "-o", str(Path(tmp) / "webhookbench"), "."],
                       cwd=tmp, env=env, check=True)
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(Path(tmp) / "webhookbench"), binary)
    return binary


def write_certs(folder: Path) -> None:
    ca = CertificateAuthority.create("kuar-bench-ca")
    cert = issue_serving_certificate(ca, ["localhost"], ["127.0.0.1"])
    (folder / "tls.crt").write_bytes(cert.cert_pem)
    write_private(folder / "tls.key", cert.key_pem)  # 0600 from the start (issue 14)
    (folder / "ca.crt").write_bytes(ca.cert_pem)


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), \
                socket.create_connection(("127.0.0.1", port), timeout=1) as sock, \
                ctx.wrap_socket(sock):
            return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} not serving TLS after {timeout} s")


@contextlib.contextmanager
def process(argv: list[str], port: int, log: Path, env: dict[str, str] | None = None,
            ) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
        try:
            wait_port(port, proc)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def admission_review(uid: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A LoadTest v2 CREATE AdmissionReview for ``spec``, as the API server sends it."""
    gvk = {"group": "beta.kuar.com", "version": "v2", "kind": "LoadTest"}
    gvr = {"group": "beta.kuar.com", "version": "v2", "resource": "loadtests"}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
        "name": "my-loadtest", "namespace": "default", "operation": "CREATE",
        "userInfo": {"username": "kuar-admin", "groups": ["system:masters"]},
        "object": {"apiVersion": "beta.kuar.com/v2", "kind": "LoadTest",
                   "metadata": {"name": "my-loadtest", "namespace": "default"}, "spec": spec},
        "oldObject": None, "dryRun": False}}


def check_same_rules(name: str, url: str, ca: Path) -> None:
    """Stop unless the server at ``url`` allows ``SPEC`` and denies each ``BAD`` spec naming
    its v2 fields (the comparison is like for like only while every server applies them)."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca))
    cases = [(SPEC, True, ()), *((spec, False, fields) for spec, fields in BAD)]
    for i, (spec, allowed, fields) in enumerate(cases):
        conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
        try:
            conn.request("POST", PATH, json.dumps(admission_review(f"check-{i}", spec)),
                         {"Content-Type": "application/json"})
            reply = conn.getresponse()
            body = reply.read()
        finally:
            conn.close()
        answer = json.loads(body).get("response", {}) if reply.status == 200 else {}
        message = json.dumps(answer.get("status", {}))
        missing = [f for f in fields if f not in message]
        if answer.get("uid") != f"check-{i}" or answer.get("allowed") is not allowed or missing:
            sys.exit(f"{name} does not apply the benchmark's rules to {json.dumps(spec)}: "
                     f"expected allowed={allowed} naming {list(fields)}, got HTTP "
                     f"{reply.status}: {body[:500]!r}")


def run_load(binary: Path, url: str, ca: Path, *, conns: int, seconds: float,
             rate: float = 0, cpus: set[int] | None = None) -> dict[str, Any]:
    """One run of the Go load generator (pinned to ``cpus`` when given); its JSON result."""
    argv = [str(binary), "load", "-url", url, "-ca", str(ca), "-conns", str(conns),
            "-duration", f"{seconds}s", "-warmup", "1s"]
    if rate:
        argv += ["-rate", str(rate)]
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60,
                         preexec_fn=pin)  # affinity only, before exec
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def create_one(client: Client, ns: str, name: str) -> float:
    body = {"apiVersion": "beta.kuar.com/v2", "kind": "LoadTest", "metadata": {"name": name},
            "spec": {"target": {"service": "my-service", "scheme": "https",
                                "paths": ["/index.html", "/login.html"]},
                     "load": {"requestsPerSecond": 1000}}}
    started = time.perf_counter()
    await client.request("POST", f"/apis/beta.kuar.com/v2/namespaces/{ns}/loadtests",
                         body=body)
    return (time.perf_counter() - started) * 1000


async def create_overhead(plane: ControlPlane, url: str, ca_pem: bytes, n: int,
                          which: str = "both") -> tuple[float, float]:
    """p50 create latency (ms) in a namespace the webhooks skip and in one they serve.

    Creates alternate between the two namespaces (the webhooks' namespaceSelector picks one),
    so both samples see the same machine noise over time. ``which``: ``both`` (validating +
    mutating) or ``validate`` (the validating webhook only).
    """
    client = Client(await load_config(plane.kubeconfig))
    tag = f"{which}-{int(time.time() * 1000) % 100000}"
    plain_ns, hooked_ns = f"plain-{tag}", f"hooked-{tag}"
    try:
        for ns, labels in ((plain_ns, {}), (hooked_ns, {"kuar-bench": tag})):
            await client.request("POST", "/api/v1/namespaces", body={
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": labels}})
        validating, mutating, _ = build()
        selector = {"matchLabels": {"kuar-bench": tag}}
        hooks = [replace(h, namespace_selector=selector) for h in (
            [validating, mutating] if which == "both" else [validating])]
        configs = webhook_configurations(hooks, UrlTarget(base_url=url), ca_bundle=ca_pem)
        await apply_configurations(client, configs)
        await asyncio.sleep(1.0)  # let the API server's informer see the configurations
        plain: list[float] = []
        hooked: list[float] = []
        for i in range(n + 20):  # the first 20 pairs warm up connections and caches
            order = [(plain_ns, plain), (hooked_ns, hooked)]
            for ns, out in order if i % 2 else reversed(order):
                ms = await create_one(client, ns, f"lt-{i}")
                if i >= 20:
                    out.append(ms)
        await delete_configurations(client, configs)
        return statistics.median(plain), statistics.median(hooked)
    finally:
        await client.close()


async def install_crd(plane: ControlPlane, kuar_url: str, ca_pem: bytes) -> None:
    """kuar_loadtest's LoadTest CRD (v1 + v2, storage v2), converting on kuar's server."""
    client = Client(await load_config(plane.kubeconfig))
    try:
        crd = loadtest_crd(kuar_url, ca_pem)
        await client.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                             body=crd)
        await wait_crd_established(client, crd["metadata"]["name"])
    finally:
        await client.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin(pid: int, cpus: set[int]) -> None:
    """Run every thread of ``pid`` on ``cpus`` only."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(tid), cpus)


def served(procs: list[subprocess.Popen[bytes]], folder: Path) -> list[int]:
    """Requests each kuar server process has answered so far (asked with ``SIGUSR1``)."""
    files = [folder / f"count-{p.pid}" for p in procs]
    for proc, file in zip(procs, files, strict=True):
        file.unlink(missing_ok=True)
        os.kill(proc.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not all(f.exists() for f in files):
        if time.monotonic() > deadline:
            raise RuntimeError("a kuar server did not report its request count within 10 s")
        time.sleep(0.01)
    return [int(f.read_text()) for f in files]


def connections(pid: int, port: int) -> int:
    """Established TCP connections to local ``port`` that process ``pid`` holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    held = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()  # sl local remote state ... inode (10th)
        if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port \
                and fields[9] in inodes:
            held += 1
    return held


def scaling_run(binary: Path, url: str, ca: Path, procs: list[subprocess.Popen[bytes]],
                folder: Path, *, conns: int, seconds: float, cores: list[int] | None,
                ) -> dict[str, Any]:
    """One closed-loop run on ``procs`` (one port): reviews/s and, per process, the reviews it
    served and the CPU-seconds it used. With ``cores`` (two or more), server i runs on core
    ``cores[(1 + i) % len(cores)]`` and the load client on ``cores[0]``: one server has a
    core to itself, and more servers than spare cores share the client's."""
    client: set[int] | None = None
    if cores:
        client = {cores[0]}
        for i, proc in enumerate(procs):
            pin(proc.pid, {cores[(1 + i) % len(cores)]})
    port = int(url.rsplit(":", 1)[1])
    held: list[int] = []
    sample = threading.Timer(1 + seconds / 2, lambda: held.extend(  # mid-run, after warm-up
        connections(p.pid, port) for p in procs))
    counts, cpu = served(procs, folder), [cpu_seconds(p.pid) for p in procs]
    started = time.monotonic()
    sample.start()
    try:
        result = run_load(binary, url + PATH, ca, conns=conns, seconds=seconds, cpus=client)
    finally:
        sample.cancel()
    wall = time.monotonic() - started
    counts = [after - before for after, before in zip(served(procs, folder), counts,
                                                       strict=True)]
    cpu = [cpu_seconds(p.pid) - before for p, before in zip(procs, cpu, strict=True)]
    total = sum(counts)
    return {"rps": result["rps"], "errors": result["errors"], "served": counts, "cpu": cpu,
            "per_cpu": total / sum(cpu) if sum(cpu) > 0 else math.nan,
            "cpu_per_s": sum(cpu) / wall,
            "busiest": max(counts) / total if total else math.nan,
            "held": held, "busiest_conns": max(held) / sum(held) if sum(held) else math.nan}


def summary(runs: list[dict[str, Any]],
            medians: tuple[str, ...] = ("per_cpu", "p50_ms", "p99_ms")) -> dict[str, Any]:
    """Medians of the runs for ``medians`` (reviews/s also min and max); errors summed; the
    largest ``max_ms`` and the connection splits (``held``) of the runs when they have them."""
    rps = [r["rps"] for r in runs]
    out: dict[str, Any] = {"rps": statistics.median(rps), "rps_min": min(rps),
                           "rps_max": max(rps), "errors": sum(r["errors"] for r in runs),
                           "runs": len(runs)}
    out.update({key: statistics.median(r[key] for r in runs) for key in medians})
    if "max_ms" in runs[0]:
        out["max_ms"] = max(r["max_ms"] for r in runs)
    if "held" in runs[0]:
        out["held"] = " ".join("/".join(map(str, r["held"])) for r in runs)
    return out


SCALING = ("per_cpu", "cpu_per_s", "busiest", "busiest_conns")
"""The medians of a scaling variant (see :func:`scaling_run`)."""


def row(name: str, r: dict[str, Any] | None) -> str:
    if r is None:
        return f"{name:<32} {'-':>22} {'-':>10} {'-':>8} {'-':>8} {'-':>8} {'-':>7}"
    spread = f"{r['rps']:.0f} [{r['rps_min']:.0f}, {r['rps_max']:.0f}]"
    return (f"{name:<32} {spread:>22} {r['per_cpu']:>10.0f} {r['p50_ms']:>8.2f} "
            f"{r['p99_ms']:>8.2f} {r['max_ms']:>8.1f} {r['errors']:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about a minute)")
    parser.add_argument("--runs", type=int, default=None,
                        help="alternated runs per server and load (default 3, 2 with --quick)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per load run")
    parser.add_argument("--conns", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--creates", type=int, default=None, help="API server creates per side")
    parser.add_argument("--nice", type=int, default=-10 if os.geteuid() == 0 else 0,
                        help="niceness for the benchmark and everything it starts (servers, "
                             "load generator, control plane); the machine is shared, so by "
                             "default (as root) all contenders get the same higher priority")
    parser.add_argument("--processes", type=int, default=2,
                        help="also run N kuar processes on one port (SO_REUSEPORT) and "
                             "measure the scaling against one; 1 skips it (default 2)")
    parser.add_argument("--scaling-conns", default=None,
                        help="connection counts of the scaling runs, comma-separated "
                             "(SO_REUSEPORT spreads connections, not requests; default "
                             "2,8,32, with --quick 8)")
    parser.add_argument("--pin", action="store_true",
                        help="pin the scaling runs' servers and load client to cores (on a "
                             "shared machine this starves the pinned processes: see decision "
                             "0025)")
    parser.add_argument("--half-rate", type=float, default=1500.0,
                        help="open-loop rate for the p99 figure (half the 3,000/s target)")
    args = parser.parse_args()
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # children inherit it
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    runs = args.runs or (2 if args.quick else 3)
    creates = args.creates or (100 if args.quick else 400)
    started = time.monotonic()
    binary = build_go()
    if binary is None:
        sys.exit("the Go load generator is needed for the direct load; install Go >= 1.26")
    closed: dict[str, list[dict[str, Any]]] = {}
    opened: dict[str, list[dict[str, Any]]] = {}
    scaling: dict[tuple[int, int], list[dict[str, Any]]] = {}  # (conns, processes): runs
    scaling_conns = [int(c) for c in (args.scaling_conns
                                      or ("8" if args.quick else "2,8,32")).split(",")]
    if args.conns not in scaling_conns:  # the last line's scaling keys are at --conns
        scaling_conns.append(args.conns)
    cores = sorted(os.sched_getaffinity(0))
    pinned = cores if len(cores) >= 2 and args.pin else None
    scaling_load: tuple[float, float] = (math.nan, math.nan)
    overheads: dict[str, tuple[float, float]] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="kuar-bench-webhook-") as tmp_name, \
            contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        write_certs(tmp)
        ca = tmp / "ca.crt"
        kuar_port, kopf_port, cr_port = free_port(), free_port(), free_port()
        plane = ControlPlane(ControlPlaneSettings())
        plane.start()
        stack.callback(plane.stop)
        servers: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
        kuar_cmd = [sys.executable, "-m", "bench.webhook.kuar_server", str(kuar_port), str(tmp)]
        servers["kuar"] = (f"https://127.0.0.1:{kuar_port}",
                           stack.enter_context(process(kuar_cmd, kuar_port, tmp / "kuar.log")))
        # before kopf, which discovers the resource; the kuar server serves /convert
        asyncio.run(install_crd(plane, servers["kuar"][0], ca.read_bytes()))
        kopf = shutil.which("kopf", path=str(Path(sys.executable).parent)) or shutil.which("kopf")
        if kopf is None:
            print("kopf not installed (pip install -e '.[bench]'): kopf column missing")
        else:
            env = {"KUBECONFIG": str(plane.kubeconfig), "KUAR_BENCH_PORT": str(kopf_port),
                   "KUAR_BENCH_CERTS": str(tmp)}
            kopf_cmd = [kopf, "run", "--standalone", "--quiet", "-A",
                        str(HERE / "kopf_operator.py")]
            servers["kopf"] = (f"https://127.0.0.1:{kopf_port}", stack.enter_context(
                process(kopf_cmd, kopf_port, tmp / "kopf.log", env)))
        cr_cmd = [str(binary), "serve", "-port", str(cr_port), "-cert-dir", str(tmp)]
        servers["controller-runtime (Go)"] = (f"https://127.0.0.1:{cr_port}",
                                              stack.enter_context(
                                                  process(cr_cmd, cr_port, tmp / "cr.log")))
        names = list(servers)
        group: dict[str, list[subprocess.Popen[bytes]]] = {
            name: [proc] for name, (_, proc) in servers.items()}
        many = f"kuar x {args.processes} (SO_REUSEPORT)"
        if args.processes > 1:
            port = free_port()
            argv = [*kuar_cmd[:3], str(port), str(tmp), "reuse-port"]
            group[many] = [stack.enter_context(process(argv, port, tmp / f"kuar-{i}.log"))
                           for i in range(args.processes)]
            servers[many] = (f"https://127.0.0.1:{port}", group[many][0])
        for name, (url, _) in servers.items():
            check_same_rules(name, url, ca)
        print(f"rules check: {', '.join(servers)} allow the benchmark's v2 review and deny "
              f"bad ones naming {', '.join(f for _, fields in BAD for f in fields)}")
        for rate, into in ((0.0, closed), (args.half_rate, opened)):
            for r in range(runs):
                contenders = names + ([many] if rate == 0.0 and many in servers else [])
                for name in contenders if r % 2 == 0 else contenders[::-1]:
                    url = servers[name][0]
                    cpu = sum(cpu_seconds(p.pid) for p in group[name])
                    result = run_load(binary, url + PATH, ca, conns=args.conns,
                                      seconds=seconds, rate=rate)
                    # the warm-up second included
                    used = sum(cpu_seconds(p.pid) for p in group[name]) - cpu
                    result["per_cpu"] = result["count"] / used if used > 0 else math.nan
                    into.setdefault(name, []).append(result)
        if many in servers:
            # one process against N on one port, alternated, at each connection count
            variants = {1: (servers["kuar"][0], group["kuar"]),
                        args.processes: (servers[many][0], group[many])}
            scaling_load = (os.getloadavg()[0], math.nan)
            for conns in scaling_conns:
                for r in range(runs):
                    for n in list(variants) if r % 2 == 0 else list(variants)[::-1]:
                        url, procs = variants[n]
                        scaling.setdefault((conns, n), []).append(scaling_run(
                            binary, url, ca, procs, tmp, conns=conns, seconds=seconds,
                            cores=pinned))
            scaling_load = (scaling_load[0], os.getloadavg()[0])
            for procs in group.values():  # unpinned again for what follows
                for proc in procs:
                    pin(proc.pid, set(cores))
        kuar_url = servers["kuar"][0]
        overheads["kuar validate+mutate"] = asyncio.run(create_overhead(
            plane, kuar_url, ca.read_bytes(), creates))
        overheads["kuar validate"] = asyncio.run(create_overhead(
            plane, kuar_url, ca.read_bytes(), creates, "validate"))
        for which in ("both", "validate"):
            label = "validate+mutate" if which == "both" else "validate"
            overheads[f"controller-runtime {label}"] = asyncio.run(create_overhead(
                plane, servers["controller-runtime (Go)"][0], ca.read_bytes(), creates, which))

    results = {name: summary(closed[name]) if name in closed else None
               for name in ("kuar", "kopf", "controller-runtime (Go)", *closed)}
    half = {name: summary(runs_) for name, runs_ in opened.items()}
    print(f"\nDirect HTTPS load, {args.conns} keep-alive connections, {runs} alternated runs "
          f"of {seconds:g} s per server (LoadTest-create AdmissionReviews, same validation "
          "everywhere); medians; a failed review counts as 10 s in the percentiles")
    header = (f"{'server (one process)':<32} {'reviews/s [min, max]':>22} {'per CPU-s':>10} "
              f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}")
    print(header)
    for name, closed_result in results.items():
        print(row(name, closed_result))
    print(f"\nOpen loop at {args.half_rate:,.0f}/s (latency from the intended send time)")
    print(header)
    for name, opened_result in half.items():
        print(row(name, opened_result))
    efficiency = rps_ratio = busiest = math.nan
    if scaling:
        n = args.processes
        where = (f"server i pinned to core {pinned[1:] + pinned[:1]}[i], the load client to core "
                 f"{pinned[0]}" if pinned else "nothing pinned")
        print(f"\nScaling: 1 kuar process against {n} on one port (SO_REUSEPORT), closed loop, "
              f"{runs} alternated runs of {seconds:g} s per variant and connection count; "
              f"{where}; machine load average {scaling_load[0]:.1f} -> {scaling_load[1]:.1f}")
        print("reviews/s is raw (it includes the load client's share of the cores); server "
              "CPU/s: CPU-seconds of every server process per second (from /proc); per server "
              f"CPU-s: reviews per server CPU-second; efficiency: that with {n} / with 1 (1.0 = "
              "no shared cost); busiest: the busiest process's share of the reviews, and of "
              f"the connections (ideal {1 / n:.2f}); connections: per process, sampled mid-run, "
              "each run")
        print(f"{'conns':>5} {'procs':>5} {'reviews/s [min, max]':>22} {'server CPU/s':>12} "
              f"{'per server CPU-s':>16} {'efficiency':>10} {'busiest':>8} {'of conns':>8} "
              f"{'errors':>6}  connections")
        for conns in scaling_conns:
            one = summary(scaling[(conns, 1)], SCALING)
            for count in (1, n):
                got = summary(scaling[(conns, count)], SCALING)
                spread = f"{got['rps']:.0f} [{got['rps_min']:.0f}, {got['rps_max']:.0f}]"
                eff = got["per_cpu"] / one["per_cpu"]
                print(f"{conns:>5} {count:>5} {spread:>22} {got['cpu_per_s']:>12.2f} "
                      f"{got['per_cpu']:>16.0f} {eff:>10.2f} {got['busiest']:>8.2f} "
                      f"{got['busiest_conns']:>8.2f} {got['errors']:>6}  {got['held']}")
                if conns == args.conns and count == n:
                    efficiency, rps_ratio = eff, got["rps"] / one["rps"]
                    busiest = got["busiest"]
    print(f"\nAPI server create latency, {creates} sequential LoadTest creates per side, "
          "alternating between a namespace the webhooks skip and one they serve (p50 ms)")
    print(f"{'webhooks':<36} {'without':>8} {'with':>8} {'overhead':>9}")
    for name, (without, with_hooks) in overheads.items():
        print(f"{name:<36} {without:>8.2f} {with_hooks:>8.2f} {with_hooks - without:>9.2f}")
    print(f"\nmachine load average (1 min): {load_before:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end (2 cores; other work on the machine adds noise); "
          f"every process of this benchmark ran at nice {os.getpriority(os.PRIO_PROCESS, 0)}")
    kuar = results["kuar"]
    assert kuar is not None
    kopf_r, cr_r = results.get("kopf"), results.get("controller-runtime (Go)")
    ratio_kopf = f"{kuar['rps'] / kopf_r['rps']:.2f}" if kopf_r and kopf_r["rps"] else "nan"
    ratio_cr = f"{kuar['rps'] / cr_r['rps']:.2f}" if cr_r and cr_r["rps"] else "nan"
    per_core = (f"{kuar['per_cpu'] / cr_r['per_cpu']:.2f}"
                if cr_r and cr_r["per_cpu"] else "nan")
    errors = sum(r["errors"] for r in [*results.values(), *half.values()] if r is not None)
    errors += sum(r["errors"] for runs_ in scaling.values() for r in runs_)
    plain, hooked = overheads["kuar validate+mutate"]
    print(f"\nwall time {time.monotonic() - started:.0f} s")
    print(f"reviews_per_s={kuar['rps']:.0f} p99_ms={half['kuar']['p99_ms']:.2f} "
          f"ratio_vs_kopf={ratio_kopf} ratio_vs_controller_runtime={ratio_cr} "
          f"create_overhead_p50_ms={hooked - plain:.2f} "
          f"per_core_ratio_vs_controller_runtime={per_core} errors={errors} "
          f"scaling_processes={args.processes} scaling_efficiency={efficiency:.2f} "
          f"scaling_rps_ratio={rps_ratio:.2f} scaling_busiest_share={busiest:.2f}")


if __name__ == "__main__":
    main()

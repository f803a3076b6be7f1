"""``kuar-loadgen``: the worker's command line, standalone or in a LoadTest pod.

Place in the pipeline: the edge. It reads the spec from ``KUAR_LOADGEN_SPEC`` (a pod) and the
flags (a person), runs it with :func:`kuar_loadgen.runner.run`, prints a summary (or, with
``--json``, the result as the last line of output) and writes the compact result to
``--result-file`` (``/dev/termination-log`` by default inside a pod, so the controller reads it
from the pod's status).

Precedence: a flag given on the command line (or through its own ``KUAR_LOADGEN_*``
variable) overrides the same field of ``KUAR_LOADGEN_SPEC``, which overrides the defaults.

Exit codes (also in ``--help`` and docs/loadgen.md; constants in :mod:`kuar_loadgen.result`):
0 the run got answers (HTTP responses of any status: the result counts them), 1 the run
completed but no request got an answer (the result is still printed and written), 2 bad input
(flags, ``KUAR_LOADGEN_SPEC``, ``--ca-file``, ``--result-file``, the ``--start-from-run``
files; checked before anything is sent), 3 could not run (a worker process failed, the
metrics port is taken, no start time came for ``--start-from-run``, an internal error),
4 a ``--threshold`` was crossed (the result is still printed and written), 143 stopped by
SIGTERM. Every failure ends with one ``error:`` line on stderr; bad input never
prints a traceback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.console import Console
from rich.table import Table

from kuar_loadgen._client import ssl_context
from kuar_loadgen.barrier import RunStart, StartError, in_cluster_server, parse_run
from kuar_loadgen.mix import MixError, body_of
from kuar_loadgen.result import (
    EXIT_BAD_INPUT,
    EXIT_CANNOT_RUN,
    EXIT_NO_ANSWERS,
    TERMINATION_MESSAGE_LIMIT,
    LoadResult,
    compact,
)
from kuar_loadgen.runner import Observer, StartGate, WorkerError, run
from kuar_loadgen.spec import (
    LoadSpec,
    SpecError,
    parse_header,
    parse_resolve,
    spec_from_env,
    spec_from_file,
)
from kuar_loadgen.thresholds import EXIT_THRESHOLDS, evaluate, parse_thresholds

POD_RESULT_FILE = "/dev/termination-log"

# flag name -> spec field, for the flags that map one to one.
_FIELDS = {"rps": "rps", "duration": "duration", "timeout": "timeout",
           "processes": "processes", "connections": "connections",
           "shard_index": "shard_index", "shard_count": "shard_count",
           "start_at": "start_at", "insecure": "insecure", "ca_file": "ca_file", "loop": "loop",
           "abort_on_fail": "abort_on_fail"}


EPILOG = """\b
Exit codes:
  0    the run got answers (HTTP responses of any status; the result counts them)
  1    the run completed but no request got an answer (result still written)
  2    bad input: flags, KUAR_LOADGEN_SPEC, --ca-file, --result-file (nothing sent)
  3    could not run: a worker process failed, the metrics port is taken, no start
       time came for --start-from-run within --start-timeout
  4    a --threshold was crossed (result still written)
  143  stopped by SIGTERM
"""


def _error(message: str, code: int) -> None:
    """One ``error:`` line on stderr, then exit with ``code``."""
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(code)


class _Command(click.Command):
    """click's command, but a usage error is one ``error:`` line and exit code 2.

    click's own handler prints a usage block and ``Error:`` over several lines.
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.ClickException as e:
            _error(e.format_message(), EXIT_BAD_INPUT)
        except click.Abort:
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


@click.command(cls=_Command, epilog=EPILOG,
               context_settings={"help_option_names": ["-h", "--help"],
                                 "auto_envvar_prefix": "KUAR_LOADGEN"})
@click.option("--spec-file", type=click.Path(dir_okay=False), metavar="PATH",
              help="The spec as a JSON file instead of KUAR_LOADGEN_SPEC (a LoadTest pod's run "
                   "volume; body files are relative to its folder).")
@click.option("--url", "urls", multiple=True, metavar="URL",
              help="Target URL (repeatable; requests go round robin).")
@click.option("--path", "paths", multiple=True, metavar="PATH",
              help="Replace each URL's path by these paths in turn (repeatable).")
@click.option("--rps", type=float, help="Total arrival rate, requests/s (all shards).")
@click.option("--duration", type=float, help="Run length in seconds.")
@click.option("--stage", "stages", multiple=True, metavar="SECONDS:RATE",
              help="A stage of a rate profile instead of --rps/--duration: ramp linearly to "
                   "RATE req/s over SECONDS (repeatable, in order).")
@click.option("--start-rate", type=float, default=None,
              help="The rate the first --stage ramps from (default 0).")
@click.option("--timeout", type=float, help="Per-request timeout in seconds, from the due time; a "
              "request that waits half of it for a connection is dropped.")
@click.option("--processes", type=int, help="Worker processes (0: one per available core).")
@click.option("--connections", type=int, help="Keep-alive connections per process at most.")
@click.option("--resolve", "resolve", multiple=True, metavar="HOST:PORT:ADDR",
              help="Dial ADDR for HOST:PORT (curl style), or HOST:PORT=ADDR:PORT.")
@click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="Extra request header (repeatable).")
@click.option("--shard-index", type=int, help="This pod's shard, 0 <= I < shard count.")
@click.option("--shard-count", type=int, help="How many pods share --rps.")
@click.option("--start-at", type=float, help="Shared start time, Unix seconds.")
@click.option("--start-from-run", metavar="NAMESPACE/NAME",
              help="Start when the LoadTestRun NAME writes status.startAt (a LoadTest pod; "
                   "watched through the API with --api-token-file).")
@click.option("--api-server", metavar="https://HOST:PORT",
              help="API server for --start-from-run (default: the pod's "
                   "KUBERNETES_SERVICE_HOST/PORT).")
@click.option("--api-token-file", type=click.Path(dir_okay=False), metavar="PATH",
              help="Bearer token file for --start-from-run (a projected service-account "
                   "token).")
@click.option("--api-ca-file", type=click.Path(dir_okay=False), metavar="PATH",
              help="CA bundle of the API server for --start-from-run.")
@click.option("--start-timeout", type=float, default=600.0, show_default=True,
              help="Seconds --start-from-run waits for a start time before exit code 3.")
@click.option("--insecure/--verify", default=None, help="Skip (or do) TLS verification.")
@click.option("--ca-file", type=click.Path(dir_okay=False), help="CA bundle for HTTPS.")
@click.option("--loop", type=click.Choice(["auto", "uvloop", "asyncio"]), help="Event loop.")
@click.option("--threshold", "thresholds", multiple=True, metavar="'METRIC OP VALUE'",
              help="Pass/fail condition such as 'p99 < 50ms', 'errorRate < 1%', "
                   "'achievedRate > 98%' (repeatable); crossed: exit code 4.")
@click.option("--abort-on-fail", is_flag=True, default=None,
              help="Stop sending once a --threshold is crossed for good.")
@click.option("--threshold-exit/--no-threshold-exit", default=True, show_default=True,
              help="Exit 4 when a threshold is crossed (a LoadTest pod reports instead).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (last line).")
@click.option("--result-file", type=click.Path(dir_okay=False),
              help=f"Also write the compact result here (default {POD_RESULT_FILE} in a pod).")
@click.option("--metrics-port", type=int, help="Serve Prometheus metrics on this port.")
@click.option("--metrics-address", default="127.0.0.1", show_default=True,
              help="Address of the metrics server (0.0.0.0 in a pod).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: when stderr is a terminal).")
@click.pass_context
def main(ctx: click.Context, /, **opts: Any) -> None:
    """Open-loop HTTP load: --rps requests/s for --duration seconds, latency from due time.

    In a pod the whole spec may come as JSON in KUAR_LOADGEN_SPEC; every flag can also be set
    by its own variable (KUAR_LOADGEN_RPS, ...) and wins over the JSON. With --json the last
    line of output is the result (schema: kuar_loadgen.result).
    """
    result_file = opts["result_file"] or (POD_RESULT_FILE if _in_pod() else None)
    try:
        spec = build_spec(ctx, opts)
        check_files(spec, result_file)
        gate = start_gate(opts)
    except (SpecError, StartError) as e:
        _error(str(e), EXIT_BAD_INPUT)
    console = Console(stderr=True)
    # A pod being deleted gets SIGTERM: exit through the normal path so worker processes stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    observers: list[Observer] = []
    with contextlib.ExitStack() as stack:
        show_bar = opts["progress"] if opts["progress"] is not None else sys.stderr.isatty()
        if show_bar:
            from kuar_loadgen.progress import ProgressBar

            observers.append(stack.enter_context(ProgressBar(console)))
        if opts["metrics_port"] is not None:
            from kuar_loadgen.progress import MetricsExporter

            where = f"{opts['metrics_address']}:{opts['metrics_port']}"
            try:
                exporter = MetricsExporter(port=opts["metrics_port"],
                                           address=opts["metrics_address"])
            except OSError as e:
                _error(f"metrics server on {where}: {e.strerror or e}", EXIT_CANNOT_RUN)
            stack.callback(exporter.close)
            observers.append(exporter)
        try:
            result = run(spec, observer=_fan_out(observers), start_gate=gate)
        except StartError as e:
            _error(f"no start: {e}", EXIT_CANNOT_RUN)
        except WorkerError as e:
            _error(f"worker failed: {e}", EXIT_CANNOT_RUN)
        except Exception as e:  # a bug, not the input: keep the traceback, end with one line
            traceback.print_exc()
            _error(f"internal error: {type(e).__name__}: {e}", EXIT_CANNOT_RUN)
    if result_file:
        try:
            write_result_file(result, result_file)
        except OSError as e:
            _error(f"--result-file {result_file}: {e.strerror or e}", EXIT_CANNOT_RUN)
    if opts["as_json"]:
        sys.stdout.write(result.to_json() + "\n")
    else:
        Console().print(summary_table(result))
    sys.stdout.flush()
    verdict = evaluate(parse_thresholds(spec.thresholds), result)
    if spec.thresholds:
        click.echo(f"thresholds: {verdict.describe()}"
                   + (f" (stopped early: {result.aborted})" if result.aborted else ""), err=True)
    if result.requests and not result.responses:
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(result.error_kinds.items()))
        _error(f"no request got an answer ({result.requests} sent; {kinds or 'no errors'})",
               EXIT_NO_ANSWERS)
    if not verdict.ok and opts["threshold_exit"]:
        _error(f"threshold crossed: {verdict.describe()}", EXIT_THRESHOLDS)


def start_gate(opts: dict[str, Any]) -> StartGate | None:
    """The start barrier ``--start-from-run`` asks for (checked now), or ``None``.

    Bad input (no token file, no API server, a CA that does not load) raises
    :class:`StartError` before anything runs.
    """
    if not opts.get("start_from_run"):
        for flag in ("api_server", "api_token_file", "api_ca_file"):
            if opts.get(flag):
                raise StartError(f"--{flag.replace('_', '-')} needs --start-from-run")
        return None
    if opts.get("start_at") is not None:
        raise StartError("--start-at and --start-from-run exclude each other")
    try:
        namespace, name = parse_run(opts["start_from_run"])
    except ValueError as e:
        raise StartError(f"--start-from-run: {e}") from None
    server = opts.get("api_server") or in_cluster_server()
    if not server:
        raise StartError("--start-from-run needs --api-server or the pod's "
                         "KUBERNETES_SERVICE_HOST/PORT")
    if not opts.get("api_token_file"):
        raise StartError("--start-from-run needs --api-token-file")
    timeout = float(opts.get("start_timeout") or 0)
    if timeout <= 0:
        raise StartError(f"--start-timeout: must be > 0, got {opts.get('start_timeout')}")
    barrier = RunStart(namespace=namespace, name=name, server=server,
                       token_file=opts["api_token_file"], ca_file=opts.get("api_ca_file"),
                       timeout=timeout)
    barrier.check()

    def wait() -> float:
        click.echo(f"waiting for the start time of {barrier.describe()}", err=True)
        at = barrier.wait()
        late = time.time() - at
        click.echo(f"start time {at:.3f}" + (f" ({late * 1000:.0f} ms ago: starting now)"
                                             if late > 0 else ""), err=True)
        return at

    return wait


def check_files(spec: LoadSpec, result_file: str | None) -> None:
    """Raise :class:`SpecError` unless the CA file loads and the result file can be written.

    Checked before anything is sent, so a typo costs no load and prints no traceback.
    """
    if spec.ca_file is not None or any(t.scheme == "https" for t in spec.targets()):
        try:
            ssl_context(spec)
        except ssl.SSLError as e:  # before OSError: SSLError is one
            raise SpecError(f"--ca-file {spec.ca_file}: no CA certificate could be loaded "
                            f"({e.reason or e})") from None
        except OSError as e:
            raise SpecError(f"--ca-file {spec.ca_file}: {e.strerror or e}") from None
    for i, kind in enumerate(spec.requests):
        try:
            body_of(kind, i)  # a body from the environment must be there (never printed)
        except MixError as e:
            raise SpecError(str(e)) from None
    if result_file:
        try:
            with open(result_file, "a"):  # create or append: never truncate before the run
                pass
        except OSError as e:
            raise SpecError(f"--result-file {result_file}: {e.strerror or e}") from None


def build_spec(ctx: click.Context, opts: dict[str, Any]) -> LoadSpec:
    """The spec from ``KUAR_LOADGEN_SPEC`` overridden by the flags that were given."""
    # a spec file replaces KUAR_LOADGEN_SPEC; the pod's shard and Service map still apply
    data = spec_from_env(base=spec_from_file(opts["spec_file"]) if opts.get("spec_file")
                         else None)

    def given(name: str) -> bool:
        src = ctx.get_parameter_source(name)
        return src is not None and src not in (ParameterSource.DEFAULT,
                                                ParameterSource.DEFAULT_MAP)

    for flag, fieldname in _FIELDS.items():
        if given(flag) and opts[flag] is not None:
            data[fieldname] = opts[flag]
    if opts["urls"]:
        data["urls"] = list(opts["urls"])
    if opts["paths"]:
        data["paths"] = list(opts["paths"])
    if opts["resolve"]:
        data["resolve"] = {**data.get("resolve", {}), **parse_resolve(opts["resolve"])}
    if opts["headers"]:
        data["headers"] = [parse_header(h) for h in opts["headers"]]
    if opts["thresholds"]:
        data["thresholds"] = list(opts["thresholds"])
    if opts["stages"]:
        pairs = [parse_stage(item) for item in opts["stages"]]
        start = opts["start_rate"] or 0.0
        data.update(stages=pairs, start_rate=start, duration=sum(d for d, _ in pairs),
                    rps=max([start, *(r for _, r in pairs)]) or 1.0)
    missing = [k for k in ("urls", "rps", "duration") if k not in data]
    if missing:
        raise SpecError("missing " + ", ".join(f"--{m.rstrip('s')}" if m == "urls" else f"--{m}"
                                                for m in missing))
    return LoadSpec.from_dict(data)


def parse_stage(item: str) -> tuple[float, float]:
    """``SECONDS:RATE`` (``30:100``) as a stage; bad text is a :class:`SpecError`."""
    seconds, sep, rate = item.partition(":")
    try:
        if not sep:
            raise ValueError(item)
        return float(seconds), float(rate)
    except ValueError:
        raise SpecError(f"--stage: expected SECONDS:RATE such as 30:100, got {item!r}") from None


def write_result_file(result: LoadResult, path: str) -> None:
    """Write the result compacted to the termination-message limit."""
    Path(path).write_text(compact(result, TERMINATION_MESSAGE_LIMIT).to_json())


def summary_table(result: LoadResult) -> Table:
    """A human summary of a result."""
    t = Table(title="kuar-loadgen", show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_row("requests", f"{result.requests:,}")
    t.add_row("responses", f"{result.responses:,}")
    t.add_row("errors", f"{result.errors:,} {result.error_kinds or ''}")
    t.add_row("target rps", f"{result.target_rps:,.1f}")
    t.add_row("achieved rps", f"{result.achieved_rps:,.1f}")
    for k in ("p50", "p90", "p99", "p999", "max"):
        t.add_row(f"latency {k}", f"{result.latency_ms[k]:,.3f} ms")
    t.add_row("lateness p99", f"{result.lateness_ms['p99']:,.3f} ms")
    t.add_row("status codes", ", ".join(f"{k}: {v:,}" for k, v in result.status_codes.items()))
    t.add_row("processes", str(result.processes))
    return t


def _fan_out(observers: list[Observer]) -> Observer | None:
    if not observers:
        return None
    if len(observers) == 1:
        return observers[0]
    from kuar_loadgen.progress import Observers

    return Observers(observers)


def _in_pod() -> bool:
    return "KUBERNETES_SERVICE_HOST" in os.environ and os.path.exists(POD_RESULT_FILE)

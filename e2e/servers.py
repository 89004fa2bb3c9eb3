"""Real third-party receivers for the end-to-end checks: Arize Phoenix, rotel, MLflow.

Phoenix and rotel come from `.venv-phoenix/` (installed by `make e2e` from
`e2e/requirements.txt`), MLflow from `.venv-mlflow/` (`e2e/requirements-mlflow.txt`). All
run on free loopback ports with a clean environment, are polled for readiness with a
deadline (never a fixed sleep), and are stopped whatever happens: the whole process
group is terminated, then killed, no process of it may remain, and the ports are checked
free. `RecordingProxy` is a transparent hop that keeps what the SDK sent, to compare
with what a server stored.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

ROOT = Path(__file__).resolve().parent.parent
E2E_VENV = ROOT / ".venv-phoenix"
MLFLOW_VENV = ROOT / ".venv-mlflow"
T = TypeVar("T")


class E2EError(RuntimeError):
    """The e2e environment is missing or a server misbehaved (never a skip)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when nothing accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def poll(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.1) -> T:
    """Call `check` until it returns something, or raise naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise E2EError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _wait_released(*ports: int) -> None:
    for port in ports:

        def released(port: int = port) -> bool | None:
            return True if port_is_free(port) else None

        poll(f"port {port} to be released", released, 10)


def _group_members(group: int) -> list[int]:
    """Live (not zombie) processes of process group `group`, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it exited while we looked
        state, pgrp = fields[0], int(fields[2])
        if pgrp == group and state not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


_OUTSIDE_CONFIG = ("ROLLOUT_", "OTEL_", "PHOENIX_", "ROTEL_", "MLFLOW_", "LANGFUSE_")


def clean_environ() -> dict[str, str]:
    """This process's environment without the variables that would steer a server or an
    example elsewhere (a developer's own ROLLOUT_*, OTEL_*, PHOENIX_*, ROTEL_*, MLFLOW_*,
    LANGFUSE_* settings)."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(_OUTSIDE_CONFIG)}


def _require(path: Path, requirements: str = "e2e/requirements.txt") -> Path:
    if not path.exists():
        raise E2EError(f"{path} is missing: run `make e2e` (it installs {requirements})")
    return path


def get_json(url: str, timeout: float = 10) -> Any:
    """GET `url` and decode its JSON answer."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def post_json(url: str, body: object, timeout: float = 10) -> Any:
    """POST `body` as JSON to `url` and decode its JSON answer."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


class Managed:
    """A child process in its own process group, with its log in a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._file = log.open("wb")
        self.process = subprocess.Popen(
            args, env=env, stdout=self._file, stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        """The last lines of the log, for failure messages."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the process group, kill what is left after 10 s, check none remains."""
        group = self.process.pid  # the leader's pid is the group id (start_new_session)

        def gone() -> bool | None:
            return None if _group_members(group) else True

        try:
            if _group_members(group):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGTERM)
                try:
                    poll(f"{self.name} to exit", gone, timeout=10)
                except E2EError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(group, signal.SIGKILL)
                    poll(f"{self.name} to exit after SIGKILL (stray processes)", gone, timeout=5)
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)  # reap the leader
            self._file.close()


def wait_healthy(server: Managed, url: str, stop: Callable[[], None]) -> None:
    """Poll `url` until it answers 200 (two minutes at most). If it never does, or the
    server exits, or Ctrl-C comes while it starts: `stop` it, never leave it running."""

    def healthy() -> bool | None:
        if not server.alive():
            raise E2EError(f"{server.name} exited early:\n{server.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return True if response.status == 200 else None
        except (urllib.error.URLError, OSError):
            return None

    try:
        poll(f"{server.name} {urllib.parse.urlsplit(url).path}", healthy, timeout=120)
    except E2EError as exc:
        stop()
        raise E2EError(f"{exc}\n--- {server.name} log ---\n{server.tail()}") from None
    except BaseException:
        stop()
        raise


class Phoenix:
    """`phoenix serve` on free loopback ports with a throw-away SQLite working dir."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port if port is not None and port_is_free(port) else free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **clean_environ(),
            "PHOENIX_WORKING_DIR": str(workdir),
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.port),
            # Phoenix (20.x) binds its gRPC receiver on all interfaces with no setting to
            # change that; a free port keeps it off 4317, and nothing talks to it.
            "PHOENIX_GRPC_PORT": str(self.grpc_port),
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        }
        binary = _require(E2E_VENV / "bin" / "phoenix")
        self.server = Managed("phoenix", [str(binary), "serve"], env, workdir / "phoenix.log")
        wait_healthy(self.server, f"{self.url}/healthz", self.stop)

    def spans(self, project: str) -> list[dict[str, Any]]:
        """All spans Phoenix stored for `project` (every page)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = "limit=1000" + (f"&cursor={cursor}" if cursor else "")
            url = f"{self.url}/v1/projects/{project}/spans?{query}"
            try:
                page = get_json(url)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:  # the project does not exist yet
                    return []
                raise
            out.extend(page.get("data", []))
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    def traces(self, project: str) -> list[dict[str, Any]]:
        """Phoenix's trace summaries for `project` (ids, times, token totals), first page."""
        url = f"{self.url}/v1/projects/{project}/traces?limit=1000"
        return list(get_json(url).get("data", []))

    def annotations(self, project: str, kind: str, ids: Iterable[str]) -> list[dict[str, Any]]:
        """The `kind` ("trace" or "span") annotations Phoenix stored for `ids` (trace or
        span ids) in `project`: `GET /v1/projects/{project}/{kind}_annotations`."""
        query = "&".join(f"{kind}_ids={i}" for i in ids)
        url = f"{self.url}/v1/projects/{project}/{kind}_annotations?{query}&limit=1000"
        return list(get_json(url).get("data", []))

    def wait_for_spans(self, project: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """Poll until Phoenix returns at least `count` spans for `project`."""

        def enough() -> list[dict[str, Any]] | None:
            spans = self.spans(project)
            return spans if len(spans) >= count else None

        try:
            return poll(f"{count} spans in Phoenix project {project!r}", enough, timeout, 0.25)
        except E2EError as exc:
            have = [s["name"] for s in self.spans(project)]
            raise E2EError(
                f"{exc}; have {have}\n--- phoenix log ---\n{self.server.tail()}"
            ) from None

    def stop(self) -> None:
        """Stop Phoenix and check both of its ports are released."""
        self.server.stop()
        _wait_released(self.port, self.grpc_port)


class MLflow:
    """`mlflow server` on a free loopback port with a throw-away SQLite store and artifact
    directory. It takes OTLP traces at `{url}/v1/traces` (the experiment named by the
    `x-mlflow-experiment-id` header) and no OTLP metrics."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        binary = _require(MLFLOW_VENV / "bin" / "mlflow", "e2e/requirements-mlflow.txt")
        args = [
            str(binary),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{workdir / 'mlflow.db'}",
            "--default-artifact-root",
            str(workdir / "artifacts"),
        ]
        # Its default security middleware admits Host 127.0.0.1:<port> (localhost and
        # private addresses): no --allowed-hosts / --disable-security-middleware needed.
        env = {**clean_environ(), "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        self.server = Managed("mlflow", args, env, workdir / "mlflow.log")
        wait_healthy(self.server, f"{self.url}/health", self.stop)

    def create_experiment(self, name: str) -> str:
        """A new experiment's id."""
        url = f"{self.url}/api/2.0/mlflow/experiments/create"
        return str(post_json(url, {"name": name})["experiment_id"])

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """The trace `tr-<trace_id>` with its spans (`trace_info`, `spans`), or None (404)."""
        url = f"{self.url}/api/3.0/mlflow/traces/get?trace_id=tr-{trace_id}"
        try:
            return dict(get_json(url)["trace"])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def wait_for_spans(self, trace_id: str, count: int, timeout: float = 30) -> dict[str, Any]:
        """Poll until the trace has at least `count` spans; the trace."""

        def enough() -> dict[str, Any] | None:
            trace = self.trace(trace_id)
            return trace if trace is not None and len(trace.get("spans", ())) >= count else None

        try:
            return poll(f"{count} spans of MLflow trace tr-{trace_id}", enough, timeout, 0.1)
        except E2EError as exc:
            raise E2EError(f"{exc}\n--- mlflow log ---\n{self.server.tail()}") from None

    def stop(self) -> None:
        """Stop MLflow and check its port is released."""
        self.server.stop()
        _wait_released(self.port)


@contextlib.contextmanager
def mlflow_server() -> Iterator[MLflow]:
    """A running MLflow tracking server, stopped whatever happens."""
    with tempfile.TemporaryDirectory(prefix="mv37-e2e-mlflow-") as workdir:
        server = MLflow(Path(workdir))
        try:
            yield server
        finally:
            server.stop()


class Rotel:
    """The rotel OTel collector: OTLP/HTTP in on a free port, OTLP/HTTP out to `target`."""

    def __init__(self, target: str, workdir: Path, *, metrics: bool = False) -> None:
        """`metrics`: also receive OTLP metrics and forward them to `target`."""
        self.port = free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        site = next(E2E_VENV.glob("lib/python*/site-packages/rotel"), None)
        if site is None:
            raise E2EError(f"rotel is not installed in {E2E_VENV}: run `make e2e`")
        binary = _require(site / "rotel-agent")
        args = [
            str(binary),
            "start",
            "--otlp-http-endpoint",
            f"127.0.0.1:{self.port}",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{self.grpc_port}",
            *(() if metrics else ("--otlp-receiver-metrics-disabled",)),
            "--otlp-receiver-logs-disabled",
            "--exporter",
            "otlp",
            "--otlp-exporter-protocol",
            "http",
            "--otlp-exporter-endpoint",
            target,
            "--pid-file",
            str(workdir / "rotel.pid"),
            "--log-file",
            str(workdir / "rotel-agent.log"),
        ]
        self.server = Managed("rotel", args, clean_environ(), workdir / "rotel.log")

        def listening() -> bool | None:
            if not self.server.alive():
                raise E2EError(f"rotel exited early:\n{self.server.tail()}")
            return None if port_is_free(self.port) else True

        try:
            poll("rotel to listen", listening, timeout=30, interval=0.05)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop rotel and check its ports are released."""
        self.server.stop()
        _wait_released(self.port, self.grpc_port)


@dataclass(frozen=True)
class SentSpan:
    """One span as the SDK sent it (decoded from the bytes the proxy forwarded)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    links: int
    status_code: str  # UNSET, OK or ERROR
    status_message: str
    resource: dict[str, Any]
    project: str | None  # the x-project-name header of the request


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _values(value.kvlist_value.values)
    return None if kind is None else getattr(value, kind)


def _values(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


def decode_spans(body: bytes, project: str | None = None) -> list[SentSpan]:
    """The spans of one OTLP/HTTP protobuf request body."""
    request = ExportTraceServiceRequest.FromString(body)
    return [
        SentSpan(
            trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(),
            parent_id=span.parent_span_id.hex() or None,
            name=span.name,
            start_ns=span.start_time_unix_nano,
            end_ns=span.end_time_unix_nano,
            attributes=_values(span.attributes),
            events=[(event.name, _values(event.attributes)) for event in span.events],
            links=len(span.links),
            status_code=_STATUS[span.status.code],
            status_message=span.status.message,
            resource=_values(resource_spans.resource.attributes),
            project=project,
        )
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


# Hop-by-hop headers (and the ones urllib sets itself) are not forwarded.
_NOT_FORWARDED = {"host", "content-length", "connection", "keep-alive", "transfer-encoding"}


class RecordingProxy:
    """A transparent OTLP/HTTP hop in front of `target`: it forwards every request
    byte for byte (headers included) and answers what the target answered, keeping a
    decoded copy of the spans — the ground truth of what the SDK sent."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.sent: list[SentSpan] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
                status, reply, reply_type = proxy._forward(self.path, raw, headers)
                self.send_response(status)
                self.send_header("Content-Type", reply_type)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.daemon = True
        self._thread.start()

    def _forward(self, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        request = urllib.request.Request(self.target + path, raw, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, reply = response.status, response.read()
                reply_type = response.headers.get("Content-Type", "application/x-protobuf")
        except urllib.error.HTTPError as error:
            status, reply = error.code, error.read()
            reply_type = error.headers.get("Content-Type", "text/plain")
        if 200 <= status < 300:
            encoding = {k.lower(): v for k, v in headers.items()}.get("content-encoding", "")
            body = gzip.decompress(raw) if encoding == "gzip" else raw
            if encoding == "deflate":
                body = zlib.decompress(raw)
            project = {k.lower(): v for k, v in headers.items()}.get("x-project-name")
            with self._lock:
                self.sent.extend(decode_spans(body, project))
        return status, reply, reply_type

    def spans(self, project: str | None = None) -> list[SentSpan]:
        """What the target accepted (for one project, by its x-project-name header)."""
        with self._lock:
            return [s for s in self.sent if project is None or s.project == project]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        _wait_released(self.port)


@contextlib.contextmanager
def phoenix_server(port: int | None = None) -> Iterator[Phoenix]:
    """A running Phoenix (on `port` when it is free), stopped whatever happens."""
    with tempfile.TemporaryDirectory(prefix="mv37-e2e-phoenix-") as workdir:
        server = Phoenix(Path(workdir), port)
        try:
            yield server
        finally:
            server.stop()


def run_example(name: str, env: dict[str, str], timeout: float = 120) -> str:
    """Run `examples/<name>` with the repo's Python; its combined output."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        env={**clean_environ(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise E2EError(f"examples/{name} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr

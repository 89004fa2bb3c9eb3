"""Real third-party receivers for the end-to-end checks: Arize Phoenix and rotel.

Both come from `.venv-phoenix/` (installed by `make e2e` from `e2e/requirements.txt`),
run on free loopback ports, are polled for readiness with a deadline (never a fixed
sleep), and are stopped whatever happens: the whole process group is terminated, then
killed, and the ports are checked free.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
E2E_VENV = ROOT / ".venv-phoenix"
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


def _require(path: Path) -> Path:
    if not path.exists():
        raise E2EError(f"{path} is missing: run `make e2e` (it installs e2e/requirements.txt)")
    return path


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
        """Terminate the process group; kill it if it does not go within 10 s."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._file.close()


class Phoenix:
    """`phoenix serve` on free loopback ports with a throw-away SQLite working dir."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port if port is not None and port_is_free(port) else free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
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
        try:
            poll("Phoenix /healthz", self._healthy, timeout=120)
        except E2EError as exc:
            self.stop()
            raise E2EError(f"{exc}\n--- phoenix log ---\n{self.server.tail()}") from None

    def _healthy(self) -> bool | None:
        if not self.server.alive():
            raise E2EError(f"phoenix exited early:\n{self.server.tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return True if response.status == 200 else None
        except (urllib.error.URLError, OSError):
            return None

    def spans(self, project: str) -> list[dict[str, Any]]:
        """All spans Phoenix stored for `project` (every page)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = "limit=1000" + (f"&cursor={cursor}" if cursor else "")
            url = f"{self.url}/v1/projects/{project}/spans?{query}"
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    page = json.load(response)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:  # the project does not exist yet
                    return []
                raise
            out.extend(page.get("data", []))
            cursor = page.get("next_cursor")
            if not cursor:
                return out

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


class Rotel:
    """The rotel OTel collector: OTLP/HTTP in on a free port, OTLP/HTTP out to `target`."""

    def __init__(self, target: str, workdir: Path) -> None:
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
            "--otlp-receiver-metrics-disabled",
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
        self.server = Managed("rotel", args, dict(os.environ), workdir / "rotel.log")

        def listening() -> bool | None:
            if not self.server.alive():
                raise E2EError(f"rotel exited early:\n{self.server.tail()}")
            return None if port_is_free(self.port) else True

        try:
            poll("rotel to listen", listening, timeout=30, interval=0.05)
        except E2EError:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop rotel and check its ports are released."""
        self.server.stop()
        _wait_released(self.port, self.grpc_port)


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
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise E2EError(f"examples/{name} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr

"""Fixtures for the end-to-end checks: one Phoenix for the session, a project per test."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from e2e.servers import MLflow, Phoenix, clean_environ, mlflow_server, phoenix_server

_projects = itertools.count(1)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session", autouse=True)
def _sigterm_stops_servers() -> Iterator[None]:
    """SIGTERM (a CI timeout, say) ends the run like Ctrl-C: the servers' finalizers run."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK in this process ignores a developer's own ROLLOUT_*/OTEL_* settings."""
    for name in set(os.environ) - set(clean_environ()):
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def phoenix() -> Iterator[Phoenix]:
    """A real Phoenix server on free loopback ports, stopped at the end of the session."""
    with phoenix_server() as server:
        yield server


@pytest.fixture(scope="session")
def mlflow() -> Iterator[MLflow]:
    """A real MLflow tracking server on a free loopback port, stopped at the end."""
    with mlflow_server() as server:
        yield server


@pytest.fixture
def project(request: pytest.FixtureRequest) -> str:
    """A fresh Phoenix project name for this test (chosen by the x-project-name header)."""
    return f"e2e-{next(_projects)}-{request.node.name.replace('[', '-').replace(']', '')}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    """On a failure, print the tail of Phoenix's and MLflow's logs under the test's report."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed:
        return
    for name in ("phoenix", "mlflow"):
        server = getattr(item, "funcargs", {}).get(name)
        if isinstance(server, (Phoenix, MLflow)):
            report.sections.append((f"{name} log (tail)", server.server.tail(60)))

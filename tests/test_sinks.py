"""Feedback sinks against an in-test Langfuse: `/api/public/scores` as Langfuse documents it.

The fake answers OTLP at `/api/public/otel/v1/traces` (so the destination is Langfuse's
OTLP endpoint and the sink turns on by default) and scores at `/api/public/scores`:
Basic auth from the key pair (401 otherwise), the documented body (`name`, `value`,
`dataType` BOOLEAN 0/1, NUMERIC number, CATEGORICAL string; `traceId`,
`observationId`, `comment`, `metadata`, `id`), upsert on `id`, and scripted failures
(status codes, a stall past the client's timeout).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import mv37.rollout as rollout
from mv37.rollout.pipeline import _sinks
from mv37.rollout.pipeline._sinks import Outcome, SinkWorker, split_value

PUBLIC, SECRET = "pk-lf-test-1", "sk-lf-test-secret-1"
BASIC = "Basic " + base64.b64encode(f"{PUBLIC}:{SECRET}".encode()).decode()
_TYPES = {"BOOLEAN", "NUMERIC", "CATEGORICAL"}


class FakeLangfuse:
    """Langfuse's OTLP and scores endpoints on 127.0.0.1, with a failure script."""

    def __init__(self) -> None:
        self.scores: dict[str, dict[str, Any]] = {}  # by id (upserted)
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.spans: list[tuple[str, str, str | None, str]] = []  # trace, span, parent, name
        self.script: list[tuple[int, str] | float] = []  # (status, body) or a stall in s
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/api/public/otel/v1/traces":
                    fake.otlp(raw, self.headers.get("Content-Encoding"))
                    self.reply(200, b"", "application/x-protobuf")
                    return
                if self.path != "/api/public/scores":
                    self.reply(404, b'{"message":"not found"}')
                    return
                status, body = fake.score({k.lower(): v for k, v in self.headers.items()}, raw)
                self.reply(status, body.encode())

            def reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up waiting (a stall)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,))
        self.thread.daemon = True
        self.thread.start()

    def otlp(self, raw: bytes, encoding: str | None) -> None:
        import gzip

        body = gzip.decompress(raw) if encoding == "gzip" else raw
        request = ExportTraceServiceRequest.FromString(body)
        with self.lock:
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        parent = span.parent_span_id.hex() or None
                        self.spans.append(
                            (span.trace_id.hex(), span.span_id.hex(), parent, span.name)
                        )

    def score(self, headers: dict[str, str], raw: bytes) -> tuple[int, str]:
        body = json.loads(raw)
        with self.lock:
            self.requests.append((headers, body))
            step = self.script.pop(0) if self.script else None
        if headers.get("authorization") != BASIC:
            return (
                401,
                '{"message":"Invalid credentials. Confirm that you\'ve configured the correct '
                'host."}',
            )
        problem = _invalid(body)
        if problem:
            return 400, json.dumps({"message": "Invalid request data", "error": problem})
        if isinstance(step, tuple):
            return step
        with self.lock:
            self.scores[body.get("id") or f"auto-{len(self.scores)}"] = body
        if isinstance(step, float):
            time.sleep(step)  # stored, but answered too late
        return 200, json.dumps({"id": body.get("id")})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _invalid(body: dict[str, Any]) -> str | None:
    """What Langfuse would refuse in a create-score body, or None."""
    if not isinstance(body.get("name"), str) or "value" not in body:
        return "name and value are required"
    kind, value = body.get("dataType"), body["value"]
    if kind not in _TYPES:
        return f"dataType {kind!r}"
    if kind == "BOOLEAN" and value not in (0, 1):
        return "boolean scores are 0 or 1"
    if kind == "NUMERIC" and not isinstance(value, (int, float)):
        return "numeric scores are numbers"
    if kind == "CATEGORICAL" and not isinstance(value, str):
        return "categorical scores are strings"
    return None


@pytest.fixture
def langfuse(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLangfuse]:
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", PUBLIC)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", SECRET)
    fake = FakeLangfuse()
    try:
        yield fake
    finally:
        fake.stop()


def _init(fake: FakeLangfuse, **options: Any) -> None:
    rollout.init(base_url=f"{fake.url}/api/public/otel", console=False, **options)


def _run(mode: str, work: Any) -> str:
    """Open a trace (with `with` or `async with`), let `work(trace)` record on it."""
    if mode == "sync":
        with rollout.trace("support", user_id="u-1") as trace:
            work(trace)
        return trace.trace_id

    async def main() -> str:
        async with rollout.trace("support", user_id="u-1") as trace:
            work(trace)
        return trace.trace_id

    return asyncio.run(main())


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name == "mv37.rollout"
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_live_and_late_feedback_and_signals_become_scores(
    langfuse: FakeLangfuse, mode: str
) -> None:
    _init(langfuse)

    def work(trace: rollout.Trace) -> None:
        trace.feedback("thumbs_up", True, attributes={"comment": "quick"})
        trace.signal("tool_calls", 3)

    trace_id = _run(mode, work)
    rollout.feedback("tone", "friendly", trace_id=trace_id)
    rollout.signal(
        "resolved",
        {"score": 0.5, "label": "partly", "explanation": "one step left"},
        trace_id=trace_id,
    )
    assert rollout.flush()

    (root,) = [s for s in langfuse.spans if s[3] == "invoke_workflow support"]
    root_span = root[1]
    by_name = {body["name"]: body for body in langfuse.scores.values()}
    ids = {name: body.pop("id") for name, body in by_name.items()}
    assert all(i.startswith("rollout-") and len(i) == 40 for i in ids.values())
    assert len(set(ids.values())) == 4
    common = {"traceId": trace_id, "observationId": root_span}
    assert by_name == {
        "thumbs_up": {
            **common,
            "name": "thumbs_up",
            "value": 1,
            "dataType": "BOOLEAN",
            "metadata": {"comment": "quick", "rollout.kind": "feedback", "user.id": "u-1"},
        },
        "tool_calls": {
            **common,
            "name": "tool_calls",
            "value": 3.0,
            "dataType": "NUMERIC",
            "metadata": {"rollout.kind": "signal", "user.id": "u-1"},
        },
        "tone": {
            **common,
            "name": "tone",
            "value": "friendly",
            "dataType": "CATEGORICAL",
            "metadata": {"rollout.kind": "feedback", "user.id": "u-1"},
        },
        "resolved": {
            **common,
            "name": "resolved",
            "value": 0.5,
            "dataType": "NUMERIC",
            "comment": "one step left",
            "metadata": {"label": "partly", "rollout.kind": "signal", "user.id": "u-1"},
        },
    }
    assert {headers["authorization"] for headers, _ in langfuse.requests} == {BASIC}
    assert {headers["content-type"] for headers, _ in langfuse.requests} == {"application/json"}
    stats = rollout.stats()
    assert (stats.feedback_sent, stats.feedback_failed) == ({"langfuse": 4}, {"langfuse": 0})


def test_scores_leave_after_their_trace_spans(langfuse: FakeLangfuse) -> None:
    _init(langfuse)
    with rollout.trace("support") as trace:
        trace.feedback("thumbs_up", False)
        assert rollout.flush()
        assert langfuse.requests == []  # the trace's span is not exported yet
    assert rollout.flush()
    assert [body["value"] for _, body in langfuse.requests] == [0]
    assert [s[3] for s in langfuse.spans] == ["invoke_workflow support"]


def test_5xx_is_retried_with_the_same_id_and_stored_once(
    langfuse: FakeLangfuse, caplog: pytest.LogCaptureFixture
) -> None:
    langfuse.script = [(503, '{"message":"busy"}'), (500, "oops")]
    _init(langfuse)
    _run("sync", lambda trace: trace.feedback("thumbs_up", True))
    assert rollout.flush()
    assert len(langfuse.requests) == 3
    assert len({body["id"] for _, body in langfuse.requests}) == 1
    assert len(langfuse.scores) == 1
    assert rollout.stats().feedback_sent == {"langfuse": 1}
    assert _warnings(caplog) == []


def test_a_timeout_is_retried_and_the_id_makes_it_one_score(
    langfuse: FakeLangfuse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300")  # ms: the sinks' timeout too
    langfuse.script = [1.0]  # the first score is stored but answered after 1 s
    _init(langfuse)
    _run("sync", lambda trace: trace.signal("resolved", True))
    assert rollout.flush()
    assert len(langfuse.requests) == 2
    assert len(langfuse.scores) == 1
    stats = rollout.stats()
    assert (stats.feedback_sent, stats.feedback_failed) == ({"langfuse": 1}, {"langfuse": 0})


def test_a_refusal_is_one_warning_with_the_cause_and_counted(
    langfuse: FakeLangfuse, caplog: pytest.LogCaptureFixture
) -> None:
    langfuse.script = [(400, '{"message": "Invalid request data"}')] * 2
    _init(langfuse)

    def work(trace: rollout.Trace) -> None:
        trace.feedback("a", 1)
        trace.feedback("b", 2)

    _run("sync", work)
    assert rollout.flush()
    assert len(langfuse.requests) == 2  # a 400 is not retried
    assert rollout.stats().feedback_failed == {"langfuse": 2}
    assert _warnings(caplog) == [
        f"mv37.rollout: feedback could not be sent to Langfuse ({langfuse.url}): HTTP 400: "
        '{"message": "Invalid request data"}. It stays on the trace\'s spans; counted in '
        "stats().feedback_failed['langfuse']. Logged once."
    ]


def test_wrong_keys_name_the_variables_and_never_the_secret(
    langfuse: FakeLangfuse, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-wrong-secret")
    _init(langfuse)
    _run("sync", lambda trace: trace.feedback("thumbs_up", True))
    assert rollout.flush()
    (warning,) = _warnings(caplog)
    assert warning.startswith(
        f"mv37.rollout: feedback could not be sent to Langfuse ({langfuse.url}): HTTP 401: "
    )
    assert "Check LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (sent as Basic auth)" in warning
    assert "sk-lf-wrong-secret" not in caplog.text
    assert rollout.stats().feedback_failed == {"langfuse": 1}


def test_an_unreachable_host_is_given_up_within_the_window_never_raising(
    langfuse: FakeLangfuse,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    dead_url: str,
) -> None:
    monkeypatch.setattr(_sinks, "RETRY_WINDOW", 1.0)
    monkeypatch.setenv("LANGFUSE_HOST", dead_url)
    _init(langfuse)
    _run("sync", lambda trace: trace.feedback("thumbs_up", True))
    started = time.monotonic()
    assert rollout.flush()
    assert time.monotonic() - started < 5
    (warning,) = _warnings(caplog)
    assert warning.startswith(
        f"mv37.rollout: feedback could not be sent to Langfuse ({dead_url}): cannot connect "
        "(is the server running there?) (still, after "
    )
    assert rollout.stats().feedback_failed == {"langfuse": 1}


def test_shutdown_bounds_the_retries_and_counts_what_is_left(
    langfuse: FakeLangfuse, monkeypatch: pytest.MonkeyPatch, dead_url: str
) -> None:
    monkeypatch.setenv("LANGFUSE_HOST", dead_url)
    _init(langfuse, shutdown_timeout=0.5)
    _run("sync", lambda trace: trace.feedback("thumbs_up", True))
    client = rollout.get_client()
    started = time.monotonic()
    rollout.shutdown()
    assert time.monotonic() - started < 3
    stats = client.stats()
    assert (stats.feedback_sent, stats.feedback_failed) == ({"langfuse": 0}, {"langfuse": 1})


def test_the_queue_bound_counts_what_does_not_fit(
    langfuse: FakeLangfuse, caplog: pytest.LogCaptureFixture
) -> None:
    _init(langfuse, max_queue_events=2)

    def work(trace: rollout.Trace) -> None:
        for name in ("a", "b", "c"):
            trace.feedback(name, True)

    _run("sync", work)
    assert rollout.flush()
    stats = rollout.stats()
    assert (stats.feedback_sent, stats.feedback_failed) == ({"langfuse": 2}, {"langfuse": 1})
    assert "the feedback queue is full (max_queue_events)" in _warnings(caplog)[0]


def test_sends_run_with_instrumentation_suppressed(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []

    class Probe:
        name, title, where = "probe", "Probe", "http://127.0.0.1:1"

        def send(self, session: Any, outcome: Outcome, attempt: int, ambiguous: bool) -> Any:
            from mv37.rollout.pipeline._suppress import is_suppressed

            seen.append(is_suppressed())
            return _sinks.Reply("ok")

    from mv37.rollout.pipeline._stats import Counters

    counters = Counters()
    worker = SinkWorker([Probe()], counters, 10)
    worker.offer([Outcome("feedback", "x", True, "0" * 31 + "1", None, None, 1, {}, "k")])
    assert worker.flush(5)
    assert seen == [True]
    assert counters.snapshot().feedback_sent == {"probe": 1}


@pytest.mark.parametrize(
    ("value", "verdict"),
    [
        (True, (1.0, "true", None, {}, True)),
        (False, (0.0, "false", None, {}, False)),
        (4, (4.0, None, None, {}, None)),
        ("meh", (None, "meh", None, {}, None)),
        ({"score": True, "by": "qa"}, (1.0, None, None, {"by": "qa"}, True)),
        ({"score": "high", "label": 3}, (None, "3", None, {"score": "high"}, None)),
        ([1, 2], (None, None, None, {"value": [1, 2]}, None)),
    ],
)
def test_values_split_into_score_label_explanation(value: object, verdict: tuple[Any, ...]) -> None:
    got = split_value(value)
    assert (got.score, got.label, got.explanation, got.rest, got.boolean) == verdict


# -- which sinks ------------------------------------------------------------------------------


def test_unknown_sink_names_are_a_value_error_naming_the_valid_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError) as raised:
        rollout.Rollout(feedback_sinks=["phoenix", "arize"])
    assert str(raised.value) == (
        "argument feedback_sinks: unknown feedback sink(s) 'arize'; valid names: phoenix, "
        "langfuse, mlflow (or none)"
    )
    monkeypatch.setenv("ROLLOUT_FEEDBACK_SINKS", "mlflow,braintrust")
    with pytest.raises(ValueError) as raised:
        rollout.Rollout()
    assert str(raised.value).startswith(
        "environment variable ROLLOUT_FEEDBACK_SINKS: unknown feedback sink(s) 'braintrust'"
    )


@pytest.mark.parametrize(
    ("options", "env", "sinks"),
    [
        ({"base_url": "http://lf.test/api/public/otel"}, {"keys": "1"}, {"langfuse": 0}),
        ({"base_url": "http://lf.test/api/public/otel"}, {}, {}),
        ({"base_url": "http://127.0.0.1:4318"}, {"keys": "1"}, {}),
        (
            {"base_url": "http://lf.test/api/public/otel", "feedback_sinks": "none"},
            {"keys": "1"},
            {},
        ),
        (
            {"base_url": "http://mlflow.test", "headers": {"X-MLflow-Experiment-Id": "7"}},
            {},
            {"mlflow": 0},
        ),
        (
            {"base_url": "http://mlflow.test"},
            {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-mlflow-experiment-id=7"},
            {"mlflow": 0},
        ),
        ({"base_url": "http://127.0.0.1:6006", "feedback_sinks": "phoenix"}, {}, {"phoenix": 0}),
        (
            {"feedback_sinks": "phoenix"},
            {"PHOENIX_COLLECTOR_ENDPOINT": "http://p.test"},
            {"phoenix": 0},
        ),
    ],
)
def test_which_sinks_are_on(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, Any], env: dict[str, str], sinks: Any
) -> None:
    for name, value in env.items():
        if name == "keys":
            monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", PUBLIC)
            monkeypatch.setenv("LANGFUSE_SECRET_KEY", SECRET)
        else:
            monkeypatch.setenv(name, value)
    client = rollout.Rollout(console=False, **options)
    try:
        assert client.stats().feedback_sent == sinks
    finally:
        client.shutdown()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"feedback_sinks": "mlflow"},
            "feedback_sinks / ROLLOUT_FEEDBACK_SINKS names mlflow, but there is no destination: "
            "set base_url / ROLLOUT_BASE_URL to the MLflow server",
        ),
        (
            {"feedback_sinks": "phoenix"},
            "feedback_sinks / ROLLOUT_FEEDBACK_SINKS names phoenix, but there is no Phoenix to "
            "send to: set PHOENIX_COLLECTOR_ENDPOINT or a destination (base_url / "
            "ROLLOUT_BASE_URL)",
        ),
        (
            {"feedback_sinks": "langfuse", "base_url": "http://lf.test/api/public/otel"},
            "feedback_sinks / ROLLOUT_FEEDBACK_SINKS names langfuse, but LANGFUSE_PUBLIC_KEY and "
            "LANGFUSE_SECRET_KEY are not set (its scores API needs them)",
        ),
    ],
)
def test_a_named_sink_with_nowhere_to_go_is_a_value_error(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        rollout.Rollout(**options)
    assert str(raised.value) == message

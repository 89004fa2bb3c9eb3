"""An in-process OTLP/HTTP trace and metrics receiver for delivery tests and benchmarks.

It decodes what a real exporter sends to ``/v1/traces`` (spans) and ``/v1/metrics``
(metric data points) and can be scripted to misbehave: answer with given statuses,
write garbage, hold requests, go away and come back on the same port.

Example:
    >>> from mv37.rollout.testing import OTLPReceiver
    >>> with OTLPReceiver() as receiver:  # doctest: +SKIP
    ...     receiver.respond_with(503, retry_after="0")  # first export is retried
    ...     export_with(endpoint=receiver.endpoint)
    ...     [span] = receiver.wait_for_spans(1)
    ...     assert span.name == "agent" and receiver.requests[0].status == 503

The server speaks HTTP/1.0, so every request has its own connection and nothing
keeps serving through a pooled connection after `stop()`.
"""

from __future__ import annotations

import gzip
import socketserver
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

TRACES_PATH = "/v1/traces"
METRICS_PATH = "/v1/metrics"
PROTOBUF = "application/x-protobuf"
GARBAGE_RESPONSE = b"\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n"
GARBAGE_BODY = b"\xff\xff\xff\xff not a protobuf"


@dataclass(frozen=True)
class ReceivedSpan:
    """One decoded span, with ids as lower-case hex."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: str
    attributes: dict[str, object]
    events: tuple[tuple[str, dict[str, object]], ...]
    links: tuple[tuple[str, str], ...]
    status_code: str
    status_message: str
    resource: dict[str, object]
    scope_name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    trace_state: str
    dropped_events_count: int = 0
    dropped_links_count: int = 0


@dataclass(frozen=True)
class ReceivedPoint:
    """One decoded metric data point: a histogram's or a sum's (counter's).

    `count`, `sum`, `bucket_counts`, `explicit_bounds`, `min` and `max` are a histogram's
    (a sum has `value`, and `count` 0); `temporality` is `CUMULATIVE` or `DELTA`.
    """

    metric: str
    unit: str
    description: str
    kind: str
    temporality: str
    attributes: dict[str, object]
    resource: dict[str, object]
    scope_name: str
    start_time_unix_nano: int
    time_unix_nano: int
    count: int = 0
    sum: float = 0.0
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()
    min: float | None = None
    max: float | None = None
    value: float | None = None
    is_monotonic: bool = False


@dataclass(frozen=True)
class ReceivedRequest:
    """One POST as received; `status` is what we answered (0: garbage, no HTTP answer)."""

    path: str
    headers: dict[str, str]
    raw_body: bytes
    body: bytes
    status: int
    spans: tuple[ReceivedSpan, ...]
    content_type: str
    points: tuple[ReceivedPoint, ...] = ()


class Latch:
    """Holds requests until `release()`; see `OTLPReceiver.stall`."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.held = 0
        self._released = threading.Event()
        self._lock = threading.Lock()

    def release(self) -> None:
        self._released.set()

    def _hold(self) -> None:
        if self._released.is_set():
            return
        with self._lock:
            self.held += 1
        self.arrived.set()
        self._released.wait()


@dataclass(frozen=True)
class _Plan:
    """A scripted answer for one request."""

    status: int = 200
    retry_after: str | None = None
    body: bytes | None = None
    garbage: bool = False


def _any_value(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _key_values(value.kvlist_value.values)
    return None if kind is None else getattr(value, kind)


def _key_values(pairs: Iterable[KeyValue]) -> dict[str, object]:
    return {kv.key: _any_value(kv.value) for kv in pairs}


def _decode_spans(request: ExportTraceServiceRequest) -> tuple[ReceivedSpan, ...]:
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _key_values(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                        attributes=_key_values(span.attributes),
                        events=tuple((e.name, _key_values(e.attributes)) for e in span.events),
                        links=tuple((ln.trace_id.hex(), ln.span_id.hex()) for ln in span.links),
                        status_code=Status.StatusCode.Name(span.status.code).removeprefix(
                            "STATUS_CODE_"
                        ),
                        status_message=span.status.message,
                        resource=resource,
                        scope_name=scope_spans.scope.name,
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                        trace_state=span.trace_state,
                        dropped_events_count=span.dropped_events_count,
                        dropped_links_count=span.dropped_links_count,
                    )
                )
    return tuple(spans)


def _temporality(value: int) -> str:
    name: str = AggregationTemporality.Name(value)
    return name.removeprefix("AGGREGATION_TEMPORALITY_")


def _decode_points(request: ExportMetricsServiceRequest) -> tuple[ReceivedPoint, ...]:
    points: list[ReceivedPoint] = []
    for resource_metrics in request.resource_metrics:
        resource = _key_values(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data") or ""
                common = {
                    "metric": metric.name,
                    "unit": metric.unit,
                    "description": metric.description,
                    "kind": kind,
                    "resource": resource,
                    "scope_name": scope_metrics.scope.name,
                }
                if kind == "histogram":
                    for hp in metric.histogram.data_points:
                        points.append(
                            ReceivedPoint(
                                **common,
                                temporality=_temporality(metric.histogram.aggregation_temporality),
                                attributes=_key_values(hp.attributes),
                                start_time_unix_nano=hp.start_time_unix_nano,
                                time_unix_nano=hp.time_unix_nano,
                                count=hp.count,
                                sum=hp.sum,
                                bucket_counts=tuple(hp.bucket_counts),
                                explicit_bounds=tuple(hp.explicit_bounds),
                                min=hp.min if hp.HasField("min") else None,
                                max=hp.max if hp.HasField("max") else None,
                            )
                        )
                elif kind in ("sum", "gauge"):
                    data = getattr(metric, kind)
                    temporality = (
                        _temporality(data.aggregation_temporality) if kind == "sum" else ""
                    )
                    for np in data.data_points:
                        value = np.as_double if np.WhichOneof("value") == "as_double" else np.as_int
                        points.append(
                            ReceivedPoint(
                                **common,
                                temporality=temporality,
                                attributes=_key_values(np.attributes),
                                start_time_unix_nano=np.start_time_unix_nano,
                                time_unix_nano=np.time_unix_nano,
                                value=float(value),
                                is_monotonic=bool(getattr(data, "is_monotonic", False)),
                            )
                        )
    return tuple(points)


def _decompress(raw: bytes, encoding: str) -> bytes:
    """Undo Content-Encoding; raises ValueError for what we cannot decode."""
    try:
        if encoding in ("", "identity"):
            return raw
        if encoding == "gzip":
            return gzip.decompress(raw)
        if encoding == "deflate":
            try:
                return zlib.decompress(raw)
            except zlib.error:
                return zlib.decompress(raw, -zlib.MAX_WBITS)  # raw deflate, no zlib header
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"cannot decode {encoding} body: {error}") from error
    raise ValueError(f"unsupported content-encoding {encoding!r}")


def _evaluate(
    path: str, content_type: str, body: bytes | None
) -> tuple[int, tuple[ReceivedSpan, ...], tuple[ReceivedPoint, ...]]:
    """The unscripted answer to a POST, and the spans or metric points it carried."""
    where = urlsplit(path).path
    if where not in (TRACES_PATH, METRICS_PATH):
        return 404, (), ()
    if content_type != PROTOBUF:
        return 415, (), ()
    if body is None:
        return 400, (), ()
    try:
        if where == METRICS_PATH:
            return 200, (), _decode_points(ExportMetricsServiceRequest.FromString(body))
        return 200, _decode_spans(ExportTraceServiceRequest.FromString(body)), ()
    except Exception:  # google.protobuf.message.DecodeError, whose module is untyped
        return 400, (), ()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], receiver: OTLPReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host name (getfqdn), which can be slow.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.receiver._handle(self, self.rfile.read(length) if length > 0 else b"")

    def log_message(self, format: str, *args: object) -> None:
        """Silence per-request logging."""


class OTLPReceiver:
    """A scriptable OTLP/HTTP trace and metrics endpoint served from a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[ReceivedRequest] = []
        self._cond = threading.Condition()
        self._plans: list[_Plan] = []
        self._latches: list[Latch] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.url + TRACES_PATH

    @property
    def metrics_endpoint(self) -> str:
        return self.url + METRICS_PATH

    def start(self) -> OTLPReceiver:
        """Bind (the same port again after a `stop()`) and serve in a daemon thread."""
        if self._server is None:
            self._server = _Server((self.host, self.port), self)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                args=(0.02,),  # poll interval: how long shutdown() waits for the loop to notice
                name=f"otlp-receiver-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Release stalled requests, stop serving and close the socket (idempotent)."""
        with self._cond:
            for latch in self._latches:
                latch.release()
            self._latches.clear()
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- scripting -----------------------------------------------------------------

    def respond_with(
        self, *statuses: int, retry_after: str | None = None, body: bytes | None = None
    ) -> None:
        """Answer the next POSTs, in order, with these statuses (then normally again)."""
        if not statuses:
            raise ValueError("respond_with() needs at least one status")
        self._script(*(_Plan(status, retry_after, body) for status in statuses))

    def respond_garbage(self, count: int = 1) -> None:
        """Write non-HTTP bytes to the next `count` connections, then close them."""
        self._script(*[_Plan(garbage=True)] * count)

    def reply_garbage_body(self, count: int = 1) -> None:
        """Answer the next `count` POSTs 200 with a body that is not a protobuf."""
        self._script(*[_Plan(200, body=GARBAGE_BODY)] * count)

    def partial_success(self, rejected: int, message: str) -> None:
        """Answer the next POST 200 with a partial-success response."""
        partial = ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
        body = ExportTraceServiceResponse(partial_success=partial).SerializeToString()
        self._script(_Plan(200, body=body))

    def stall(self) -> Latch:
        """Hold requests arriving from now on until the latch is released (or `stop()`)."""
        latch = Latch()
        with self._cond:
            self._latches.append(latch)
        return latch

    def _script(self, *plans: _Plan) -> None:
        with self._cond:
            self._plans.extend(plans)

    # --- what arrived --------------------------------------------------------------

    def spans(self) -> list[ReceivedSpan]:
        """Spans of the requests answered 2xx, in arrival order."""
        with self._cond:
            return [s for r in self.requests if 200 <= r.status < 300 for s in r.spans]

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """Block until at least `count` spans were accepted; AssertionError on timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.spans()) >= count, timeout):
                names = [s.name for s in self.spans()]
                raise AssertionError(
                    f"expected {count} spans within {timeout}s, {len(names)} arrived: {names}"
                )
            return self.spans()

    def points(self, metric: str | None = None) -> list[ReceivedPoint]:
        """Metric data points of the requests answered 2xx (of `metric`), in arrival order."""
        with self._cond:
            return [
                p
                for r in self.requests
                if 200 <= r.status < 300
                for p in r.points
                if metric is None or p.metric == metric
            ]

    def wait_for_points(self, count: int, timeout: float = 10.0) -> list[ReceivedPoint]:
        """Block until at least `count` metric points were accepted; AssertionError on timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.points()) >= count, timeout):
                names = [p.metric for p in self.points()]
                raise AssertionError(
                    f"expected {count} metric points within {timeout}s, {len(names)} arrived: "
                    f"{names}"
                )
            return self.points()

    def metric_requests(self) -> list[ReceivedRequest]:
        """The POSTs to `/v1/metrics` so far, whatever we answered."""
        with self._cond:
            return [r for r in self.requests if urlsplit(r.path).path == METRICS_PATH]

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        """Block until at least `count` POSTs were answered; AssertionError on timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout):
                statuses = [r.status for r in self.requests]
                raise AssertionError(
                    f"expected {count} requests within {timeout}s, "
                    f"{len(statuses)} arrived with statuses {statuses}"
                )
            return list(self.requests)

    def clear(self) -> None:
        """Forget the requests (and spans) received so far."""
        with self._cond:
            self.requests.clear()

    def all_bytes(self) -> bytes:
        """Every request's header lines and decoded body, concatenated."""
        with self._cond:
            return b"".join(
                "".join(f"{k}: {v}\r\n" for k, v in r.headers.items()).encode("latin-1")
                + b"\r\n"
                + r.body
                for r in self.requests
            )

    # --- serving -------------------------------------------------------------------

    def _handle(self, handler: _Handler, raw: bytes) -> None:
        with self._cond:
            plan = self._plans.pop(0) if self._plans else None
            latch = self._latches[-1] if self._latches else None
        if latch is not None:
            latch._hold()
        headers: dict[str, str] = {}
        for name, value in handler.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            body: bytes | None = _decompress(raw, headers.get("content-encoding", "").lower())
        except ValueError:
            body = None
        status, spans, points = _evaluate(handler.path, content_type, body)
        if plan is not None:
            status = 0 if plan.garbage else plan.status
        request = ReceivedRequest(
            handler.path,
            headers,
            raw,
            raw if body is None else body,
            status,
            spans,
            content_type,
            points,
        )
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()
        try:
            if plan is not None and plan.garbage:
                handler.wfile.write(GARBAGE_RESPONSE)
            else:
                self._answer(handler, status, plan)
        except OSError:
            pass  # the client gave up (its timeout) while we held its request

    @staticmethod
    def _answer(handler: _Handler, status: int, plan: _Plan | None) -> None:
        ok = 200 <= status < 300
        body = plan.body if plan is not None and plan.body is not None else None
        if body is None and ok and urlsplit(handler.path).path == METRICS_PATH:
            body = ExportMetricsServiceResponse().SerializeToString()
        elif body is None and ok:
            body = ExportTraceServiceResponse().SerializeToString()
        elif body is None:
            body = f"{status} {handler.responses.get(status, ('',))[0]}\n".encode()
        handler.send_response(status)
        handler.send_header("Content-Type", PROTOBUF if ok else "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        if plan is not None and plan.retry_after is not None:
            handler.send_header("Retry-After", plan.retry_after)
        handler.end_headers()
        handler.wfile.write(body)

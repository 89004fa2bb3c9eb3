"""The in-process OTLP/HTTP receiver, driven by the real OTel exporter and by raw posts."""

from __future__ import annotations

import gzip
import http.client
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from mv37.rollout.testing import OTLPReceiver, ReceivedSpan

PROTOBUF = "application/x-protobuf"


class RecordingExporter(OTLPSpanExporter):
    """The real OTLP/HTTP exporter, remembering what each export returned."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: list[SpanExportResult] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = super().export(spans)
        self.results.append(result)
        return result


class Pipeline:
    """A private TracerProvider exporting to the receiver and into memory."""

    def __init__(self, endpoint: str, **exporter_kwargs: Any) -> None:
        self.exporter = RecordingExporter(endpoint=endpoint, **exporter_kwargs)
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": "receiver-tests", "deployment": "ci"})
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer: Tracer = self.provider.get_tracer("receiver.tests")


@pytest.fixture
def pipeline() -> Iterator[Callable[..., Pipeline]]:
    made: list[Pipeline] = []

    def make(endpoint: str, **exporter_kwargs: Any) -> Pipeline:
        made.append(Pipeline(endpoint, **exporter_kwargs))
        return made[-1]

    yield make
    for p in made:
        p.provider.shutdown()


def post(
    url: str,
    body: bytes,
    content_type: str = PROTOBUF,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    """POST with urllib; returns (status, body, lower-cased headers) for any HTTP answer."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return (
                response.status,
                response.read(),
                {k.lower(): v for k, v in response.headers.items()},
            )
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read(), {k.lower(): v for k, v in error.headers.items()}


def any_value(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    assert isinstance(value, dict)
    return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))


def key_values(values: dict[str, object]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in values.items()]


def export_request(*names: str, attributes: dict[str, object] | None = None) -> bytes:
    """A serialized ExportTraceServiceRequest with one root span per name."""
    spans = [
        PbSpan(
            name=name,
            trace_id=bytes([i + 1]) * 16,
            span_id=bytes([i + 1]) * 8,
            kind=PbSpan.SPAN_KIND_INTERNAL,
            attributes=key_values(attributes or {}),
        )
        for i, name in enumerate(names)
    ]
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    )
    return bytes(request.SerializeToString())


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


# --- decoding -----------------------------------------------------------------------


def test_sdk_spans_decode_with_ids_parents_kinds_events_links_status_and_resource(
    receiver: OTLPReceiver, pipeline: Callable[..., Pipeline]
) -> None:
    p = pipeline(receiver.endpoint)
    with p.tracer.start_as_current_span("other"):
        pass
    [other] = p.memory.get_finished_spans()
    assert other.context is not None
    root_attributes: dict[str, AttributeValue] = {
        "s": "text",
        "b": True,
        "i": 42,
        "f": 1.5,
        "strs": ["a", "b"],
        "ints": [1, 2],
    }
    with (
        p.tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes=root_attributes),
        p.tracer.start_as_current_span(
            "child", kind=SpanKind.CLIENT, links=[Link(other.context)]
        ) as child,
    ):
        child.add_event("tick", {"n": 7, "label": "first"})
        child.set_status(Status(StatusCode.ERROR, "boom"))

    spans = {s.name: s for s in receiver.wait_for_spans(3)}
    sdk = {s.name: s for s in p.memory.get_finished_spans()}
    assert list(spans) == ["other", "child", "root"]  # the order they ended and were exported
    root, child_span = spans["root"], spans["child"]

    assert (root.trace_id, root.span_id) == hex_ids(sdk["root"])
    assert (child_span.trace_id, child_span.span_id) == hex_ids(sdk["child"])
    assert (len(root.trace_id), len(root.span_id)) == (32, 16)
    assert root.parent_span_id is None
    assert child_span.parent_span_id == root.span_id
    assert (root.kind, child_span.kind, spans["other"].kind) == ("SERVER", "CLIENT", "INTERNAL")
    assert root.attributes == root_attributes
    assert child_span.events == (("tick", {"n": 7, "label": "first"}),)
    assert child_span.links == (hex_ids(other),)
    assert (child_span.status_code, child_span.status_message) == ("ERROR", "boom")
    assert root.status_code == "UNSET"
    assert root.resource["service.name"] == "receiver-tests"
    assert root.resource["deployment"] == "ci"
    assert root.scope_name == "receiver.tests"
    assert root.start_time_unix_nano == sdk["root"].start_time
    assert root.end_time_unix_nano == sdk["root"].end_time
    assert p.exporter.results == [SpanExportResult.SUCCESS] * 3


def test_raw_request_decodes_every_any_value_type_and_trace_state(receiver: OTLPReceiver) -> None:
    attributes: dict[str, object] = {
        "str": "s",
        "bool": False,
        "int": -3,
        "double": 2.25,
        "bytes": b"\x00\xff",
        "array": [1, "two", [3.0]],
        "kvlist": {"inner": "v", "nested": {"deep": True}},
    }
    span = PbSpan(
        name="raw",
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        parent_span_id=bytes(range(8, 16)),
        kind=PbSpan.SPAN_KIND_CONSUMER,
        trace_state="vendor=value",
        start_time_unix_nano=10,
        end_time_unix_nano=20,
        attributes=[*key_values(attributes), KeyValue(key="empty", value=AnyValue())],
        events=[PbSpan.Event(name="e", attributes=key_values({"k": [True]}))],
        links=[PbSpan.Link(trace_id=b"\x11" * 16, span_id=b"\x22" * 8)],
        status=PbStatus(code=PbStatus.STATUS_CODE_OK, message="fine"),
    )
    body = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=PbResource(attributes=key_values({"service.name": "raw-svc"})),
                scope_spans=[
                    ScopeSpans(scope=InstrumentationScope(name="raw.scope"), spans=[span])
                ],
            )
        ]
    ).SerializeToString()

    assert post(receiver.endpoint, body)[0] == 200

    [got] = receiver.wait_for_spans(1)
    assert got == ReceivedSpan(
        name="raw",
        trace_id=bytes(range(16)).hex(),
        span_id="0001020304050607",
        parent_span_id="08090a0b0c0d0e0f",
        kind="CONSUMER",
        attributes={**attributes, "empty": None},
        events=(("e", {"k": [True]}),),
        links=(("11" * 16, "22" * 8),),
        status_code="OK",
        status_message="fine",
        resource={"service.name": "raw-svc"},
        scope_name="raw.scope",
        start_time_unix_nano=10,
        end_time_unix_nano=20,
        trace_state="vendor=value",
    )


# --- compression ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compression", "encoding"),
    [
        (Compression.NoCompression, None),
        (Compression.Gzip, "gzip"),
        (Compression.Deflate, "deflate"),
    ],
)
def test_exporter_compression_is_decoded(
    receiver: OTLPReceiver,
    pipeline: Callable[..., Pipeline],
    compression: Compression,
    encoding: str | None,
) -> None:
    p = pipeline(receiver.endpoint, compression=compression)
    with p.tracer.start_as_current_span("compressed", attributes={"payload": "x" * 500}):
        pass

    [span] = receiver.wait_for_spans(1)
    assert span.attributes["payload"] == "x" * 500
    [request] = receiver.requests
    assert request.headers.get("content-encoding") == encoding
    assert request.content_type == PROTOBUF
    assert request.path == "/v1/traces"
    assert ExportTraceServiceRequest.FromString(request.body).resource_spans
    if encoding is None:
        assert request.raw_body == request.body
    else:
        assert len(request.raw_body) < len(request.body)  # 500 x's compress well


def test_raw_deflate_without_zlib_header_is_decoded(receiver: OTLPReceiver) -> None:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = compressor.compress(export_request("raw-deflate")) + compressor.flush()

    status, _, _ = post(receiver.endpoint, raw, headers={"Content-Encoding": "deflate"})

    assert status == 200
    assert [s.name for s in receiver.spans()] == ["raw-deflate"]


def test_all_bytes_has_headers_and_decompressed_body_and_clear_forgets(
    receiver: OTLPReceiver,
) -> None:
    body = gzip.compress(export_request("secret-scan", attributes={"key": "needle-value"}))
    assert b"needle-value" not in body

    post(receiver.endpoint, body, headers={"Content-Encoding": "gzip", "X-Probe": "header-value"})

    everything = receiver.all_bytes()
    assert b"needle-value" in everything
    assert b"x-probe: header-value" in everything
    receiver.clear()
    assert receiver.requests == []
    assert receiver.spans() == []
    assert receiver.all_bytes() == b""


# --- scripted answers ------------------------------------------------------------


def test_exporter_retries_after_503_with_retry_after(
    receiver: OTLPReceiver, pipeline: Callable[..., Pipeline]
) -> None:
    receiver.respond_with(503, retry_after="0")
    p = pipeline(receiver.endpoint, timeout=5)
    with p.tracer.start_as_current_span("retried"):
        pass

    assert [s.name for s in receiver.wait_for_spans(1)] == ["retried"]
    assert [r.status for r in receiver.requests] == [503, 200]
    assert receiver.requests[0].spans == receiver.requests[1].spans  # the same batch, resent
    assert len(receiver.spans()) == 1  # the 503 answer's copy is not counted
    assert p.exporter.results == [SpanExportResult.SUCCESS]


def test_scripted_statuses_are_used_in_order_with_headers_and_body(
    receiver: OTLPReceiver,
) -> None:
    receiver.respond_with(503, 429, retry_after="7", body=b"busy")

    answers = [post(receiver.endpoint, export_request(f"s{i}")) for i in range(3)]

    assert [a[0] for a in answers] == [503, 429, 200]
    assert [a[1] for a in answers[:2]] == [b"busy", b"busy"]
    assert [a[2].get("retry-after") for a in answers] == ["7", "7", None]
    assert answers[2][2]["content-type"] == PROTOBUF
    assert ExportTraceServiceResponse.FromString(answers[2][1]) == ExportTraceServiceResponse()
    assert [s.name for s in receiver.spans()] == ["s2"]


def test_400_makes_the_exporter_fail_and_is_recorded_but_not_accepted(
    receiver: OTLPReceiver, pipeline: Callable[..., Pipeline]
) -> None:
    receiver.respond_with(400)
    p = pipeline(receiver.endpoint, timeout=2)
    with p.tracer.start_as_current_span("rejected"):
        pass
    with p.tracer.start_as_current_span("accepted"):
        pass

    assert p.exporter.results == [SpanExportResult.FAILURE, SpanExportResult.SUCCESS]
    assert [r.status for r in receiver.requests] == [400, 200]
    assert [s.name for s in receiver.requests[0].spans] == ["rejected"]
    assert [s.name for s in receiver.spans()] == ["accepted"]


def test_garbage_connection_makes_urllib_raise_then_service_resumes(
    receiver: OTLPReceiver,
) -> None:
    receiver.respond_garbage()

    with pytest.raises(http.client.HTTPException):
        post(receiver.endpoint, export_request("lost"))
    assert post(receiver.endpoint, export_request("kept"))[0] == 200

    assert [r.status for r in receiver.requests] == [0, 200]
    assert [s.name for s in receiver.spans()] == ["kept"]


def test_garbage_body_is_a_200_that_does_not_parse(receiver: OTLPReceiver) -> None:
    receiver.reply_garbage_body()

    status, body, headers = post(receiver.endpoint, export_request("junk-answer"))

    assert (status, headers["content-type"]) == (200, PROTOBUF)
    with pytest.raises(Exception) as info:
        ExportTraceServiceResponse.FromString(body)
    assert type(info.value).__name__ == "DecodeError"
    assert post(receiver.endpoint, export_request("next"))[1] == b""  # back to normal


def test_partial_success_body_carries_rejected_count(receiver: OTLPReceiver) -> None:
    receiver.partial_success(rejected=3, message="too many attributes")

    status, body, _ = post(receiver.endpoint, export_request("a", "b", "c"))

    assert status == 200
    partial = ExportTraceServiceResponse.FromString(body).partial_success
    assert (partial.rejected_spans, partial.error_message) == (3, "too many attributes")


@pytest.mark.parametrize(
    ("path", "content_type", "body", "expected"),
    [
        ("/v1/traces", "application/json", b'{"resourceSpans": []}', 415),
        ("/v1/logs", PROTOBUF, b"", 404),
        ("/v1/traces", PROTOBUF, b"\xff\xff\xff\xff", 400),
    ],
)
def test_invalid_requests_are_rejected_and_recorded(
    receiver: OTLPReceiver, path: str, content_type: str, body: bytes, expected: int
) -> None:
    status, _, _ = post(receiver.url + path, body, content_type=content_type)

    assert status == expected
    [request] = receiver.requests
    assert (request.path, request.status, request.content_type) == (path, expected, content_type)
    assert request.spans == ()


# --- stalls, outages and waiting ------------------------------------------------------


def post_in_thread(url: str, results: list[int]) -> threading.Thread:
    thread = threading.Thread(
        target=lambda: results.append(post(url, export_request("held"))[0]), daemon=True
    )
    thread.start()
    return thread


def test_stalled_request_waits_for_release(receiver: OTLPReceiver) -> None:
    latch = receiver.stall()
    results: list[int] = []
    client = post_in_thread(receiver.endpoint, results)

    assert latch.arrived.wait(5)
    assert latch.held == 1
    assert results == []
    assert receiver.requests == []
    assert client.is_alive()

    latch.release()
    client.join(5)
    assert results == [200]
    assert [s.name for s in receiver.wait_for_spans(1)] == ["held"]


def test_stop_refuses_connections_and_start_rebinds_the_same_port(
    receiver: OTLPReceiver,
) -> None:
    port = receiver.port
    assert port != 0
    assert receiver.url == f"http://127.0.0.1:{port}"
    assert receiver.endpoint == f"http://127.0.0.1:{port}/v1/traces"

    receiver.stop()
    with pytest.raises(urllib.error.URLError):
        post(receiver.endpoint, export_request("refused"))
    receiver.stop()  # idempotent

    assert receiver.start() is receiver
    assert receiver.port == port
    assert post(receiver.endpoint, export_request("back"))[0] == 200
    assert [s.name for s in receiver.spans()] == ["back"]


def test_stop_with_a_stalled_request_does_not_hang(receiver: OTLPReceiver) -> None:
    latch = receiver.stall()
    results: list[int] = []
    client = post_in_thread(receiver.endpoint, results)
    assert latch.arrived.wait(5)

    stopper = threading.Thread(target=receiver.stop, daemon=True)
    stopper.start()
    stopper.join(5)

    assert not stopper.is_alive()
    client.join(5)
    assert results == [200]  # released and answered on its open connection
    with pytest.raises(urllib.error.URLError):
        post(receiver.endpoint, export_request("after-stop"))


def test_wait_for_spans_and_requests_raise_on_timeout(receiver: OTLPReceiver) -> None:
    post(receiver.endpoint, export_request("only-one"))

    assert [s.name for s in receiver.wait_for_spans(1, timeout=1)] == ["only-one"]
    with pytest.raises(AssertionError, match=r"expected 2 spans.*1 arrived.*only-one"):
        receiver.wait_for_spans(2, timeout=0.05)
    with pytest.raises(AssertionError, match=r"expected 2 requests.*1 arrived.*\[200\]"):
        receiver.wait_for_requests(2, timeout=0.05)


def test_wait_for_spans_wakes_when_spans_arrive(receiver: OTLPReceiver) -> None:
    results: list[int] = []
    client = post_in_thread(receiver.endpoint, results)

    assert [s.name for s in receiver.wait_for_spans(1, timeout=5)] == ["held"]
    client.join(5)
    assert [r.status for r in receiver.wait_for_requests(1)] == [200]

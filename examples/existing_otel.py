"""Rollout next to an OpenTelemetry setup you already have.

The application below owns its OpenTelemetry SDK: it builds a `TracerProvider`, adds
its own span processor (an in-memory exporter here, so the script runs offline; pass
`--json` to also print every span with OTel's `ConsoleSpanExporter`) and installs it
globally. An HTTP handler opens a server span, `POST /chat`, the way a web framework
instrumentation would, and calls an `@rollout.agent` function that calls an
`@rollout.tool`.

`rollout.init(tracer_provider=provider, console=False)` makes Rollout emit through that
provider: it installs nothing global and replaces nothing. The agent's span becomes the
child of the HTTP span in the same OTel trace, so a backend (Jaeger, Tempo, ...) shows
the request and the agent run as one trace:

    POST /chat                           the app's span (SpanKind.SERVER)
    └─ invoke_agent support_agent        Rollout @agent
       └─ execute_tool get_weather       Rollout @tool

Without `tracer_provider=`, `rollout.init()` finds the SDK provider installed globally
and does the same: it emits through it and adds its own exporter (when a destination
such as `ROLLOUT_BASE_URL` is set), exporting only the spans of Rollout traces unless
`export_all_spans=True`.

    .venv/bin/python examples/existing_otel.py [--json]
"""

from __future__ import annotations

import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from mv37 import rollout

# -- the application's own OpenTelemetry setup ----------------------------------------------

provider = TracerProvider(resource=Resource.create({"service.name": "support-api"}))
memory = InMemorySpanExporter()
provider.add_span_processor(SimpleSpanProcessor(memory))
if "--json" in sys.argv[1:]:
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
trace.set_tracer_provider(provider)
http_tracer = trace.get_tracer("support_api.http")

# -- Rollout emits through that provider ----------------------------------------------------

rollout.init(tracer_provider=provider, console=False, agent_name="support_agent")


@rollout.tool("get_weather")
def get_weather(city: str) -> dict[str, object]:
    """A tool: its arguments and result are recorded on one span."""
    return {"city": city, "temp": 21, "conditions": "sunny"}


@rollout.agent("support_agent")
def support_agent(question: str) -> str:
    """The agent entry point: a Rollout trace, here nested in the caller's HTTP span."""
    weather = get_weather("Paris")
    return f"It's {weather['temp']}°C and {weather['conditions']} in Paris."


def post_chat(body: dict[str, str]) -> tuple[int, str, str]:
    """What a web framework's instrumentation does around a request handler.

    Returns the status code, the answer, and the HTTP span's trace id (hex).
    """
    with http_tracer.start_as_current_span(
        "POST /chat",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "POST",
            "http.route": "/chat",
            "url.path": "/chat",
            "url.scheme": "http",
        },
    ) as span:
        answer = support_agent(body["question"])
        span.set_attribute("http.response.status_code", 200)
        return 200, answer, f"{span.get_span_context().trace_id:032x}"


# -- a readable summary of what the app's exporter received ---------------------------------


def _label(span: ReadableSpan) -> str:
    kind = (span.attributes or {}).get("rollout.span.type") or span.kind.name
    scope = span.instrumentation_scope.name if span.instrumentation_scope else "?"
    return f"{span.name}  ({kind}, {scope})"


def summarize(spans: tuple[ReadableSpan, ...]) -> list[str]:
    """The spans as a tree, then one row per span: name, parent name, trace id."""
    by_id = {span.context.span_id: span for span in spans if span.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent_id = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent_id if parent_id in by_id else None, []).append(span)

    lines: list[str] = []

    def walk(span: ReadableSpan, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        lines.append(prefix + branch + _label(span))
        kids = children.get(span.context.span_id if span.context else None, [])
        deeper = "" if top else prefix + ("   " if last else "│  ")
        for i, kid in enumerate(kids):
            walk(kid, deeper, i == len(kids) - 1, top=False)

    for root in children.get(None, []):
        walk(root, "", last=True, top=True)

    width = max(len(span.name) for span in spans) + 2
    lines += ["", f"{'span':<{width}}{'parent':<{width}}trace id"]
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = by_id.get(span.parent.span_id) if span.parent is not None else None
        trace_id = f"{span.context.trace_id:032x}" if span.context else "?"
        parent_name = parent.name if parent is not None else "-"
        lines.append(f"{span.name:<{width}}{parent_name:<{width}}{trace_id}")
    return lines


def main() -> int:
    """Serve one request, then show what the application's own exporter received."""
    status, answer, http_trace_id = post_chat({"question": "What's the weather in Paris?"})
    print(f"POST /chat -> {status}: {answer}")

    rollout.shutdown()  # flushes what Rollout added; the provider stays the app's
    provider.force_flush()
    spans = memory.get_finished_spans()
    print()
    print("\n".join(summarize(spans)))

    trace_ids = {span.context.trace_id for span in spans if span.context is not None}
    names = {span.name: span for span in spans}
    http = names.get("POST /chat")
    agent = names.get("invoke_agent support_agent")
    tool = names.get("execute_tool get_weather")
    nested = (
        http is not None
        and agent is not None
        and tool is not None
        and agent.parent is not None
        and http.context is not None
        and agent.parent.span_id == http.context.span_id
        and tool.parent is not None
        and agent.context is not None
        and tool.parent.span_id == agent.context.span_id
        and trace_ids == {int(http_trace_id, 16)}
    )
    print()
    if not nested:
        print("unexpected: the agent span is not nested under the HTTP span in one trace")
        return 1
    print(f"one trace {http_trace_id}: the agent span is a child of POST /chat")
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

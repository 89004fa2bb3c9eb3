"""OpenAI Agents SDK bridge: its traces and spans become Rollout traces and spans.

A tracing processor registered with the `agents` package maps each of its traces to a
Rollout trace and each of its spans to a Rollout span in the same OTel trace as the
code around the run (a Rollout trace or another instrumentation's span):

| agents span data | Rollout span type | name |
|---|---|---|
| `AgentSpanData` | `agent` | the agent's name |
| `GenerationSpanData`, `ResponseSpanData` | `llm` | the model |
| `FunctionSpanData` | `tool` | the function's name |
| `HandoffSpanData` | `handoff` | `from -> to` |
| `GuardrailSpanData` | `guardrail` | the guardrail's name |
| anything else | `span` | its name or type |

Example:
    >>> import mv37.rollout as rollout
    >>> rollout.init()  # doctest: +SKIP
    >>> rollout.instrument_openai_agents()  # doctest: +SKIP
    >>> await Runner.run(agent, "hi")  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context

from mv37.rollout import semconv as sc
from mv37.rollout._attributes import (
    LLM,
    TOOL,
    llm_attributes,
    plan_span,
    type_attributes,
    user_attributes,
)
from mv37.rollout._context import context_with
from mv37.rollout._diagnostics import internal_error
from mv37.rollout._span import Span, ToolCall
from mv37.rollout.integrations._errors import MissingExtraError

if TYPE_CHECKING:
    from mv37.rollout._client import Rollout
    from mv37.rollout._trace import Trace

EXTRA = "openai-agents"


def _agents() -> Any:
    try:
        import agents
    except ImportError as exc:
        raise MissingExtraError("openai-agents", EXTRA) from exc
    return agents


def _client(client: Rollout | None) -> Rollout:
    if client is not None:
        return client
    from mv37.rollout._global import get_client

    return get_client()


def _usage(raw: Any) -> dict[str, int]:
    """Token counts from an agents usage dict or an OpenAI usage object."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        from mv37.rollout.integrations import usage_from_openai

        return {k: int(v) for k, v in usage_from_openai(raw).items() if isinstance(v, (int, float))}
    out: dict[str, int] = {}
    for ours, theirs in (
        ("input_tokens", ("input_tokens", "prompt_tokens")),
        ("output_tokens", ("output_tokens", "completion_tokens")),
        ("total_tokens", ("total_tokens",)),
    ):
        for key in theirs:
            if isinstance(raw.get(key), int):
                out[ours] = raw[key]
                break
    return out


def _describe(data: Any) -> tuple[str, str, dict[str, Any]]:
    """(Rollout span type, name, extra user attributes) for an agents span data."""
    kind = getattr(data, "type", "span")
    if kind == "agent":
        extra = {
            key: value
            for key in ("handoffs", "tools", "output_type")
            if (value := getattr(data, key, None))
        }
        return "agent", str(data.name), extra
    if kind == "generation":
        return LLM, str(getattr(data, "model", None) or "generation"), {}
    if kind == "response":
        response = getattr(data, "response", None)
        return LLM, str(getattr(response, "model", None) or "response"), {}
    if kind == "function":
        return TOOL, str(data.name), {}
    if kind == "handoff":
        source = getattr(data, "from_agent", None) or "?"
        target = getattr(data, "to_agent", None) or "?"
        return "handoff", f"{source} -> {target}", {"from_agent": source, "to_agent": target}
    if kind == "guardrail":
        return "guardrail", str(data.name), {"triggered": bool(getattr(data, "triggered", False))}
    name = getattr(data, "name", None) or kind
    return "span", str(name), {"agents_span_type": kind}


class RolloutAgentsProcessor:
    """An `agents` tracing processor that records into Rollout (built lazily as a subclass)."""

    def __init__(self, client: Rollout | None = None) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._traces: dict[str, Trace] = {}
        self._spans: dict[str, tuple[Span, Trace]] = {}

    # -- traces ---------------------------------------------------------------------------

    def on_trace_start(self, trace: Any) -> None:
        """Open a Rollout trace, a child of whatever is current where the run started."""
        try:
            client = _client(self._client)
            metadata = getattr(trace, "metadata", None) or {}
            ours = client.start_trace(
                "trace",
                str(getattr(trace, "name", None) or "agents workflow"),
                conversation_id=getattr(trace, "group_id", None),
                attributes=dict(metadata) if isinstance(metadata, dict) else None,
            )
            with self._lock:
                self._traces[trace.trace_id] = ours
        except Exception as exc:
            internal_error("openai-agents trace start", exc)

    def on_trace_end(self, trace: Any) -> None:
        """End the Rollout trace."""
        try:
            with self._lock:
                ours = self._traces.pop(trace.trace_id, None)
            if ours is not None:
                ours.end()
        except Exception as exc:
            internal_error("openai-agents trace end", exc)

    # -- spans ----------------------------------------------------------------------------

    def on_span_start(self, span: Any) -> None:
        """Open the matching Rollout span under its agents parent (or the trace)."""
        try:
            with self._lock:
                trace = self._traces.get(span.trace_id)
                parent = self._spans.get(span.parent_id) if span.parent_id else None
            if trace is None:
                return
            span_type, name, extra = _describe(span.span_data)
            model = name if span_type == LLM else None
            attrs = {**type_attributes(span_type, name), **user_attributes(extra, 4096)}
            if span_type == LLM:
                attrs.update(llm_attributes(model=model, provider="openai"))
            plan = plan_span(span_type, name, attrs, model)
            cls = ToolCall if span_type == TOOL else Span
            token = None
            if parent is not None:
                parent_span = parent[0]
                token = otel_context.attach(context_with(parent_span.otel_span, trace, parent_span))
            try:
                ours = trace.start_child(cls, plan)
            finally:
                if token is not None:
                    otel_context.detach(token)
            with self._lock:
                self._spans[span.span_id] = (ours, trace)
        except Exception as exc:
            internal_error("openai-agents span start", exc)

    def on_span_end(self, span: Any) -> None:
        """Record what the span carried at its end (payloads, usage, error) and end it."""
        try:
            with self._lock:
                entry = self._spans.pop(span.span_id, None)
            if entry is None:
                return
            ours, _ = entry
            data = span.span_data
            kind = getattr(data, "type", "")
            if kind in ("generation", "function"):
                if getattr(data, "input", None) is not None:
                    ours.record_input(data.input)
                if getattr(data, "output", None) is not None:
                    ours.record_output(data.output)
                usage = _usage(getattr(data, "usage", None))
                if usage:
                    ours.set_usage(**usage)
            elif kind == "response":
                response = getattr(data, "response", None)
                if getattr(data, "input", None) is not None:
                    ours.record_input(data.input)
                if response is not None:
                    ours.record_output(getattr(response, "output_text", None) or response)
                    usage = _usage(getattr(response, "usage", None))
                    if usage:
                        ours.set_usage(**usage)
            elif kind in ("handoff", "guardrail"):
                # Known only at the end: the handoff's target, whether the guardrail tripped.
                _, name, extra = _describe(data)
                ours._set(user_attributes(extra, 4096))
                if kind == "handoff":
                    ours.otel_span.update_name(f"handoff {name}")
                    ours._set({sc.ROLLOUT_SPAN_NAME: name})
            error = getattr(span, "error", None)
            if error:
                message = error.get("message") if isinstance(error, dict) else str(error)
                ours._mark_error(str(message or "error"))
            ours._finish()
        except Exception as exc:
            internal_error("openai-agents span end", exc)

    def shutdown(self) -> None:
        """Nothing of our own to release (the Rollout client flushes on its own)."""

    def force_flush(self) -> None:
        """Flush the Rollout client."""
        _client(self._client).flush()


class _Registration:
    """The one processor `instrument_openai_agents` registers, and whether it is in."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.processor: Any = None
        self.added = False


_registration = _Registration()


def openai_agents_processor(*, client: Rollout | None = None) -> Any:
    """A tracing processor for `agents.add_trace_processor` (manual registration).

    Raises:
        MissingExtraError: The `openai-agents` package is not installed.
    """
    agents = _agents()

    class Processor(RolloutAgentsProcessor, agents.TracingProcessor):  # type: ignore[misc, name-defined]
        """Rollout's processor for the OpenAI Agents SDK."""

    return Processor(client)


def instrument_openai_agents(*, replace: bool = False, client: Rollout | None = None) -> Any:
    """Register Rollout's processor with the `agents` package (once) and return it.

    `replace=True` makes it the only processor (the SDK's default exporter to OpenAI is
    removed); otherwise it is added beside the existing ones.
    """
    agents = _agents()
    state = _registration
    with state.lock:
        if state.processor is None:
            state.processor = openai_agents_processor(client=client)
        if replace:
            agents.set_trace_processors([state.processor])
            state.added = True
        elif not state.added:
            agents.add_trace_processor(state.processor)
            state.added = True
        return state.processor

"""OpenAI Agents SDK bridge: its traces and spans become Rollout traces and spans.

A tracing processor registered with the `agents` package maps each of its traces to a
Rollout trace and each of its spans to a Rollout span, in the same OTel trace as the
code around the run (a Rollout trace or another instrumentation's span). Nesting
follows the SDK's parent ids; spans start with an explicit parent, so callbacks from
other tasks or threads nest correctly.

| agents | RolloutCore span type | OTel name | recorded |
|---|---|---|---|
| `Trace` | `trace` | `invoke_workflow {workflow}` | see below |
| `TaskSpanData` | `task` | the workflow name | |
| `AgentSpanData` | `agent` | `invoke_agent {agent}` | agent name, tools, handoffs, output type |
| `TurnSpanData` | `turn` | `turn {n}` | |
| `GenerationSpanData` | `llm` | `chat {model}` | model, model config, messages, usage |
| `ResponseSpanData` | `llm` | `chat {model}` | response id and model, messages, usage |
| `FunctionSpanData` | `tool` | `execute_tool {name}` | arguments, result |
| `HandoffSpanData` | `handoff` | `handoff {from} -> {to}` | from/to agent |
| `GuardrailSpanData` | `guardrail` | `guardrail {name}` | whether it tripped |
| `CustomSpanData` | `span` | its name | its data as attributes |
| anything else | the SDK's type | its name or type | |

The trace records the group id as conversation id, the metadata as attributes (with
`user_id`, `session_id`, `conversation_id`, `account_id` promoted to trace context) and
the SDK's trace id as `external_trace_id`, so `rollout.feedback(...,
external_trace_id=...)` finds it. Usage is taken from the model spans only (task and
turn spans repeat it), so trace totals count each call once.

A span the SDK ended with an error (`span.error`) ends with status ERROR. Callbacks
never raise into the SDK.

Example:
    >>> import mv37.rollout as rollout
    >>> rollout.init()  # doctest: +SKIP
    >>> rollout.instrument_openai_agents()  # doctest: +SKIP
    >>> await Runner.run(agent, "hi")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, cast

from mv37.rollout import semconv as sc
from mv37.rollout.base._diagnostics import internal_error
from mv37.rollout.facade._context import attach_scope, detach_scope
from mv37.rollout.facade._current import get_client
from mv37.rollout.facade._span import Span, ToolCall
from mv37.rollout.integrations._agents_mapping import describe, error_message, otel_name, record_end
from mv37.rollout.integrations._errors import MissingExtraError
from mv37.rollout.vocabulary._attributes import (
    AGENT,
    TOOL,
    TRACE,
    context_attributes,
    plan_span,
    user_attributes,
)
from mv37.rollout.vocabulary._fields import as_str, attributes_option

if TYPE_CHECKING:
    from agents.tracing import Span as AgentsSpan
    from agents.tracing import Trace as AgentsTrace
    from agents.tracing import TracingProcessor

    from mv37.rollout.facade._client import RolloutCore
    from mv37.rollout.facade._trace import Trace

EXTRA: Final = "openai-agents"


def _agents() -> ModuleType:
    try:
        import agents
    except ImportError as exc:
        raise MissingExtraError("openai-agents", EXTRA) from exc
    return agents


# -- the processor ----------------------------------------------------------------------------


class RolloutAgentsProcessor:
    """The processor's behaviour; `openai_agents_processor` makes it an `agents` subclass.

    `client` is the Rollout client to record into: `None` follows the global client
    (also when the given one has been shut down, say by a later `init()`).
    `attributes` are user attributes put on every trace and span it records.
    """

    def __init__(
        self, client: RolloutCore | None = None, attributes: Mapping[str, Any] | None = None
    ) -> None:
        self.client = client
        self.attributes = dict(attributes or {})
        self._lock = threading.Lock()
        self._traces: dict[str, Trace] = {}
        self._spans: dict[str, tuple[Span, str]] = {}  # agents span id -> (ours, trace id)

    def _rollout(self) -> RolloutCore:
        client = self.client
        if client is not None and not client.is_shut_down:
            return client
        return get_client()

    # -- traces ---------------------------------------------------------------------------

    def on_trace_start(self, trace: AgentsTrace) -> None:
        """Open a Rollout trace, a child of whatever is current where the run started."""
        try:
            metadata = getattr(trace, "metadata", None)
            ours = self._rollout().start_trace(
                TRACE,
                str(trace.name or "Agent workflow"),
                external_trace_id=trace.trace_id,
                conversation_id=as_str(getattr(trace, "group_id", None)),
                context=metadata if isinstance(metadata, Mapping) else None,
                attributes=self.attributes or None,
            )
            with self._lock:
                self._traces[trace.trace_id] = ours
        except Exception as exc:
            internal_error("openai-agents trace start", exc)

    def on_trace_end(self, trace: AgentsTrace) -> None:
        """End the Rollout trace (and any of its spans the SDK left open)."""
        try:
            with self._lock:
                ours = self._traces.pop(trace.trace_id, None)
                left = [k for k, (_, t) in self._spans.items() if t == trace.trace_id]
                leftovers = [self._spans.pop(key)[0] for key in left]
            for span in leftovers:
                span.end()
            if ours is not None:
                ours.end()
        except Exception as exc:
            internal_error("openai-agents trace end", exc)

    # -- spans ----------------------------------------------------------------------------

    def on_span_start(self, span: AgentsSpan[Any]) -> None:
        """Open the matching Rollout span under its agents parent (or the trace)."""
        try:
            with self._lock:
                trace = self._traces.get(span.trace_id)
                parent = self._spans.get(span.parent_id) if span.parent_id else None
            if trace is None:
                return
            limit = trace._client.config.max_payload_chars
            span_type, name, attrs, model = describe(span.span_data, limit)
            if parent is not None and span_type != AGENT:
                # The innermost agent's name, not the client's `agent_name`.
                agent = (parent[0]._facts or {}).get(sc.GEN_AI_AGENT_NAME)
                if agent:
                    attrs.update(context_attributes(agent_name=str(agent)))
            if self.attributes:
                attrs.update(user_attributes(self.attributes, limit))
            plan = plan_span(span_type, name, attrs, model)
            if (special := otel_name(span_type, name)) is not None:
                plan = plan._replace(otel_name=special)
            cls = ToolCall if span_type == TOOL else Span
            token = None
            if parent is not None:  # an explicit parent: callbacks may come from any task
                token = attach_scope(parent[0].otel_span, trace, parent[0])
            try:
                ours = trace.start_child(cls, plan)
            finally:
                detach_scope(token)
            with self._lock:
                self._spans[span.span_id] = (ours, span.trace_id)
        except Exception as exc:
            internal_error("openai-agents span start", exc)

    def on_span_end(self, span: AgentsSpan[Any]) -> None:
        """Record what the span carried at its end (payloads, usage, error) and end it."""
        try:
            with self._lock:
                entry = self._spans.pop(span.span_id, None)
            if entry is None:
                return
            ours = entry[0]
            try:
                record_end(ours, span.span_data)
            finally:
                ours.end(error=error_message(span.error))
        except Exception as exc:
            internal_error("openai-agents span end", exc)

    def shutdown(self) -> None:
        """Nothing of our own to release (the Rollout client shuts down on its own)."""

    def force_flush(self) -> None:
        """Flush the Rollout client."""
        try:
            self._rollout().flush()
        except Exception as exc:
            internal_error("openai-agents force_flush", exc)


@functools.cache
def _processor_class(agents: ModuleType) -> type[RolloutAgentsProcessor]:
    """The processor as a subclass of `agents.TracingProcessor`, built once."""

    class RolloutTracingProcessor(RolloutAgentsProcessor, agents.TracingProcessor):  # type: ignore[misc, name-defined]
        """Rollout's tracing processor for the OpenAI Agents SDK."""

    return RolloutTracingProcessor


def openai_agents_processor(
    *, client: RolloutCore | None = None, **options: Any
) -> TracingProcessor:
    """A tracing processor recording into Rollout, for manual registration.

    Options: `attributes={...}`, user attributes on every trace and span it records.

    Example:
        >>> agents.add_trace_processor(rollout.openai_agents_processor())  # doctest: +SKIP

    Raises:
        MissingExtraError: The `openai-agents` package is not installed.
        TypeError: An unknown option.
    """
    attributes = attributes_option("openai_agents_processor", options)
    return cast("TracingProcessor", _processor_class(_agents())(client, attributes))


class _Registration:
    """The one processor `instrument_openai_agents` registers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.processor: TracingProcessor | None = None
        self.added = False  # used when the SDK's processor list cannot be read


_registration = _Registration()


def _registered(agents: ModuleType, processor: TracingProcessor) -> bool | None:
    """Whether `processor` is among the SDK's processors; None when that is unreadable.

    Read from the provider so that a processor removed by a later
    `set_trace_processors([...])` is added again by the next call.
    """
    provider = agents.tracing.get_trace_provider()
    processors = getattr(getattr(provider, "_multi_processor", None), "_processors", None)
    if not isinstance(processors, (list, tuple)):
        return None
    return any(p is processor for p in processors)


def instrument_openai_agents(
    *, replace: bool = False, client: RolloutCore | None = None, **options: Any
) -> TracingProcessor:
    """Register Rollout's processor with the `agents` package (once) and return it.

    `replace=True` makes it the only processor (the SDK's default exporter to OpenAI is
    removed); otherwise it is added beside the existing ones. Calling again adds no
    second processor; the latest call decides which client records (`None`: the
    global one) and with which options (`attributes={...}` on every trace and span).

    Example:
        >>> rollout.instrument_openai_agents()  # doctest: +SKIP

    Raises:
        MissingExtraError: The `openai-agents` package is not installed.
        TypeError: An unknown option.
    """
    attributes = attributes_option("instrument_openai_agents", options)
    agents = _agents()
    state = _registration
    with state.lock:
        processor = state.processor
        if processor is None:
            processor = state.processor = openai_agents_processor(
                client=client, attributes=attributes
            )
        else:
            ours = cast(RolloutAgentsProcessor, processor)
            ours.client = client
            ours.attributes = dict(attributes or {})
        if replace:
            agents.set_trace_processors([processor])
        else:
            registered = _registered(agents, processor)
            if not (state.added if registered is None else registered):
                agents.add_trace_processor(processor)
        state.added = True
        return processor

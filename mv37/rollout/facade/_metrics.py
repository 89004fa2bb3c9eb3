"""GenAI metrics recorded where each operation ends, whatever the trace sampling decided.

The scopes call `scope_ended` as their OTel span ends (sampled out or not: the facade
keeps what metrics need, the OTel span may not); `MetricsRecorder` turns the operation
into measurements:

- `@agent`, an Agents-SDK agent span: `gen_ai.invoke_agent.duration` (agent name);
- `@trace`, `rollout.trace`: `gen_ai.workflow.duration` (workflow name);
- `@tool`, `trace.tool`: `gen_ai.execute_tool.duration` (tool name, innermost agent);
- an `llm` span: `gen_ai.client.operation.duration` (operation, provider, request and
  response models, server, innermost agent), and with usage `gen_ai.client.token.usage`
  (per `gen_ai.token.type`: input, output) and `rollout.client.cost`;
- durations carry `error.type` when the operation failed (or was cancelled).

Each distinct attribute set is built once and its series kept (`_series`), so a
measurement costs a dict look-up and the sink's `add`. Attributes are bounded by the code
(names, models, providers, error classes): never ids, arguments or payloads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.trace import INVALID_SPAN

from mv37.rollout import semconv as sc
from mv37.rollout.base._diagnostics import internal_error
from mv37.rollout.vocabulary._attributes import AGENT, LLM, TOOL, TRACE

if TYPE_CHECKING:
    from mv37.rollout.facade._trace import Trace
    from mv37.rollout.pipeline._metrics_store import Group, Series, Sink

_SPECS: Final = {spec.name: spec for spec in sc.METRICS}
TOKEN_USAGE: Final = _SPECS[sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE]
OPERATION_DURATION: Final = _SPECS[sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION]
AGENT_DURATION: Final = _SPECS[sc.METRIC_GEN_AI_INVOKE_AGENT_DURATION]
TOOL_DURATION: Final = _SPECS[sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION]
WORKFLOW_DURATION: Final = _SPECS[sc.METRIC_GEN_AI_WORKFLOW_DURATION]
COST: Final = _SPECS[sc.METRIC_ROLLOUT_CLIENT_COST]

NOTED_KEYS: Final = (
    sc.GEN_AI_REQUEST_MODEL,
    sc.GEN_AI_RESPONSE_MODEL,
    sc.GEN_AI_PROVIDER_NAME,
    sc.SERVER_ADDRESS,
    sc.SERVER_PORT,
)
"""What an integration may learn about an LLM call after its span started (`note`)."""

MAX_SERIES: Final = 2000
"""Distinct attribute sets kept per client; beyond it new ones are dropped (logged once)."""

_LLM_KEYS: Final = (
    sc.GEN_AI_OPERATION_NAME,
    sc.GEN_AI_PROVIDER_NAME,
    sc.GEN_AI_REQUEST_MODEL,
    sc.GEN_AI_RESPONSE_MODEL,
    sc.SERVER_ADDRESS,
    sc.SERVER_PORT,
)


class _Dropped:
    """The series handed out past `MAX_SERIES`: measurements go nowhere."""

    __slots__ = ()

    def add(self, value: float) -> None:
        """Drop `value`."""


_DROPPED: Final = _Dropped()
_SPAN_KINDS: Final = frozenset({TOOL, LLM, AGENT})
MEASURED_TYPES: Final = frozenset({*_SPAN_KINDS, TRACE})
"""The span types a metric measures (a task, a retrieval or a custom type has none):
only their scopes read the clock at start (`_Scope._t0`)."""
_NO_FACTS: Final[Mapping[str, Any]] = {}


class MetricsRecorder:
    """Turns ended operations into measurements on `sink` (one per client)."""

    def __init__(self, sink: Sink, agent_name: str | None) -> None:
        self.sink = sink
        self.agent_name = agent_name
        self._series: dict[tuple[Any, ...], Series] = {}
        self._llm: dict[tuple[Any, ...], Group] = {}
        self._lock = threading.Lock()

    def _get(self, key: tuple[Any, ...], spec: sc.MetricSpec, attrs: dict[str, Any]) -> Series:
        """The series of `key` (first call: of `spec` with `attrs`, without empty values)."""
        series = self._series.get(key)
        if series is not None:
            return series
        with self._lock:
            series = self._series.get(key)
            if series is None:
                if len(self._series) >= MAX_SERIES:
                    from mv37.rollout.base._diagnostics import debug_once

                    debug_once(
                        "metric-series-limit",
                        "mv37.rollout: more than %d distinct metric attribute sets; "
                        "measurements of new ones are dropped",
                        MAX_SERIES,
                    )
                    return _DROPPED
                clean = {k: v for k, v in attrs.items() if v is not None and v != ""}
                series = self._series[key] = self.sink.series(spec, clean)
            return series

    # -- operations -------------------------------------------------------------------

    def tool(self, name: str, agent: str | None, error: str | None, seconds: float) -> None:
        """One tool execution."""
        key = (TOOL, name, agent, error)
        series = self._series.get(key) or self._get(
            key,
            TOOL_DURATION,
            {sc.GEN_AI_TOOL_NAME: name, sc.GEN_AI_AGENT_NAME: agent, sc.ERROR_TYPE: error},
        )
        series.add(seconds)

    def agent(self, name: str | None, error: str | None, seconds: float) -> None:
        """One agent invocation."""
        key = (AGENT, name, error)
        series = self._series.get(key) or self._get(
            key, AGENT_DURATION, {sc.GEN_AI_AGENT_NAME: name, sc.ERROR_TYPE: error}
        )
        series.add(seconds)

    def workflow(self, name: str | None, error: str | None, seconds: float) -> None:
        """One workflow."""
        key = (TRACE, name, error)
        series = self._series.get(key) or self._get(
            key, WORKFLOW_DURATION, {sc.GEN_AI_WORKFLOW_NAME: name, sc.ERROR_TYPE: error}
        )
        series.add(seconds)

    def llm(
        self,
        facts: Mapping[str, Any],
        usage: Mapping[str, int | float] | None,
        agent: str | None,
        error: str | None,
        seconds: float,
    ) -> None:
        """One LLM call: its duration, and its tokens and cost when it reported them."""
        get = facts.get
        call = (
            get(sc.GEN_AI_OPERATION_NAME),
            get(sc.GEN_AI_PROVIDER_NAME),
            get(sc.GEN_AI_REQUEST_MODEL),
            get(sc.GEN_AI_RESPONSE_MODEL),
            get(sc.SERVER_ADDRESS),
            get(sc.SERVER_PORT),
        )
        key = (LLM, call, agent, error)
        group = self._llm.get(key) or self._llm_group(key, call, agent, error)
        if usage:
            get = usage.get
            group.add((seconds, get("input_tokens"), get("output_tokens"), get("cost_usd")))
        else:
            group.add((seconds, None, None, None))

    def _llm_group(
        self, key: tuple[Any, ...], call: tuple[Any, ...], agent: str | None, error: str | None
    ) -> Group:
        """The series of one LLM call's attribute set, fed together, made once (tokens and
        cost are shared by its failed and successful calls: they carry no `error.type`)."""
        attrs = _llm_attributes(call, agent)
        cost_attrs = {k: v for k, v in attrs.items() if k in COST.attributes}
        series = (
            self._get(key, OPERATION_DURATION, {**attrs, sc.ERROR_TYPE: error}),
            self._get(
                (TOKEN_USAGE.name, call, agent, "input"),
                TOKEN_USAGE,
                {**attrs, sc.GEN_AI_TOKEN_TYPE: "input"},
            ),
            self._get(
                (TOKEN_USAGE.name, call, agent, "output"),
                TOKEN_USAGE,
                {**attrs, sc.GEN_AI_TOKEN_TYPE: "output"},
            ),
            self._get((COST.name, call, agent), COST, cost_attrs),
        )
        with self._lock:
            group = self._llm.get(key)
            if group is None:
                group = self._llm[key] = self.sink.group(series)
        return group


def _llm_attributes(call: tuple[Any, ...], agent: str | None) -> dict[str, Any]:
    attrs = dict(zip(_LLM_KEYS, call, strict=True))
    attrs[sc.GEN_AI_AGENT_NAME] = agent
    return attrs


# -- what the scopes call ------------------------------------------------------------------


def start_time(recorder: MetricsRecorder | None) -> int:
    """A scope's start for its duration (0: metrics are off, nothing will be recorded)."""
    return time.perf_counter_ns() if recorder is not None else 0


def error_type(exc: BaseException | str) -> str:
    """`error.type` of what ended an operation: the exception's class, or `error`."""
    return type(exc).__qualname__ if isinstance(exc, BaseException) else "error"


def innermost_agent(trace: Trace | None, default: str | None) -> str | None:
    """The name of the innermost `@agent` around `trace` (itself included), else `default`."""
    while trace is not None:
        if trace._span_type == AGENT:
            return trace._name
        trace = trace._parent
    return default


def scope_ended(scope: Any) -> None:
    """Record the operation `scope` (a `Trace`, `Span` or `ToolCall`) stood for; called as
    its span ends, with metrics on."""
    try:
        seconds = (perf_counter_ns() - scope._t0) / 1e9
        recorder = scope._client._metrics
        if recorder is None or scope._otel is INVALID_SPAN:
            return  # no active trace (a placeholder): nothing was an operation
        kind = scope._span_type
        error = scope._error_type
        trace = getattr(scope, "_trace", None)  # a Span's trace; a Trace has none
        if trace is None:
            if kind == AGENT:
                recorder.agent(scope._name, error, seconds)
            else:
                recorder.workflow(scope._name, error, seconds)
            return
        if kind not in _SPAN_KINDS:
            return  # task, retrieval, custom types: no GenAI metric
        facts = scope._facts or _NO_FACTS
        agent = facts.get(sc.GEN_AI_AGENT_NAME) or innermost_agent(trace, recorder.agent_name)
        if kind == TOOL:
            name = facts.get(sc.GEN_AI_TOOL_NAME) or kind
            recorder.tool(str(name), agent, error, seconds)
        elif kind == LLM:
            recorder.llm(facts, scope._usage, agent, error, seconds)
        else:  # an agent span of a bridge (the Agents SDK)
            recorder.agent(facts.get(sc.GEN_AI_AGENT_NAME), error, seconds)
    except Exception as exc:
        internal_error("record metrics", exc)


def note(span: Any, facts: Mapping[str, Any]) -> None:
    """What an integration learned about an LLM call (a `Span`) after it started
    (response model, server): kept for its metrics whether or not the span records
    (`NOTED_KEYS` only)."""
    if not span._t0:
        return
    picked = {k: facts[k] for k in NOTED_KEYS if facts.get(k) is not None}
    if picked:
        span._facts = {**(span._facts or {}), **picked}

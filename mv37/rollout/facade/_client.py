"""`RolloutCore`: the client's core. Holds the configuration and the pipeline; starts traces.

The public `Rollout` (surface layer, `mv37/rollout/_rollout.py`) adds the methods that
reach the integrations (`wrap`, `wrap_tools`, the Agents bridge, `auto_instrument`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import Any, TypeVar

from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import (
    INVALID_SPAN,
    Tracer,
)

from mv37.rollout import semconv as sc
from mv37.rollout.base._config import RolloutConfig, resolve_config
from mv37.rollout.base._diagnostics import debug_once, enable_debug_logging, internal_error
from mv37.rollout.facade._capture import capture_event
from mv37.rollout.facade._context import NoopScopes, current_trace
from mv37.rollout.facade._feedback import record_identity, record_outcome
from mv37.rollout.facade._metrics import MetricsRecorder
from mv37.rollout.facade._roots import presample, start_root_span, trace_context
from mv37.rollout.facade._span import Span, ToolCall
from mv37.rollout.facade._targets import TraceIndex
from mv37.rollout.facade._trace import Trace, null_span, null_trace
from mv37.rollout.facade._user import UserContext, UserFields
from mv37.rollout.pipeline._check import CheckResult, check_destination
from mv37.rollout.pipeline._console import ConsoleTreeProcessor
from mv37.rollout.pipeline._destination import (
    Destination,
    resolve_destination,
    warn_unused_settings,
)
from mv37.rollout.pipeline._pipeline import Pipeline
from mv37.rollout.pipeline._stats import Counters, RolloutStats
from mv37.rollout.vocabulary._attributes import (
    AGENT,
    Attributes,
    span_name,
    type_attributes,
    user_attributes,
)
from mv37.rollout.vocabulary._ids import (
    RolloutIdGenerator,
    sampling_bound,
)

T = TypeVar("T")
_AGENT_KEYS = (sc.ROLLOUT_AGENT_NAME, sc.GEN_AI_AGENT_NAME, sc.AGENT_NAME)
"""What names a trace's agent: a nested trace that is no agent keeps its parent's."""
C = TypeVar("C", bound="RolloutCore")
S = TypeVar("S", bound=Span)


class RolloutCore:
    """The Rollout client's core: configuration, the OTel pipeline, and trace factories.

    Arguments and their `ROLLOUT_*` environment variables are listed in `RolloutConfig`;
    an argument beats the variable, which beats the default.

    Example:
        >>> client = Rollout(agent_name="support_agent", sync_mode=True)  # doctest: +SKIP
        >>> with client.trace("support_agent") as trace:  # doctest: +SKIP
        ...     trace.message(role="user", content="hi")
    """

    def __init__(self, **config: Any) -> None:
        self.config: RolloutConfig = resolve_config(**config)
        self.destination: Destination | None = resolve_destination(self.config)
        warn_unused_settings(self.config, self.destination)
        self._setup(passive=False)

    @classmethod
    def passive(cls: type[C], config: RolloutConfig) -> C:
        """A client for use before `init()`: follows the global provider, adds nothing."""
        client = cls.__new__(cls)
        client.config = config
        try:
            client.destination = resolve_destination(config)
        except ValueError:
            client.destination = None
        client._setup(passive=True)
        return client

    def _setup(self, *, passive: bool) -> None:
        if self.config.debug:
            enable_debug_logging()
        self.traces = TraceIndex()
        self._pipeline: Pipeline | None = None
        self.lean_start = False
        self.lean_root = False
        self._sample_bound: int | None = None
        self._ids = RolloutIdGenerator()
        # GenAI metrics recorded as operations end (`_metrics.py`); None: off or nowhere to go.
        self._metrics: MetricsRecorder | None = None
        # The kill switch's no-op facades, or None: what a decorated call checks first.
        self.off: NoopScopes | None = None
        if self.config.disabled:
            self.tracer: Tracer = otel_trace.NoOpTracer()
            self.off = self.noop_scopes
            return
        self._pipeline = Pipeline(self.config, passive=passive, destination=self.destination)
        self.tracer = self._pipeline.tracer
        metrics = self._pipeline.metrics
        if metrics is not None and metrics.sink is not None:
            self._metrics = MetricsRecorder(metrics.sink, self.config.agent_name)
        # On our own provider with only our processors, nobody reads a child span's
        # attributes at start (our sampler looks at the trace id only), so children start
        # bare and get all attributes right after: the SDK validates start attributes
        # twice (sampler and span), which costs more than the span itself.
        self.lean_start = (
            self._pipeline.owned_provider is not None and not self.config.span_processors
        )
        # A trace's own span too, unless the console tree is on: it recognises a trace's
        # root by its start attributes.
        self.lean_root = self.lean_start and not any(
            isinstance(p, ConsoleTreeProcessor) for p in self._pipeline.processors
        )
        if self._pipeline.owned_provider is not None and self.config.sample_rate < 1.0:
            self._sample_bound = sampling_bound(self.config.sample_rate)

    def __repr__(self) -> str:
        c = self.config
        where = self.destination.safe_endpoint if self.destination is not None else None
        return (
            f"Rollout(agent_name={c.agent_name!r}, environment={c.environment!r}, "
            f"endpoint={where!r}, disabled={c.disabled!r})"
        )

    @functools.cached_property
    def noop_scopes(self) -> NoopScopes:
        """The no-op trace and span user code sees in a scope that records nothing."""
        trace = null_trace(self)
        # A ToolCall is a Span with a tool's ending: it stands in for both.
        return NoopScopes(trace, ToolCall(trace.otel_span, self, "span", trace))

    @property
    def disabled(self) -> bool:
        """True for the kill switch: user code runs, nothing is emitted."""
        return self.config.disabled

    @property
    def tracer_provider(self) -> otel_trace.TracerProvider | None:
        """The OTel tracer provider this client emits through (None when disabled)."""
        return None if self._pipeline is None else self._pipeline.provider

    # -- traces -------------------------------------------------------------------------

    def trace(
        self,
        name: str,
        *,
        trace_id: str | int | None = None,
        external_trace_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        conversation_id: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Trace:
        """Open a trace; use it as a (sync or async) context manager.

        Inside another instrumentation's span it becomes that span's child in the same
        OTel trace; otherwise it is a new root.
        """
        return self.start_trace(
            "trace",
            name,
            trace_id=trace_id,
            external_trace_id=external_trace_id,
            attributes=attributes,
            user_id=user_id,
            session_id=session_id,
            conversation_id=conversation_id,
            context=context,
        )

    def span(
        self,
        span_type: str = "span",
        *,
        name: str | None = None,
        span_id: str | int | None = None,
        attributes: Mapping[str, Any] | None = None,
        model: str | None = None,
        provider: str | None = None,
        model_version: str | None = None,
        reasoning_mode: str | None = None,
        temperature: float | None = None,
        stream: bool | None = None,
    ) -> Span:
        """A typed span in the active trace (see `Trace.span`); use it with `with`.

        With no active trace it records nothing and the block runs as usual.

        Example:
            >>> with client.trace("support"):  # doctest: +SKIP
            ...     with client.span("retrieval", name="faq") as span:
            ...         span.record_output(["Use Celsius."])
        """
        parent = current_trace()
        if parent is None:
            debug_once(
                f"no-trace-span-{span_type}",
                "mv37.rollout: span(%r) with no active trace; recording nothing",
                span_type,
            )
            return null_span(self, span_type, Span)
        return parent.span(
            span_type,
            name=name,
            span_id=span_id,
            attributes=attributes,
            model=model,
            provider=provider,
            model_version=model_version,
            reasoning_mode=reasoning_mode,
            temperature=temperature,
            stream=stream,
        )

    def start_trace(
        self,
        span_type: str,
        name: str,
        *,
        trace_id: str | int | None = None,
        external_trace_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        conversation_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        agent_name: str | None = None,
        extra: Attributes | None = None,
        prepared: tuple[Attributes, str] | None = None,
    ) -> Trace:
        """Start a trace of `span_type` ("agent" or "trace"); not yet current.

        `prepared`: its type attributes and OTel span name, when the caller made them
        once for every call (a decorator); never modified here.
        """
        parent = current_trace()
        user: UserFields | None = None
        user_id_of_trace: str | None = None
        own_trace_id: int | None = None
        if self._sample_bound is not None and trace_id is None and parent is None:
            sampled_out, own_trace_id = presample(self._ids, self._sample_bound, self._pipeline)
            if sampled_out is not None:
                return null_trace(
                    self,
                    span_type,
                    name,
                    otel_span=sampled_out,
                    external_trace_id=external_trace_id,
                )
        if self.config.disabled:
            return null_trace(
                self, span_type, name, external_trace_id=external_trace_id, parent=parent
            )
        try:
            limit = self.config.max_payload_chars
            about = trace_context(
                self.config,
                span_type,
                name,
                agent_name=agent_name,
                user_id=user_id,
                session_id=session_id,
                conversation_id=conversation_id,
                context=context,
                attributes=attributes,
            )
            own, user, user_id_of_trace = about.own, about.user, about.user_id
            ctx_attrs = {**parent.context_attributes, **own} if parent is not None else own
            if parent is not None and span_type != AGENT and agent_name is None:
                # The innermost agent's name, not the client's `agent_name` (issue 14).
                inherited = parent.context_attributes
                ctx_attrs.update({k: inherited[k] for k in _AGENT_KEYS if k in inherited})
            if prepared is None:
                prepared = (type_attributes(span_type, name), span_name(span_type, name))
            attrs: Attributes = {**ctx_attrs, **prepared[0]}
            if external_trace_id:
                attrs[sc.ROLLOUT_TRACE_EXTERNAL_ID] = str(external_trace_id)
            attrs.update(user_attributes(about.extra, limit))
            if extra:
                attrs.update(extra)
            otel_span = start_root_span(
                self.tracer,
                self._pipeline,
                self.config,
                prepared[1],
                attrs,
                trace_id=trace_id,
                own_trace_id=own_trace_id,
                lean=self.lean_root,
            )
        except Exception as exc:
            internal_error("start trace", exc)
            otel_span, ctx_attrs, user = INVALID_SPAN, {}, None
        trace = Trace(
            otel_span,
            self,
            span_type,
            name,
            external_trace_id=external_trace_id,
            context_attrs=ctx_attrs,
            parent=parent,
        )
        if trace.is_recording:
            self.traces.remember(trace, external_trace_id)
            # The context's traits describe the context's user: an explicit, different
            # `user_id=` on this trace wins and gets none of them.
            if (
                user is not None
                and (user.traits or user.account_traits)
                and user.user_id in (None, user_id_of_trace)
            ):
                trace.identify_user(
                    user_id_of_trace,
                    traits=user.traits,
                    account_id=user.account_id,
                    account_traits=user.account_traits,
                )
        return trace

    # -- users, feedback, signals ------------------------------------------------------

    def user(
        self,
        *,
        user_id: str | None = None,
        traits: Mapping[str, Any] | None = None,
        account_id: str | None = None,
        account_traits: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        conversation_id: str | None = None,
    ) -> UserContext:
        """A (sync or async) context manager: traces opened inside are for this user.

        Nested blocks override field by field; per thread and per asyncio task.

        Example:
            >>> with client.user(user_id="u-42", session_id="s-7"):  # doctest: +SKIP
            ...     handle_request("hi")
        """
        return UserContext(
            user_id=user_id,
            traits=traits,
            account_id=account_id,
            account_traits=account_traits,
            session_id=session_id,
            conversation_id=conversation_id,
        )

    def identify_user(
        self,
        user_id: str | None = None,
        *,
        traits: Mapping[str, Any] | None = None,
        account_id: str | None = None,
        account_traits: Mapping[str, Any] | None = None,
        trace_id: str | int | None = None,
        external_trace_id: str | None = None,
    ) -> None:
        """Record who the user is: on the active trace, or on the one named by id."""
        record_identity(
            self,
            user_id,
            traits=traits,
            account_id=account_id,
            account_traits=account_traits,
            trace_id=trace_id,
            external_trace_id=external_trace_id,
        )

    def feedback(
        self,
        name: str,
        value: object,
        *,
        trace_id: str | int | None = None,
        external_trace_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """Explicit user feedback (thumbs, csat, ...) on the active trace or one named by id.

        A trace that already ended (here, or in another process that only knows its id)
        gets it on a carrier span in the same OTel trace.
        """
        record_outcome(
            self,
            "feedback",
            name,
            value,
            trace_id=trace_id,
            external_trace_id=external_trace_id,
            attributes=attributes,
        )

    def signal(
        self,
        name: str,
        value: object,
        *,
        trace_id: str | int | None = None,
        external_trace_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """An implicit outcome (order placed, escalated, ...); targeting as `feedback`."""
        record_outcome(
            self,
            "signal",
            name,
            value,
            trace_id=trace_id,
            external_trace_id=external_trace_id,
            attributes=attributes,
        )

    def capture_event(
        self,
        event_type: str,
        *,
        trace_id: str | int | None = None,
        external_trace_id: str | None = None,
        event_id: str | None = None,
        occurred_at: object = None,
        attributes: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        """Low-level: record one event of a known data-model type (see `_capture.py`).

        Example:
            >>> client.capture_event("metric", name="latency_ms", value=412)  # doctest: +SKIP
        """
        capture_event(
            self,
            event_type,
            trace_id=trace_id,
            external_trace_id=external_trace_id,
            event_id=event_id,
            occurred_at=occurred_at,
            attributes=attributes,
            **fields,
        )

    # -- delivery -----------------------------------------------------------------------

    def _kick_flush(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.kick()
            except Exception as exc:
                internal_error("kick flush", exc)

    def _wait_for_delivery(self) -> None:
        """`agent_flush="wait"`: deliver what is queued now (a root trace that just ended)."""
        if self._pipeline is not None:
            try:
                self._pipeline.wait_for_delivery()
            except Exception as exc:
                internal_error("agent flush", exc)

    def flush(self, timeout: float | None = None) -> bool:
        """Export everything queued (blocking, up to `timeout` or `shutdown_timeout`)."""
        if self._pipeline is None:
            return True
        return self._pipeline.flush(timeout)

    async def aflush(self, timeout: float | None = None) -> bool:
        """`flush` without blocking the event loop."""
        return await asyncio.to_thread(self.flush, timeout)

    def shutdown(self) -> None:
        """Flush and stop; the client emits nothing afterwards."""
        if self._pipeline is not None:
            self._pipeline.shutdown()

    async def ashutdown(self) -> None:
        """`shutdown` without blocking the event loop."""
        await asyncio.to_thread(self.shutdown)

    @property
    def is_shut_down(self) -> bool:
        """True once `shutdown()` ran (a later `init()` shuts the previous client down)."""
        return self._pipeline is not None and self._pipeline.is_shut_down

    def stats(self) -> RolloutStats:
        """Delivery counters: spans started, exported, queued, dropped (by reason), failed.

        Example:
            >>> rollout.get_client().stats().dropped["queue_full"]  # doctest: +SKIP
            0
        """
        if self._pipeline is None:
            return Counters().snapshot()
        return self._pipeline.counters.snapshot()

    def check(self, *, verbose: bool = True, timeout: float | None = None) -> CheckResult:
        """Send a diagnostic trace to the configured destination now; never raises.

        Returns `CheckResult(ok, accepted, rejected, errors, message)`; with `verbose`,
        prints the message (success with the count, or the reason and the URL). Waits
        at most `timeout` seconds (default 5, retries included).
        """
        return check_destination(self.config, self.destination, verbose=verbose, timeout=timeout)

    async def acheck(self, *, verbose: bool = True, timeout: float | None = None) -> CheckResult:
        """`check` without blocking the event loop."""
        return await asyncio.to_thread(self.check, verbose=verbose, timeout=timeout)

    @property
    def _owned_provider(self) -> TracerProvider | None:
        return None if self._pipeline is None else self._pipeline.owned_provider

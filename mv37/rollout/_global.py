"""`init()` and the module-level helpers over the global client.

The client slot itself lives in `facade/_current.py` (decorators and integrations read
it); this module fills it and says that the passive client used before `init()` is a
full `Rollout`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import TracerProvider

from mv37.rollout._rollout import Rollout, config_arguments
from mv37.rollout.base._config import AgentFlush, EventDict
from mv37.rollout.facade import _current
from mv37.rollout.facade._user import UserContext

if TYPE_CHECKING:
    from mv37.rollout.pipeline._check import CheckResult
    from mv37.rollout.pipeline._stats import RolloutStats

_current.passive_factory = Rollout.passive


def init(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    environment: str | None = None,
    release: str | None = None,
    service_name: str | None = None,
    agent_name: str | None = None,
    agent_id: str | None = None,
    agent_version: str | None = None,
    deployment: str | None = None,
    sample_rate: float | None = None,
    debug: bool | None = None,
    disabled: bool | None = None,
    max_queue_events: int | None = None,
    max_queue_bytes: int | None = None,
    max_batch_events: int | None = None,
    max_batch_bytes: int | None = None,
    flush_interval: float | None = None,
    shutdown_timeout: float | None = None,
    sync_mode: bool | None = None,
    before_send: Callable[[EventDict], EventDict | None] | None = None,
    scrubber: Callable[[EventDict], EventDict] | None = None,
    send_default_pii: bool | None = None,
    default_scrubbing: bool | None = None,
    scrub_keys: str | Iterable[str] | None = None,
    scrub_patterns: str | Iterable[str] | None = None,
    scrub_allow_keys: str | Iterable[str] | None = None,
    capture_inputs: bool | None = None,
    capture_outputs: bool | None = None,
    capture_content: bool | None = None,
    capture_stream_chunks: bool | None = None,
    stream_preview_chars: int | None = None,
    auto_instrument: str | Iterable[str] | None = None,
    tracer_provider: TracerProvider | None = None,
    span_processors: SpanProcessor | Iterable[SpanProcessor] | None = None,
    span_exporters: SpanExporter | Iterable[SpanExporter] | None = None,
    console: bool | None = None,
    install_global_provider: bool | None = None,
    export_all_spans: bool | None = None,
    link_foreign_parent: bool | None = None,
    max_payload_chars: int | None = None,
    agent_flush: AgentFlush | None = None,
    semconv: str | Iterable[str] | None = None,
    metrics: bool | None = None,
    dedupe_llm_spans: bool | None = None,
    meter_provider: MeterProvider | None = None,
    feedback_sinks: str | Iterable[str] | None = None,
    headers: str | Mapping[str, str] | None = None,
) -> Rollout:
    """Build the global client from arguments and `ROLLOUT_*` variables, and return it.

    Takes the same arguments as `Rollout(...)`: each is a `RolloutConfig` field, and
    `None` (the default) means unset, so the field's `ROLLOUT_*` variable or default
    applies. A second `init()` replaces the first: the old client is flushed and shut
    down.

    Example:
        >>> import mv37.rollout as rollout
        >>> rollout.init(agent_name="support_agent")  # doctest: +SKIP

    Raises:
        ValueError: For an invalid argument or environment variable (named).
    """
    new = Rollout(**config_arguments(locals()))
    old = _current.install(new)
    if old is not None:
        old.shutdown()
    return new


def get_client() -> Rollout:
    """The global client (a passive one before `init()`)."""
    return cast(Rollout, _current.get_client())


def reset() -> None:
    """Shut down and forget the global client (tests)."""
    old = _current.clear()
    if old is not None:
        old.shutdown()


def user(
    *,
    user_id: str | None = None,
    traits: Mapping[str, Any] | None = None,
    account_id: str | None = None,
    account_traits: Mapping[str, Any] | None = None,
    session_id: str | None = None,
    conversation_id: str | None = None,
) -> UserContext:
    """A (sync or async) context manager: traces opened inside are for this user.

    Example:
        >>> with rollout.user(user_id="u-42", traits={"plan": "pro"}):  # doctest: +SKIP
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
    user_id: str | None = None,
    *,
    traits: Mapping[str, Any] | None = None,
    account_id: str | None = None,
    account_traits: Mapping[str, Any] | None = None,
    trace_id: str | int | None = None,
    external_trace_id: str | None = None,
) -> None:
    """Record who the user is: on the active trace, or on the one named by id."""
    get_client().identify_user(
        user_id,
        traits=traits,
        account_id=account_id,
        account_traits=account_traits,
        trace_id=trace_id,
        external_trace_id=external_trace_id,
    )


def feedback(
    name: str,
    value: object,
    *,
    trace_id: str | int | None = None,
    external_trace_id: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> None:
    """Explicit user feedback (thumbs, csat, ...): on the active trace, or one named by id.

    Works after the trace ended, also from another process that only knows the trace id.
    """
    get_client().feedback(
        name, value, trace_id=trace_id, external_trace_id=external_trace_id, attributes=attributes
    )


def capture_event(
    event_type: str,
    *,
    trace_id: str | int | None = None,
    external_trace_id: str | None = None,
    event_id: str | None = None,
    occurred_at: object = None,
    attributes: Mapping[str, Any] | None = None,
    **fields: Any,
) -> None:
    """Low-level: record one event of a known data-model type on the active or named trace.

    `feedback`, `user.signal` and `identity.update` go through `feedback`, `signal` and
    `identify_user`; `message`, `eval.result` and `error` become their events; any other
    known type is a `rollout.event` event with its fields as JSON.

    Example:
        >>> rollout.capture_event("metric", name="latency_ms", value=412)  # doctest: +SKIP
    """
    get_client().capture_event(
        event_type,
        trace_id=trace_id,
        external_trace_id=external_trace_id,
        event_id=event_id,
        occurred_at=occurred_at,
        attributes=attributes,
        **fields,
    )


def signal(
    name: str,
    value: object,
    *,
    trace_id: str | int | None = None,
    external_trace_id: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> None:
    """An implicit outcome (order placed, escalated, ...); targeting as `feedback`."""
    get_client().signal(
        name, value, trace_id=trace_id, external_trace_id=external_trace_id, attributes=attributes
    )


def flush(timeout: float | None = None) -> bool:
    """Export everything queued by the global client."""
    return get_client().flush(timeout)


async def aflush(timeout: float | None = None) -> bool:
    """`flush` without blocking the event loop."""
    return await get_client().aflush(timeout)


def shutdown() -> None:
    """Flush and stop the global client."""
    get_client().shutdown()


async def ashutdown() -> None:
    """`shutdown` without blocking the event loop."""
    await get_client().ashutdown()


def stats() -> RolloutStats:
    """The global client's delivery counters (see `Rollout.stats`)."""
    return get_client().stats()


def check(*, verbose: bool = True, timeout: float | None = None) -> CheckResult:
    """Send a diagnostic trace to the configured destination now (see `Rollout.check`)."""
    return get_client().check(verbose=verbose, timeout=timeout)


async def acheck(*, verbose: bool = True, timeout: float | None = None) -> CheckResult:
    """`check` without blocking the event loop."""
    return await get_client().acheck(verbose=verbose, timeout=timeout)

"""`Rollout`: the public client, the facade's core plus the integrations.

`RolloutCore` (facade layer) does the tracing; this class adds what reaches up into
`integrations/`: `wrap`, `wrap_tools`, the OpenAI Agents bridge and `auto_instrument`.
The integrations are imported on first use, so `import mv37.rollout` stays cheap.

Example:
    >>> client = Rollout(agent_name="support_agent", sync_mode=True)  # doctest: +SKIP
    >>> with client.trace("support_agent") as trace:  # doctest: +SKIP
    ...     trace.message(role="user", content="hi")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

# Imported for real (the pipeline loads them anyway) so that `typing.get_type_hints`
# resolves the keyword parameters below.
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import TracerProvider

from mv37.rollout.base._config import AgentFlush, EventDict
from mv37.rollout.facade._client import RolloutCore

T = TypeVar("T")


def config_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """The configuration keywords of a `Rollout(...)`/`init(...)` call, from its `locals()`."""
    return {name: value for name, value in arguments.items() if name not in ("self", "__class__")}


class Rollout(RolloutCore):
    """The Rollout client: configuration, the OTel pipeline, trace factories, integrations.

    Every argument is a `RolloutConfig` field (see there for each one's meaning). `None`,
    the default, means unset: the field's `ROLLOUT_*` environment variable if it has one
    and it is set, else the field's default. An argument beats the variable.

    Example:
        >>> client = Rollout(agent_name="support_agent", sync_mode=True)  # doctest: +SKIP
        >>> with client.trace("support_agent") as trace:  # doctest: +SKIP
        ...     trace.message(role="user", content="hi")

    Raises:
        ValueError: For an invalid argument or environment variable (named).
    """

    def __init__(
        self,
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
    ) -> None:
        super().__init__(**config_arguments(locals()))
        if self.config.auto_instrument and not self.config.disabled:
            from mv37.rollout.integrations._auto import enable

            enable(self.config.auto_instrument, self)

    def wrap(self, obj: T, *, provider: str | None = None, **options: Any) -> T:
        """Instrument one OpenAI/Anthropic client object with this client (see `rollout.wrap`).

        Example:
            >>> openai_client = client.wrap(OpenAI())  # doctest: +SKIP
        """
        from mv37.rollout.integrations._wrap import wrap

        return wrap(obj, provider=provider, client=self, **options)

    def wrap_tools(
        self,
        tools: T,
        *,
        record_input: bool = True,
        record_output: bool = True,
        implicit_trace: bool = False,
    ) -> T:
        """Instrument a mapping or iterable of tool callables (see `rollout.wrap_tools`)."""
        from mv37.rollout.integrations._toolset import wrap_tools

        return wrap_tools(
            tools,
            record_input=record_input,
            record_output=record_output,
            implicit_trace=implicit_trace,
            client=self,
        )

    def instrument_openai_agents(self, *, replace: bool = False, **options: Any) -> Any:
        """Send the OpenAI Agents SDK's traces to this client (see the module function)."""
        from mv37.rollout.integrations._agents_bridge import instrument_openai_agents

        return instrument_openai_agents(replace=replace, client=self, **options)

    def openai_agents_processor(self, **options: Any) -> Any:
        """An OpenAI Agents SDK tracing processor recording into this client."""
        from mv37.rollout.integrations._agents_bridge import openai_agents_processor

        return openai_agents_processor(client=self, **options)

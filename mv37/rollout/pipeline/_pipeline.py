"""Provider policy and composition: where Rollout spans go, through what.

- `tracer_provider=` given: emit through it, install nothing global.
- An SDK provider already installed globally: emit through it and add our processors;
  never replace it.
- Otherwise: our own SDK provider (Resource from config, per-trace sampler, our id
  generator), installed globally unless `install_global_provider=False`.
"""

from __future__ import annotations

import atexit
import functools
import os
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING

from opentelemetry import trace as otel_trace
from opentelemetry.sdk.resources import Attributes, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import Tracer

from mv37.rollout import semconv as sc
from mv37.rollout.base._config import RolloutConfig
from mv37.rollout.base._diagnostics import debug_once, internal_error, logger
from mv37.rollout.base._version import __version__
from mv37.rollout.pipeline._console import ConsoleTreeProcessor
from mv37.rollout.pipeline._destination import Destination, build_otlp_exporter
from mv37.rollout.pipeline._exporters import (
    CountingExporter,
    ExportLog,
    PrivacyExporter,
    QuietLogExporter,
    SuppressingExporter,
)
from mv37.rollout.pipeline._foreign_llm import ForeignUsage
from mv37.rollout.pipeline._privacy import PrivacyStage
from mv37.rollout.pipeline._processors import (
    SCOPE,
    ContextStampProcessor,
    ProcessorHub,
    RolloutSpansOnly,
    SyncProcessor,
)
from mv37.rollout.pipeline._queue import QueueProcessor
from mv37.rollout.pipeline._sampler import RatioSampler
from mv37.rollout.pipeline._scrub import redactor_for
from mv37.rollout.pipeline._sinks import SinkProcessor, SinkTap, SinkWorker
from mv37.rollout.pipeline._sinks_http import sink_worker
from mv37.rollout.pipeline._stats import Counters, InFlight
from mv37.rollout.pipeline._suppress import is_suppressed
from mv37.rollout.vocabulary._ids import RolloutIdGenerator

if TYPE_CHECKING:
    from mv37.rollout.pipeline._metrics import MetricsPipeline

_WAITING = threading.local()
"""`active` while this thread waits in `Pipeline.wait_for_delivery`."""


def _resource(config: RolloutConfig) -> Resource:
    attrs: dict[str, str] = {}
    if config.service_name:
        attrs[sc.SERVICE_NAME] = config.service_name
    elif not os.environ.get("OTEL_SERVICE_NAME"):
        attrs[sc.SERVICE_NAME] = config.agent_name or "rollout-agent"
    if config.release:
        attrs[sc.SERVICE_VERSION] = config.release
    if config.environment:
        attrs[sc.DEPLOYMENT_ENVIRONMENT_NAME] = config.environment
    if config.deployment:
        attrs[sc.ROLLOUT_DEPLOYMENT] = config.deployment
    if config.agent_name:
        attrs[sc.ROLLOUT_AGENT_NAME] = config.agent_name
    if config.agent_id:
        attrs[sc.ROLLOUT_AGENT_ID] = config.agent_id
    if config.agent_version:
        attrs[sc.ROLLOUT_AGENT_VERSION] = config.agent_version
    created = Resource.create(attrs)
    return _HashedResource(created.attributes, created.schema_url)


class _HashedResource(Resource):
    """A `Resource` that hashes once: the OTLP encoder groups every span of every batch
    by its resource (a dict lookup), and `Resource.__hash__` JSON-dumps all attributes
    each time, about 5% of the export worker's time per span. Its attributes never change.
    """

    def __init__(self, attributes: Attributes, schema_url: str | None = None) -> None:
        super().__init__(attributes, schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


class Pipeline:
    """The provider, tracer, processors and counters one client uses."""

    def __init__(
        self,
        config: RolloutConfig,
        *,
        passive: bool = False,
        destination: Destination | None = None,
    ) -> None:
        self.config = config
        self.destination = destination
        self.counters = Counters()
        self.redactor = redactor_for(config)
        self.privacy = PrivacyStage(
            self.redactor,
            self.counters,
            scrubber=config.scrubber,
            before_send=config.before_send,
            limit=config.max_payload_chars,
        )
        self.owned_provider: TracerProvider | None = None
        self.processors: list[SpanProcessor] = []
        self._export_processors: list[SpanProcessor] = []
        self._hub: ProcessorHub | None = None
        self._shut = False
        self.metrics: MetricsPipeline | None = None
        self.sinks: SinkWorker | None = None
        if passive:
            # Before init(): follow whatever global provider exists (a no-op without one).
            self.provider: otel_trace.TracerProvider = otel_trace.get_tracer_provider()
            self.tracer: Tracer = otel_trace.get_tracer(SCOPE, __version__)
            self._add_metrics(passive=True)
            return
        self.sinks = sink_worker(config, destination, self.counters)  # before any setup
        self.provider = self._choose_provider()
        self.tracer = self.provider.get_tracer(SCOPE, __version__)
        self._add_processors()
        self._add_metrics(passive=False)
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _after_fork_in_child(ref))
        if (self.owned_provider is None and self.processors) or self.sinks is not None:
            # Our own provider shuts down at exit by itself (OTel registers that); feedback
            # sinks flush after the spans, before that (atexit runs in reverse order).
            atexit.register(_flush_at_exit, weakref.ref(self))

    @property
    def records(self) -> bool:
        """Spans can record here (an SDK provider): a non-recording root was sampled out."""
        return isinstance(self.provider, TracerProvider)

    @functools.cached_property
    def own_ids(self) -> bool:
        """The provider draws its ids with our `RolloutIdGenerator` (timed trace ids, the
        root's derived span id); decided once, as the provider is."""
        return isinstance(getattr(self.provider, "id_generator", None), RolloutIdGenerator)

    # -- provider policy ----------------------------------------------------------------

    def _choose_provider(self) -> otel_trace.TracerProvider:
        config = self.config
        if config.tracer_provider is not None:
            return config.tracer_provider
        current = otel_trace.get_tracer_provider()
        if isinstance(current, TracerProvider) and not getattr(current, "_mv37_rollout", False):
            return current
        if not isinstance(current, (otel_trace.ProxyTracerProvider, TracerProvider)):
            logger.info(
                "mv37.rollout: a non-SDK tracer provider (%s) is installed; emitting through "
                "it without adding processors",
                type(current).__name__,
            )
            return current
        provider = TracerProvider(
            resource=_resource(config),
            sampler=RatioSampler(config.sample_rate),
            id_generator=RolloutIdGenerator(),
        )
        provider._mv37_rollout = True  # type: ignore[attr-defined]
        self.owned_provider = provider
        if config.install_global_provider:
            _install_global(provider, replace=isinstance(current, TracerProvider))
        return provider

    def _add_processors(self) -> None:
        config = self.config
        provider = self.provider
        if not isinstance(provider, TracerProvider):
            return
        owned = self.owned_provider is not None
        count_all = owned or config.export_all_spans
        processors: list[SpanProcessor] = [
            ContextStampProcessor(self.counters, count_all=count_all, foreign=ForeignUsage()),
        ]
        if config.console is True or (owned and config.console_enabled):
            redactor = self.redactor
            scrub = (lambda text: redactor.text(text)[0]) if redactor.active else None
            # The only destination: it counts what it prints for stats().
            sole = self.destination is None and not config.span_exporters
            counters = self.counters if sole else None
            processors.append(
                ConsoleTreeProcessor(scrub=scrub, counters=counters, count_all=count_all)
            )
        # Our destination's exporter reports its retries and failures our way (one warning
        # per client); exporters the user passed log as they were set up to.
        exporters: list[tuple[SpanExporter, ExportLog | None]] = []
        if self.destination is not None:
            ours = ExportLog(self.destination.safe_endpoint)
            exporters.append((build_otlp_exporter(self.destination)[0], ours))
        exporters.extend((exporter, None) for exporter in config.span_exporters)
        for exporter, log in exporters:
            # The destination's chain hands exported feedback to the sinks.
            tap = self.sinks if exporter is exporters[0][0] and self.destination else None
            processor = self._export_processor(exporter, log, tap)
            self._export_processors.append(processor)
            if not owned and not config.export_all_spans:
                processor = RolloutSpansOnly(processor)
            processors.append(processor)
        if self.sinks is not None and self.destination is None:
            processors.append(SinkProcessor(self.sinks))
        processors.extend(config.span_processors)
        if owned:
            for processor in processors:
                provider.add_span_processor(processor)
        else:
            self._hub = ProcessorHub.on(provider)
            self._hub.replace((), processors)
        self.processors = processors

    def _add_metrics(self, *, passive: bool) -> None:
        """GenAI metrics (`_metrics.py`): a user's MeterProvider, or ours to the destination."""
        if not self.config.metrics:
            return
        from mv37.rollout.pipeline._metrics import MetricsPipeline

        resource = getattr(self.provider, "resource", None)
        if not isinstance(resource, Resource):
            resource = _resource(self.config)
        traces = self.destination.endpoint if self.destination is not None else None
        self.metrics = MetricsPipeline(
            self.config, self.counters, resource, passive=passive, traces_endpoint=traces
        )

    def _export_processor(
        self, exporter: SpanExporter, log: ExportLog | None, tap: SinkWorker | None = None
    ) -> SpanProcessor:
        config = self.config
        flight = InFlight()
        chain = export_chain(exporter, self.counters, self.privacy, log, flight, tap=tap)
        if config.sync_mode:
            return SyncProcessor(
                chain,
                self.counters,
                flight,
                max_bytes=min(config.max_batch_bytes, config.max_queue_bytes),
            )
        return QueueProcessor(
            chain,
            self.counters,
            flight,
            max_queue_events=config.max_queue_events,
            max_queue_bytes=config.max_queue_bytes,
            max_batch_events=config.max_batch_events,
            max_batch_bytes=config.max_batch_bytes,
            flush_interval=config.flush_interval,
            shutdown_timeout=config.shutdown_timeout,
        )

    # -- lifecycle ----------------------------------------------------------------------

    def kick(self) -> None:
        """Start exporting what is queued, without waiting for it."""
        for processor in self._export_processors:
            if isinstance(processor, QueueProcessor):
                processor.kick()

    def flush(self, timeout: float | None = None) -> bool:
        """Export everything queued, within `timeout` (default `shutdown_timeout`) overall.

        True when every processor finished in time.
        """
        budget = timeout if timeout is not None else self.config.shutdown_timeout
        deadline = time.monotonic() + budget
        ok = True
        for processor in self.processors:
            millis = max(0, int((deadline - time.monotonic()) * 1000))
            try:
                ok = processor.force_flush(millis) and ok
            except Exception as exc:
                internal_error("flush", exc)
                ok = False
        if self.metrics is not None:
            ok = self.metrics.flush(max(0.0, deadline - time.monotonic())) and ok
        if self.sinks is not None:  # after the spans: their feedback is queued by now
            ok = self.sinks.flush(max(0.0, deadline - time.monotonic())) and ok
        return ok

    def wait_for_delivery(self) -> bool:
        """`agent_flush="wait"`: flush now, within `shutdown_timeout`, where that is safe.

        Where waiting could only stall or deadlock it wakes the exporter instead and
        returns False: on one of our export workers (it would wait for itself), while
        an exporter works (OTel's suppression flag is set: the SDK's batch processor
        flushes inline under the lock its export holds), and inside a wait already
        running on this thread. In `sync_mode` the spans were sent inline: nothing to do.
        """
        if self.config.sync_mode or self._shut:
            return True
        current = threading.current_thread()
        if (
            getattr(_WAITING, "active", False)
            or is_suppressed()
            or any(getattr(p, "_worker", None) is current for p in self._export_processors)
        ):
            self.kick()
            return False
        _WAITING.active = True
        try:
            delivered = self.flush(self.config.shutdown_timeout)
        finally:
            _WAITING.active = False
        if not delivered:
            debug_once(
                "agent-flush-undelivered",
                "mv37.rollout: agent_flush=wait: a trace was not delivered within "
                "shutdown_timeout (%ss) or its export failed (see stats())",
                self.config.shutdown_timeout,
            )
        return delivered

    @property
    def is_shut_down(self) -> bool:
        """True once `shutdown()` ran."""
        return self._shut

    def shutdown(self) -> None:
        """Flush (within `shutdown_timeout`) and stop what this client added; idempotent."""
        if self._shut:
            return
        self._shut = True
        started = time.monotonic()
        if self.metrics is not None:
            self.metrics.shutdown()
        if self.owned_provider is not None:
            try:
                self.owned_provider.shutdown()
            except Exception as exc:
                internal_error("shutdown", exc)
        else:
            if self._hub is not None:
                self._hub.replace(self.processors, ())
            for processor in self.processors:
                try:
                    processor.shutdown()
                except Exception as exc:
                    internal_error("shutdown", exc)
        if self.sinks is not None:  # the spans' feedback was handed over by now
            spent = time.monotonic() - started
            self.sinks.shutdown(max(0.0, self.config.shutdown_timeout - spent))


def export_chain(
    exporter: SpanExporter,
    counters: Counters,
    privacy: PrivacyStage,
    log: ExportLog | None,
    flight: InFlight,
    *,
    tap: SinkWorker | None = None,
) -> SpanExporter:
    """The exporter an export processor hands its spans to: the pipeline after the queue.

        privacy → [sink tap] → counting → quiet log → suppression → `exporter`

    Privacy: default scrubbing, `scrubber`, `before_send` (left out when it can change
    nothing). Counting: exported and failed spans, each landed from `flight`. Quiet log:
    the exporter's warnings become one per client (only with `log`: our destination's
    exporter; the user's exporters log as they were set up to). Suppression: our POSTs
    never become spans. Sink tap (only with `tap`): the batch's feedback and signals go
    to the feedback sinks once it was exported (`_sinks.py`). Built from the exporter
    outwards.
    """
    chain: SpanExporter = SuppressingExporter(exporter)
    if log is not None:
        chain = QuietLogExporter(chain, log)
    chain = CountingExporter(chain, counters, flight)
    if tap is not None:
        chain = SinkTap(chain, tap)
    if privacy.active:
        chain = PrivacyExporter(chain, privacy, flight)
    return chain


def _after_fork_in_child(ref: weakref.ref[Pipeline]) -> None:
    """A forked child counts its own spans (its export queues reset themselves)."""
    pipeline = ref()
    if pipeline is not None:
        pipeline.counters.reset()
        _flush_in_multiprocessing_child(ref)


def _flush_in_multiprocessing_child(ref: weakref.ref[Pipeline]) -> None:
    """`multiprocessing` children leave through `os._exit`, skipping `atexit`: flush there.

    Its own finalizers run at the child's exit; the registry is cleared just after the
    fork, so the finalizer is registered from an after-fork hook that runs later.
    """
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return
    pipeline = ref()
    if pipeline is None:
        return

    def register(_: object) -> None:
        util.Finalize(None, _flush_at_exit, args=(ref,), exitpriority=10)

    util.register_after_fork(pipeline, register)


def _flush_at_exit(ref: weakref.ref[Pipeline]) -> None:
    pipeline = ref()
    if pipeline is not None and not pipeline.is_shut_down:
        pipeline.flush()


def _install_global(provider: TracerProvider, *, replace: bool) -> None:
    """Install `provider` globally; replace only a provider a previous client installed."""
    if replace:
        # OTel allows one set_tracer_provider per process; a second init() replaces the
        # provider our first client installed (never anyone else's).
        try:
            otel_trace._TRACER_PROVIDER_SET_ONCE._done = False
        except AttributeError:
            debug_once("replace-provider", "mv37.rollout: cannot replace the global provider")
            return
    otel_trace.set_tracer_provider(provider)

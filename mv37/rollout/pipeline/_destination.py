"""Where exported traces go: the OTLP/HTTP endpoint, headers, timeout and compression.

Ours first, then the standard OpenTelemetry variables (used when ours are unset):

- endpoint: `base_url` + `/v1/traces` (a `base_url` that already ends in `/v1/traces` is
  used as is); else `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is; else
  `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, always, as the spec says; else none
  (console only).
- headers (`request_headers`): `OTEL_EXPORTER_OTLP(_TRACES)_HEADERS`, then `headers` /
  `ROLLOUT_HEADERS`, then `api_key` as `Authorization: Bearer <key>` (later ones win).
- timeout: `OTEL_EXPORTER_OTLP(_TRACES)_TIMEOUT` in milliseconds, as the spec says
  (default 10 s).
- compression: `OTEL_EXPORTER_OTLP(_TRACES)_COMPRESSION`, default gzip.

Example:
    >>> from mv37.rollout.base._config import resolve_config
    >>> resolve_destination(resolve_config(base_url="http://localhost:4318"), {}).endpoint
    'http://localhost:4318/v1/traces'
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from mv37.rollout.base._config import RolloutConfig, check_url
from mv37.rollout.base._diagnostics import debug_once, log_once
from mv37.rollout.pipeline._failures import Attempt, attempt_from, note_attempt

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

TRACES_PATH = "/v1/traces"
DEFAULT_TIMEOUT_S = 10.0
_COMPRESSIONS = ("gzip", "deflate", "none")


@dataclass(frozen=True)
class Destination:
    """A resolved OTLP/HTTP traces destination. Header values never appear in its repr."""

    endpoint: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = DEFAULT_TIMEOUT_S
    compression: str = "gzip"
    source: str = "base_url"

    @property
    def safe_endpoint(self) -> str:
        """The endpoint with any user:password part removed, for messages."""
        return redact_url(self.endpoint)


def redact_url(url: str) -> str:
    """`url` without credentials or query string (which may carry a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _base_url_endpoint(base_url: str) -> str:
    """`base_url` + `/v1/traces`, or `base_url` itself when it already ends in it."""
    base = base_url.rstrip("/")
    if urlsplit(base).path.endswith(TRACES_PATH):
        safe = redact_url(base)
        debug_once(
            f"base-url-traces-path-{safe}",
            "mv37.rollout: base_url %s already ends in %s; sending there as is",
            safe,
            TRACES_PATH,
        )
        return base
    return f"{base}{TRACES_PATH}"


def _first(env: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    for name in names:
        value = env.get(name)
        if value is not None and value.strip():
            return name, value.strip()
    return None


def resolve_destination(
    config: RolloutConfig, env: Mapping[str, str] | None = None
) -> Destination | None:
    """The destination `config` and the environment name, or None (console only).

    Raises:
        ValueError: For a malformed endpoint, timeout or compression, naming the variable.
    """
    environ = os.environ if env is None else env
    if config.base_url:
        endpoint, source = _base_url_endpoint(config.base_url), "argument base_url"
    elif found := _first(environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        source = f"environment variable {found[0]}"
        endpoint = check_url(found[1], source)
    elif found := _first(environ, "OTEL_EXPORTER_OTLP_ENDPOINT"):
        source = f"environment variable {found[0]}"
        endpoint = check_url(found[1], source) + TRACES_PATH
    else:
        return None
    timeout = DEFAULT_TIMEOUT_S
    if found := _first(environ, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        try:
            millis = float(found[1])
        except ValueError:
            millis = -1.0
        if not millis > 0:
            raise ValueError(
                f"environment variable {found[0]} must be a positive number of milliseconds, "
                f"got {found[1]!r}"
            )
        timeout = millis / 1000.0
    compression = "gzip"
    if found := _first(
        environ, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"
    ):
        compression = found[1].lower()
        if compression not in _COMPRESSIONS:
            raise ValueError(
                f"environment variable {found[0]} must be one of gzip, deflate, none, "
                f"got {found[1]!r}"
            )
    return Destination(endpoint, request_headers(config, environ), timeout, compression, source)


def request_headers(
    config: RolloutConfig, env: Mapping[str, str] | None = None, signal: str = "traces"
) -> dict[str, str]:
    """The headers every request of ours carries (span and metric export, feedback sinks,
    `check()`), names lower-cased; later ones win:

    1. `OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS` (as the
       OTel exporters read them; `signal` is "traces" or "metrics"), whatever the
       destination setting;
    2. `headers=` / `ROLLOUT_HEADERS`;
    3. `Authorization: Bearer <api_key>`.

    Never logged: values may be credentials.
    """
    from mv37.rollout.base._config import parse_headers

    environ = os.environ if env is None else env
    merged: dict[str, str] = {}
    found = _first(environ, f"OTEL_EXPORTER_OTLP_{signal.upper()}_HEADERS")
    found = found or _first(environ, "OTEL_EXPORTER_OTLP_HEADERS")
    if found:
        try:
            merged.update(parse_headers(found[1], f"environment variable {found[0]}"))
        except ValueError as exc:
            # The OTel exporter skips what it cannot parse (with its own warning): so do we.
            debug_once(f"otel-headers-{found[0]}", "mv37.rollout: %s; ignored", exc)
    merged.update(config.headers)
    if config.api_key:
        merged["authorization"] = f"Bearer {config.api_key}"
    return merged


def _from_env(environ: Mapping[str, str], name: str, value: str) -> bool:
    """`value` is what the variable `name` holds (so it, not an argument, set it)."""
    held = environ.get(name)
    return held is not None and held.strip() == value


def _exported_elsewhere(config: RolloutConfig) -> bool:
    """Spans reach something besides console and destination: the user's exporters or
    processors, their tracer provider, or an SDK provider of theirs installed globally."""
    if config.span_exporters or config.span_processors or config.tracer_provider is not None:
        return True
    from opentelemetry import trace as otel_trace

    current = otel_trace.get_tracer_provider()
    if isinstance(current, otel_trace.ProxyTracerProvider):
        return False
    return not getattr(current, "_mv37_rollout", False)


SET_A_DESTINATION = (
    "set base_url= or ROLLOUT_BASE_URL to your collector's OTLP/HTTP address (such as "
    "http://localhost:4318), or OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
)


def warn_unused_settings(
    config: RolloutConfig, destination: Destination | None, env: Mapping[str, str] | None = None
) -> None:
    """Warn once when settings a client was given can do nothing: an API key with no
    destination to send it to; the console switched off with nowhere else for spans to go.

    Never the key itself: only where it came from.
    """
    if destination is not None or config.disabled:
        return
    environ = os.environ if env is None else env
    if config.api_key:
        source = (
            "ROLLOUT_API_KEY"
            if _from_env(environ, "ROLLOUT_API_KEY", config.api_key)
            else "the api_key argument"
        )
        log_once(
            "api-key-unused",
            logging.WARNING,
            "mv37.rollout: an API key is set (%s) but no destination, so the key is unused and "
            "no traces are sent%s. To send them, %s.",
            source,
            " (they only print to the console)" if config.console_enabled else "",
            SET_A_DESTINATION,
        )
    if config.console is False and not _exported_elsewhere(config):
        log_once(
            "spans-go-nowhere",
            logging.WARNING,
            "mv37.rollout: the console is off (console=False or ROLLOUT_CONSOLE) and there is no "
            "destination or exporter, so spans are recorded but go nowhere. To send them, %s; "
            "or pass span_exporters=[...]; or leave the console on to print them.",
            SET_A_DESTINATION,
        )


@functools.cache
def _session_class() -> type[Any]:
    import requests
    from requests.adapters import HTTPAdapter

    class ForkSafeSession(requests.Session):
        """A `requests` session that starts fresh connection pools in a forked child.

        The parent's pooled sockets and pool locks (maybe held by its export thread at
        the fork) are not the child's to use.
        """

        def __init__(self) -> None:
            super().__init__()
            self.pid = os.getpid()
            self.last_response: requests.Response | None = None
            self.last_error: BaseException | None = None
            self.last_attempt: Attempt | None = None

        def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
            if self.pid != os.getpid():
                self.pid = os.getpid()
                for prefix in list(self.adapters):
                    self.mount(prefix, HTTPAdapter())
            try:
                response = super().request(method, url, *args, **kwargs)
            except BaseException as exc:
                # The exporter's last retry may get a timeout its deadline already spent
                # (0.0: `requests` refuses it): that says nothing about the destination,
                # so the previous attempt's outcome (say, "cannot connect") stays.
                spent = isinstance(kwargs.get("timeout"), (int, float)) and kwargs["timeout"] <= 0
                if not spent or (self.last_error is None and self.last_response is None):
                    self.last_error, self.last_response = exc, None
                    self._note(None, exc, kwargs.get("headers"))
                raise
            self.last_error, self.last_response = None, response
            self._note(response, None, kwargs.get("headers"))
            return response

        def _note(
            self, response: Any, error: BaseException | None, headers: Mapping[str, str] | None
        ) -> None:
            """Remember the outcome (for `check()`) and note it in the running export call."""
            sent = {**self.headers, **(headers or {})}
            self.last_attempt = attempt_from(response, error, sent)
            note_attempt(self.last_attempt)

    return ForkSafeSession


def build_otlp_exporter(destination: Destination) -> tuple[SpanExporter, Any]:
    """The OTel SDK's OTLP/HTTP exporter for `destination`, and the session it posts with.

    The session remembers the last response or error (for `check()`), notes each POST's
    outcome in the export call running (`_failures.recording_attempts`), and re-creates
    its connection pools in a forked child.
    """
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    compression = {
        "gzip": Compression.Gzip,
        "deflate": Compression.Deflate,
        "none": Compression.NoCompression,
    }[destination.compression]
    session = _session_class()()
    exporter = OTLPSpanExporter(
        endpoint=destination.endpoint,
        headers=dict(destination.headers) or None,
        timeout=destination.timeout,
        compression=compression,
        session=session,
    )
    return exporter, session

"""Why an export to the destination failed, and what to do about it.

The OTLP/HTTP session (`_destination`) notes each POST's outcome; `describe_failure`
turns the last one into what the user reads, the same in the export warning and in
`check()`: the HTTP status and reason (or the connection error), a hint, and whether
the exporter retries it. Never the API key: only the status, the reason phrase and
the error's own words (the caller removes the key from anything the server echoed).

Example:
    >>> failure = describe_failure(Attempt(503, "Service Unavailable"), "http://h:4318/v1/traces")
    >>> failure.what, failure.retried
    ('HTTP 503 Service Unavailable', True)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

RETRIED_STATUSES = frozenset({429, 502, 503, 504})
"""Statuses the OTLP exporter retries (the OTLP spec's list); connection errors too."""

AUTH_HINT = (
    "check the API key (api_key or ROLLOUT_API_KEY; it is sent as `Authorization: Bearer <key>`)"
)
NO_KEY_HINT = (
    "no API key was sent: set api_key or ROLLOUT_API_KEY (sent as `Authorization: Bearer <key>`)"
)


@dataclass(frozen=True)
class Attempt:
    """One POST's outcome: an HTTP answer (`status`, `reason`, `body`) or an `error`.

    `authorized`: an Authorization header was sent (its value is never kept).
    """

    status: int | None = None
    reason: str | None = None
    body: str = ""
    error: BaseException | None = None
    authorized: bool = False


@dataclass(frozen=True)
class Failure:
    """What went wrong (`what`), what to do (`hint`, may be empty), and if it is retried."""

    what: str
    hint: str
    retried: bool


def attempt_from(
    response: Any, error: BaseException | None, headers: Mapping[str, str] | None
) -> Attempt:
    """An `Attempt` from a `requests` response or exception and the headers sent."""
    authorized = any(str(name).lower() == "authorization" for name in headers or {})
    if response is None:
        return Attempt(error=error, authorized=authorized)
    status = response.status_code
    body = ""
    if status >= 400:  # what a refusal says; a success's body is left unread (protobuf)
        raw = (response.content or b"")[:400]
        body = raw.decode("utf-8", "replace").strip().replace("\n", " ")[:200]
    return Attempt(status, response.reason or "", body, None, authorized)


def _root_cause(error: BaseException) -> BaseException:
    """The innermost error: requests wraps urllib3, which wraps the socket's `OSError`."""
    seen: set[int] = set()
    current = error
    while id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror and current.errno is not None:
            return current
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException):
            inner = current.__cause__ or current.__context__
        if not isinstance(inner, BaseException) and current.args:
            first = current.args[0]
            inner = first if isinstance(first, BaseException) else None
        if inner is None:
            break
        current = inner
    return current


def _origin(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, "", "", ""))


def _http_hint(attempt: Attempt, endpoint: str) -> str:
    status = attempt.status or 0
    if status in (401, 403):
        return AUTH_HINT if attempt.authorized else NO_KEY_HINT
    if status == 404:
        return (
            "check the base URL: /v1/traces is added to it, so it must be the collector's "
            "OTLP/HTTP base address (such as http://localhost:4318)"
        )
    if status in (400, 405, 415):
        return "check that the URL is an OTLP/HTTP traces endpoint (port 4318, not gRPC's 4317)"
    if status == 413:
        return "the collector refused the batch as too large: lower max_batch_bytes"
    if status == 429:
        return "the collector is rate-limiting this client"
    if status in RETRIED_STATUSES:
        return "the collector (or a proxy in front of it) is unavailable or overloaded"
    if status >= 500:
        return "the collector failed to take the batch; its own logs say why"
    return ""


def _error_failure(error: BaseException, endpoint: str) -> Failure:
    import socket

    import requests

    origin = _origin(endpoint)
    retried = isinstance(error, (requests.ConnectionError, requests.Timeout))
    cause = _root_cause(error)
    words = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
    if isinstance(error, requests.exceptions.SSLError):
        return Failure(
            f"TLS error ({type(error).__name__})",
            f"check http:// versus https:// and the certificate of {origin}",
            retried,
        )
    if isinstance(error, requests.Timeout) and not isinstance(cause, ConnectionRefusedError):
        return Failure(
            "no answer within the timeout",
            f"is the collector at {origin} up, and not overloaded?",
            retried,
        )
    if isinstance(error, requests.ConnectionError):
        if isinstance(cause, socket.gaierror):
            return Failure(f"cannot connect: {words}", f"check the host name in {origin}", retried)
        hint = f"is a collector listening at {origin}?"
        return Failure(f"cannot connect: {words or type(error).__name__}", hint, retried)
    return Failure(f"{type(error).__name__}: {error}", "", retried)


def describe_failure(attempt: Attempt | None, endpoint: str) -> Failure:
    """What the user reads about a failed export to `endpoint` whose last POST was `attempt`."""
    if attempt is None:
        return Failure("the exporter reported a failure", "", False)
    if attempt.error is not None:
        return _error_failure(attempt.error, endpoint)
    status = attempt.status or 0
    what = f"HTTP {status} {attempt.reason or ''}".rstrip()
    return Failure(what, _http_hint(attempt, endpoint), status in RETRIED_STATUSES)


# -- the attempts of one export call -----------------------------------------------------------


class AttemptLog:
    """The last POST's outcome within one export call (see `recording_attempts`)."""

    def __init__(self) -> None:
        self.last: Attempt | None = None


_ATTEMPTS: ContextVar[AttemptLog | None] = ContextVar("mv37_rollout_attempts", default=None)


@contextmanager
def recording_attempts() -> Iterator[AttemptLog]:
    """Within the block, POSTs made in this context note their outcome in the log yielded."""
    log = AttemptLog()
    token = _ATTEMPTS.set(log)
    try:
        yield log
    finally:
        _ATTEMPTS.reset(token)


def current_attempts() -> AttemptLog | None:
    """The log of the export call running in this context, if one records."""
    return _ATTEMPTS.get()


def note_attempt(attempt: Attempt) -> None:
    """Note `attempt` in the export call running in this context (if one records)."""
    log = _ATTEMPTS.get()
    if log is not None:
        log.last = attempt

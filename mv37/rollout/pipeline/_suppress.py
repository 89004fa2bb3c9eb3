"""We never trace ourselves: our network calls run with OTel's instrumentation suppressed.

With `requests`, `urllib3` or `httpx` instrumented (`RequestsInstrumentor().instrument()`,
`opentelemetry-instrument`), every POST of an export would otherwise become a span,
exported by the next POST, and so on forever; on a user's SDK provider our POSTs would
also show up in their backend. The SDK's own span processors set the same flag around
`export()`; every call site of ours that talks to the network goes through `suppressed()`.

Example:
    >>> with suppressed():
    ...     pass  # exporter.export(spans): instrumentors see the flag and record nothing
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.context import (
    _SUPPRESS_INSTRUMENTATION_KEY,
    attach,
    detach,
    get_value,
    set_value,
)


@contextmanager
def suppressed() -> Iterator[None]:
    """Run the block with OTel instrumentation suppressed, in this thread's context."""
    token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        detach(token)


def is_suppressed() -> bool:
    """True inside `suppressed()`, or the SDK's own export (it sets the same flag)."""
    return bool(get_value(_SUPPRESS_INSTRUMENTATION_KEY))

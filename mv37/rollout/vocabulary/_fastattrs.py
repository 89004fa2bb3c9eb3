"""Set attributes we built ourselves without the SDK re-validating each value.

The OTel SDK cleans every attribute value in Python (about 0.5 µs each on a 2-core
machine), which for a tool span with its standard mirrors costs more than the span
itself. Values built by `_attributes` are already valid (str, bool, int, float, or
tuples of one of those, capped by our payload limit), so on an SDK span we add them to
the span's attribute dict directly, under the span's lock — exactly what the SDK would
store. Anything unusual (a non-SDK span, a value-length limit, an attribute-count
limit we would exceed, an ended span) takes the public `set_attributes` path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Span as _SDKSpan
from opentelemetry.sdk.trace import _Span as _SDKConcreteSpan
from opentelemetry.trace import Span as OTelSpan


def set_clean_attributes(span: OTelSpan, attrs: Mapping[str, Any]) -> None:
    """Add already-valid attributes to `span` (fast on SDK spans, public API otherwise)."""
    if not attrs:
        return
    # The exact class first: `isinstance` against the SDK's abstract `Span` goes through
    # `ABCMeta.__instancecheck__`, a noticeable share of this function.
    if span.__class__ is _SDKConcreteSpan or isinstance(span, _SDKSpan):
        bounded = getattr(span, "_attributes", None)
        lock = getattr(span, "_lock", None)
        if (
            type(bounded) is BoundedAttributes
            and lock is not None
            and bounded.max_value_len is None
            and not bounded._immutable
        ):
            store = bounded._dict
            with lock:
                if span.end_time is None and (
                    bounded.maxlen is None or len(store) + len(attrs) <= bounded.maxlen
                ):
                    store.update(attrs)
                    return
    span.set_attributes(attrs)

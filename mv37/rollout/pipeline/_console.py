"""Console output: print each finished Rollout trace as a readable tree.

:class:`ConsoleTreeProcessor` is an OpenTelemetry span processor. When an outermost
Rollout trace (``rollout.span.type`` ``agent`` or ``trace``) starts, it remembers the
trace, buffers its OTel trace's spans as they end, and prints the subtree when the
Rollout trace's own span ends, for example::

    rollout ▸ support_agent  [agent]  42.1 ms  ok  trace 4bf92f3577b34da6a3ce929d0e0e4736
    ├─ • message user: "What's the weather in Paris?"
    ├─ get_weather  [tool]  412 µs  ok  in {"city": "Paris"}  out {"temp": 21}
    └─ plan  [task]  5.0 ms  ok
       └─ chat gpt-4o  [llm]  4.8 ms  ok  tokens 120→45 (165)  $0.0012

Spans of OTel traces without an open Rollout trace cost one dict lookup.
:func:`format_tree` renders the tree and is a pure function.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from mv37.rollout.semconv import (
    ERROR_TYPE,
    EVENT_EXCEPTION,
    EVENT_ROLLOUT_FEEDBACK,
    EVENT_ROLLOUT_MESSAGE,
    EVENT_ROLLOUT_SIGNAL,
    EXCEPTION_MESSAGE,
    EXCEPTION_TYPE,
    ROLLOUT_ERROR_MESSAGE,
    ROLLOUT_ERROR_TYPE,
    ROLLOUT_FEEDBACK_NAME,
    ROLLOUT_FEEDBACK_VALUE,
    ROLLOUT_LLM_MODEL,
    ROLLOUT_MESSAGE_CONTENT,
    ROLLOUT_MESSAGE_ROLE,
    ROLLOUT_SIGNAL_NAME,
    ROLLOUT_SIGNAL_VALUE,
    ROLLOUT_SPAN_TYPE,
    ROLLOUT_TOOL_NAME,
    ROLLOUT_TRACE_NAME,
    ROLLOUT_USAGE_COST_USD,
    ROLLOUT_USAGE_INPUT_TOKENS,
    ROLLOUT_USAGE_OUTPUT_TOKENS,
    ROLLOUT_USAGE_TOTAL_TOKENS,
)
from mv37.rollout.vocabulary._mirrors import display_keys

__all__ = ["ConsoleTreeProcessor", "format_tree"]

_logger = logging.getLogger("mv37.rollout")

TRACE_SPAN_TYPES = frozenset({"agent", "trace"})
"""Values of ``rollout.span.type`` that make a span a Rollout trace."""

DEFAULT_MAX_SPANS_PER_TRACE = 10_000
"""Spans buffered per trace before the rest are only counted."""

DEFAULT_MAX_OPEN_TRACES = 1_000
"""Rollout traces tracked at once; further ones are not printed."""

_SHORT_LIMIT = 60
_ERROR_LIMIT = 120

# ANSI styles used when colour is on.
_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
_RED = "\x1b[31m"
_GREEN = "\x1b[32m"
_YELLOW = "\x1b[33m"
_CYAN = "\x1b[36m"


# --------------------------------------------------------------------------- formatting


def _style(text: str, code: str, color: bool) -> str:
    """Wrap ``text`` in an ANSI style when ``color`` is on."""
    return f"{code}{text}{_RESET}" if color else text


def _shorten(value: object, limit: int = _SHORT_LIMIT) -> str:
    """Render ``value`` on one line, cut to ``limit`` characters with "…"."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (tuple, list)):
        text = "[" + ", ".join(_shorten(item, limit) for item in value) + "]"
    else:
        text = str(value)
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def format_duration(nanoseconds: int | None) -> str:
    """Render a duration in nanoseconds as "850 µs", "12.3 ms", "1.52 s" or "2 m 05 s"."""
    if nanoseconds is None or nanoseconds < 0:
        return "?"
    if nanoseconds < 999_500:
        return f"{nanoseconds / 1_000:.0f} µs"
    if nanoseconds < 999_950_000:
        return f"{nanoseconds / 1_000_000:.1f} ms"
    seconds = nanoseconds / 1_000_000_000
    if seconds < 59.995:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} m {rest:02d} s"


def _format_cost(cost: float) -> str:
    """Render a USD cost with at least two and at most six decimals."""
    text = f"{cost:.6f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"


def _attrs(span: ReadableSpan) -> Mapping[str, Any]:
    """The span's attributes, never None."""
    return span.attributes or {}


def _span_type(attrs: Mapping[str, Any]) -> str | None:
    """The ``rollout.span.type`` of a span, or None for a foreign span."""
    value = attrs.get(ROLLOUT_SPAN_TYPE)
    return value if isinstance(value, str) and value else None


def _display_name(span: ReadableSpan, attrs: Mapping[str, Any]) -> str:
    """Rollout trace name for trace spans, the span name otherwise."""
    if _span_type(attrs) in TRACE_SPAN_TYPES:
        trace_name = attrs.get(ROLLOUT_TRACE_NAME)
        if isinstance(trace_name, str) and trace_name:
            return _shorten(trace_name)
    return _shorten(span.name)


def _error_text(span: ReadableSpan, attrs: Mapping[str, Any]) -> str | None:
    """ "<type>: <message>" when the span failed, else None."""
    error_type = attrs.get(ROLLOUT_ERROR_TYPE)
    message = attrs.get(ROLLOUT_ERROR_MESSAGE)
    failed = span.status.status_code is StatusCode.ERROR or error_type is not None
    if not failed:
        return None
    if error_type is None and message is None:
        for event in reversed(span.events):
            if event.name == EVENT_EXCEPTION:
                event_attrs = event.attributes or {}
                error_type = event_attrs.get(EXCEPTION_TYPE)
                message = event_attrs.get(EXCEPTION_MESSAGE)
                break
    if error_type is None and message is None:
        description = span.status.description
        return _shorten(description, _ERROR_LIMIT) if description else ""
    if error_type is None:
        return _shorten(message, _ERROR_LIMIT)
    if message is None or message == "":
        return _shorten(error_type, _ERROR_LIMIT)
    return _shorten(f"{error_type}: {message}", _ERROR_LIMIT)


def _interruption_text(span: ReadableSpan, attrs: Mapping[str, Any]) -> str | None:
    """ "cancelled" / "interrupted (<type>)" when a non-error exception ended the span."""
    error_type = attrs.get(ERROR_TYPE)
    if error_type is None or span.status.status_code is StatusCode.ERROR:
        return None
    if error_type == "CancelledError":
        return "cancelled"
    return f"interrupted ({_shorten(error_type, _ERROR_LIMIT)})"


def _status_text(span: ReadableSpan, attrs: Mapping[str, Any], color: bool) -> str:
    """The status text: "ok", "cancelled", "interrupted (<type>)" or "ERROR <type>: ..."."""
    error = _error_text(span, attrs)
    if error is None:
        interrupted = _interruption_text(span, attrs)
        if interrupted is not None:
            return _style(interrupted, _YELLOW, color)
        return _style("ok", _GREEN, color)
    return _style(f"ERROR {error}" if error else "ERROR", _RED, color)


def _usage_parts(attrs: Mapping[str, Any]) -> list[str]:
    """The "tokens in→out (total)" and "$cost" parts when the span carries usage."""
    parts: list[str] = []
    in_tokens = attrs.get(ROLLOUT_USAGE_INPUT_TOKENS)
    out_tokens = attrs.get(ROLLOUT_USAGE_OUTPUT_TOKENS)
    total = attrs.get(ROLLOUT_USAGE_TOTAL_TOKENS)
    if in_tokens is not None or out_tokens is not None or total is not None:
        if total is None and isinstance(in_tokens, int) and isinstance(out_tokens, int):
            total = in_tokens + out_tokens
        shown = ["?" if value is None else _shorten(value) for value in (in_tokens, out_tokens)]
        total_text = "?" if total is None else _shorten(total)
        parts.append(f"tokens {shown[0]}→{shown[1]} ({total_text})")
    cost = attrs.get(ROLLOUT_USAGE_COST_USD)
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        parts.append(_format_cost(float(cost)))
    return parts


_PAYLOAD_KEYS = (("in", display_keys("input")), ("out", display_keys("output")))


def _detail_parts(span: ReadableSpan, attrs: Mapping[str, Any], name: str) -> list[str]:
    """Model / tool name (when not already in the name), usage, input and output."""
    parts: list[str] = []
    model = attrs.get(ROLLOUT_LLM_MODEL)
    if model is not None and str(model) not in span.name:
        parts.append(f"model {_shorten(model)}")
    tool = attrs.get(ROLLOUT_TOOL_NAME)
    if tool is not None and str(tool) not in name:
        parts.append(f"tool {_shorten(tool)}")
    parts.extend(_usage_parts(attrs))
    for label, keys in _PAYLOAD_KEYS:  # under whichever convention(s) it was written
        key = next((key for key in keys if key in attrs), None)
        if key is not None:
            parts.append(f"{label} {_shorten(attrs[key])}")
    return parts


def _span_line(span: ReadableSpan, color: bool, *, is_root: bool = False) -> str:
    """The one-line summary of a span (without the tree prefix)."""
    attrs = _attrs(span)
    name = _display_name(span, attrs)
    span_type = _span_type(attrs) or "otel"
    duration = None
    if span.start_time is not None and span.end_time is not None:
        duration = span.end_time - span.start_time
    parts = [
        _style(name, _BOLD, color),
        _style(f"[{_shorten(span_type)}]", _CYAN, color),
        format_duration(duration),
        _status_text(span, attrs, color),
    ]
    if is_root:
        context = span.context
        if context is not None:
            parts.append(_style(f"trace {context.trace_id:032x}", _DIM, color))
    parts.extend(_detail_parts(span, attrs, name))
    line = "  ".join(parts)
    return f"{_style('rollout ▸', _DIM, color)} {line}" if is_root else line


def _event_lines(span: ReadableSpan, color: bool) -> list[str]:
    """Bullet lines for the span's message, feedback, signal and handled-exception events."""
    lines: list[str] = []
    attrs_of_span = _attrs(span)
    # The span's status line already reports a failure or an interruption.
    ended_reported = (
        _error_text(span, attrs_of_span) is not None
        or _interruption_text(span, attrs_of_span) is not None
    )
    for event in sorted(span.events, key=lambda e: e.timestamp):
        attrs = event.attributes or {}
        if event.name == EVENT_ROLLOUT_MESSAGE:
            role = attrs.get(ROLLOUT_MESSAGE_ROLE)
            content = attrs.get(ROLLOUT_MESSAGE_CONTENT, "")
            head = f"message {_shorten(role)}" if role is not None else "message"
            text = f'{head}: "{_shorten(content)}"'
        elif event.name == EVENT_ROLLOUT_FEEDBACK:
            name = _shorten(attrs.get(ROLLOUT_FEEDBACK_NAME, "?"))
            text = f"feedback {name} = {_shorten(attrs.get(ROLLOUT_FEEDBACK_VALUE, ''))}"
        elif event.name == EVENT_ROLLOUT_SIGNAL:
            name = _shorten(attrs.get(ROLLOUT_SIGNAL_NAME, "?"))
            text = f"signal {name} = {_shorten(attrs.get(ROLLOUT_SIGNAL_VALUE, ''))}"
        elif event.name == EVENT_EXCEPTION:
            if ended_reported:
                continue
            exc = f"{attrs.get(EXCEPTION_TYPE, '?')}: {attrs.get(EXCEPTION_MESSAGE, '')}"
            text = _style(f"exception {_shorten(exc, _ERROR_LIMIT)}", _YELLOW, color)
        else:
            continue
        lines.append(f"• {text}")
    return lines


def _span_id(span: ReadableSpan) -> int | None:
    """The span id of a span, or None when it has no context."""
    context = span.context
    return None if context is None else int(context.span_id)


def format_tree(
    root: ReadableSpan,
    spans: Sequence[ReadableSpan],
    *,
    dropped: int = 0,
    color: bool = False,
) -> str:
    """Render ``root`` and the ``spans`` below it as a box-drawn tree.

    Args:
        root: The span at the top of the tree (usually a Rollout trace span).
        spans: Finished spans to place below ``root``, found via their parent span
            ids; a span whose parent is not among them hangs directly under
            ``root``. ``root`` itself may be included and is skipped.
        dropped: Number of further spans that were not kept; shown as a last line.
        color: Add ANSI colours.

    Returns:
        The tree, one line per span or event, without a trailing newline.
    """
    root_id = _span_id(root)
    by_id: dict[int, ReadableSpan] = {}
    ordered: list[ReadableSpan] = []
    for span in spans:
        span_id = _span_id(span)
        if span is root or span_id is None or span_id == root_id or span_id in by_id:
            continue
        by_id[span_id] = span
        ordered.append(span)

    children: dict[int | None, list[ReadableSpan]] = {}
    for span in ordered:
        parent = span.parent
        parent_id: int | None = None if parent is None else int(parent.span_id)
        if parent_id is None or (parent_id != root_id and parent_id not in by_id):
            parent_id = root_id  # orphan: hang it under the root
        children.setdefault(parent_id, []).append(span)
    for group in children.values():
        group.sort(key=lambda s: s.start_time or 0)

    lines = [_span_line(root, color, is_root=True)]
    visited: set[int | None] = {root_id}
    # Each stack entry is one pending item: (prefix for the item, is_last, span or text).
    stack: list[tuple[str, bool, ReadableSpan | str]] = []

    def push_items(owner: ReadableSpan, owner_id: int | None, prefix: str, extra: int) -> None:
        items: list[ReadableSpan | str] = [*_event_lines(owner, color)]
        items.extend(children.get(owner_id, ()) if owner_id is not None else ())
        if extra > 0:
            items.append(_style(f"… {extra} more spans not shown", _DIM, color))
        for index in range(len(items) - 1, -1, -1):
            stack.append((prefix, index == len(items) - 1, items[index]))

    push_items(root, root_id, "", dropped)
    while stack:
        prefix, is_last, item = stack.pop()
        branch = "└─ " if is_last else "├─ "
        if isinstance(item, str):
            lines.append(f"{prefix}{branch}{item}")
            continue
        item_id = _span_id(item)
        if item_id in visited:
            continue
        visited.add(item_id)
        lines.append(f"{prefix}{branch}{_span_line(item, color)}")
        push_items(item, item_id, prefix + ("   " if is_last else "│  "), 0)
    return "\n".join(lines)


# --------------------------------------------------------------------------- processor


class _TraceBuffer:
    """Spans collected for one open printing root."""

    __slots__ = ("dropped", "root_span_id", "spans")

    def __init__(self, root_span_id: int) -> None:
        self.root_span_id = root_span_id
        self.spans: list[ReadableSpan] = []
        self.dropped = 0


class ConsoleTreeProcessor(SpanProcessor):
    """Span processor that prints each finished Rollout trace as a tree.

    Args:
        stream: Where to print; defaults to ``sys.stderr`` looked up at print time.
        color: Force ANSI colours on or off; by default on only when the stream is
            a TTY and ``NO_COLOR`` is unset.
        max_spans_per_trace: Spans kept per trace; further ones are counted and
            reported as "… N more spans not shown".
        max_open_traces: Rollout traces tracked at the same time; traces started
            beyond this are not printed.
        scrub: Applied to the tree text before it is printed (the client passes its
            default scrubbing, so secrets do not land in logs either).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        color: bool | None = None,
        max_spans_per_trace: int = DEFAULT_MAX_SPANS_PER_TRACE,
        max_open_traces: int = DEFAULT_MAX_OPEN_TRACES,
        scrub: Callable[[str], str] | None = None,
    ) -> None:
        self._stream = stream
        self._scrub = scrub
        self._color = color
        self._max_spans = max(0, max_spans_per_trace)
        self._max_open = max(0, max_open_traces)
        self._lock = threading.Lock()
        self._traces: dict[int, _TraceBuffer] = {}
        self._error_logged = False

    # -- SpanProcessor -----------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Register an outermost Rollout trace span as its trace's printing root."""
        try:
            attributes = span.attributes
            if attributes is None or attributes.get(ROLLOUT_SPAN_TYPE) not in TRACE_SPAN_TYPES:
                return
            context = span.context
            if context is None:
                return
            trace_id = int(context.trace_id)
            with self._lock:
                if trace_id in self._traces or len(self._traces) >= self._max_open:
                    return
                self._traces[trace_id] = _TraceBuffer(int(context.span_id))
        except Exception:
            self._log_error("on_start")

    def on_end(self, span: ReadableSpan) -> None:
        """Buffer a span of an open Rollout trace; print the tree when its root ends."""
        try:
            context = span.context
            if context is None:
                return
            trace_id = int(context.trace_id)
            if trace_id not in self._traces:  # fast path, no lock
                return
            with self._lock:
                buffer = self._traces.get(trace_id)
                if buffer is None:
                    return
                if buffer.root_span_id != context.span_id:
                    if len(buffer.spans) < self._max_spans:
                        buffer.spans.append(span)
                    else:
                        buffer.dropped += 1
                    return
                del self._traces[trace_id]
            self._print(span, buffer)
        except Exception:
            self._log_error("on_end")

    def shutdown(self) -> None:
        """Forget all open traces without printing."""
        with self._lock:
            self._traces.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing to flush: trees print as their root ends."""
        return True

    # -- internals ---------------------------------------------------------------------

    def _print(self, root: ReadableSpan, buffer: _TraceBuffer) -> None:
        """Format the tree of ``buffer`` under ``root`` and write it to the stream."""
        stream = self._stream if self._stream is not None else sys.stderr
        if stream is None:
            return
        color = self._color
        if color is None:
            color = _stream_is_tty(stream) and "NO_COLOR" not in os.environ
        text = format_tree(root, buffer.spans, dropped=buffer.dropped, color=color)
        try:
            if self._scrub is not None:
                text = self._scrub(text)
            stream.write(text + "\n")
            stream.flush()
        except Exception:
            self._log_error("writing the trace tree")

    def _log_error(self, where: str) -> None:
        """Log the first internal failure with its traceback; later ones at debug level."""
        if self._error_logged:
            _logger.debug("ConsoleTreeProcessor failed in %s", where, exc_info=True)
            return
        self._error_logged = True
        _logger.warning(
            "ConsoleTreeProcessor failed in %s; further failures are logged at debug level",
            where,
            exc_info=True,
        )


def _stream_is_tty(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (False if that cannot be told)."""
    try:
        return bool(stream.isatty())
    except Exception:
        return False

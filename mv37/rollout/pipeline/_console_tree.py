"""Render a finished Rollout trace as a box-drawn tree that fits a terminal width.

One line per span (guide, name, ``[type]``, duration, status, tokens, cost), its input
and output on their own lines under it, and its events between its child spans in the
order they happened::

    rollout ▸ support_agent  [agent]  42.1 ms  ok  tokens 120→45 (165)  $0.0012
    │ trace 4bf92f3577b34da6a3ce929d0e0e4736
    │ in  {"text": "What's the weather in Paris?"}
    ├─ • message user: "What's the weather in Paris?"
    ├─ get_weather  [tool]  412 µs  ok
    │    in  {"city": "Paris"}
    │    out {"city": "Paris", "temp": 21}
    └─ plan  [task]  5.0 ms  ok
       └─ chat gpt-4o  [llm]  4.8 ms  ok  tokens 120→45 (165)  $0.0012

No line is wider than `width` cells (wide characters count two). When a span's line does
not fit, it gives up, in this order: a long error message and the root's trace id (each
moved to a line of its own under the span), the model / tool detail, one of the two
spaces between fields, the long token forms ("tokens 42→12 (54)", then "42→12 tok",
then "54 tok"), the end of the name; a line that still does not fit is cut with "…".
Inputs, outputs, errors and events are cut with "…". Guides deeper than about 40% of
the width are elided from the left ("…"). Everything taken from a span is scrubbed
before it is cut, so a secret at the edge is never half shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from mv37.rollout.pipeline._console_style import BOLD, CYAN, DIM, GREEN, MAGENTA, RED, YELLOW
from mv37.rollout.pipeline._console_style import paint as _paint
from mv37.rollout.pipeline._console_text import cells, fit, format_cost, format_duration, one_line
from mv37.rollout.semconv import (
    ERROR_TYPE,
    EVENT_EXCEPTION,
    EVENT_ROLLOUT_EVENT,
    EVENT_ROLLOUT_FEEDBACK,
    EVENT_ROLLOUT_IDENTIFY,
    EVENT_ROLLOUT_MESSAGE,
    EVENT_ROLLOUT_SIGNAL,
    EXCEPTION_MESSAGE,
    EXCEPTION_TYPE,
    INPUT_MIME_TYPE,
    OUTPUT_MIME_TYPE,
    ROLLOUT_ACCOUNT_ID,
    ROLLOUT_ERROR_MESSAGE,
    ROLLOUT_ERROR_TYPE,
    ROLLOUT_EVENT_FIELDS,
    ROLLOUT_EVENT_TYPE,
    ROLLOUT_FEEDBACK_NAME,
    ROLLOUT_FEEDBACK_VALUE,
    ROLLOUT_INPUT_MIME_TYPE,
    ROLLOUT_LLM_MODEL,
    ROLLOUT_MESSAGE_CONTENT,
    ROLLOUT_MESSAGE_ROLE,
    ROLLOUT_OUTPUT_MIME_TYPE,
    ROLLOUT_SIGNAL_NAME,
    ROLLOUT_SIGNAL_VALUE,
    ROLLOUT_SPAN_TYPE,
    ROLLOUT_TOOL_NAME,
    ROLLOUT_TRACE_NAME,
    ROLLOUT_USAGE_COST_USD,
    ROLLOUT_USAGE_INPUT_TOKENS,
    ROLLOUT_USAGE_OUTPUT_TOKENS,
    ROLLOUT_USAGE_TOTAL_TOKENS,
    ROLLOUT_USER_ID,
)
from mv37.rollout.vocabulary._attributes import LLM
from mv37.rollout.vocabulary._foreign import foreign_usage, is_llm_span
from mv37.rollout.vocabulary._mirrors import display_keys

__all__ = ["TRACE_SPAN_TYPES", "format_late", "format_tree", "trace_label"]

TRACE_SPAN_TYPES = frozenset({"agent", "trace"})
"""Values of ``rollout.span.type`` that make a span a Rollout trace."""

ROOT_MARK = "rollout ▸ "
_NAME_LIMIT = 200  # characters of a name looked at
_SHORT_ID = 8  # last hex digits of a trace id on a late line (our ids begin with the time)

# Kinds of the fields of a line, in the order they are given up when it does not fit.
_NAME, _TYPE, _DURATION, _STATUS, _DETAIL, _TOKENS, _COST, _TRACE, _EVENT = range(9)

_PAYLOADS = (
    ("in  ", display_keys("input"), (ROLLOUT_INPUT_MIME_TYPE, INPUT_MIME_TYPE), "{}"),
    ("out ", display_keys("output"), (ROLLOUT_OUTPUT_MIME_TYPE, OUTPUT_MIME_TYPE), "null"),
)
"""(label, keys it may be under, mime-type keys, the JSON an absent payload is written as)."""


class _Part:
    """One field of a line: its text, ANSI style, kind and shorter forms (if any)."""

    __slots__ = ("kind", "shorter", "style", "text")

    def __init__(self, text: str, style: str, kind: int, shorter: Sequence[str] = ()) -> None:
        self.text = text
        self.style = style
        self.kind = kind
        self.shorter = list(shorter)


class _Step:
    """One way to make a line narrower: drop a kind, shrink it, use one space, short forms."""

    __slots__ = ("action", "kind", "minimum")

    def __init__(self, action: str, kind: int = -1, minimum: int = 0) -> None:
        self.action = action
        self.kind = kind
        self.minimum = minimum


_SPAN_PLAN = (
    _Step("drop", _DETAIL),
    _Step("shrink", _STATUS, 16),
    _Step("one space"),
    _Step("shorter"),
    _Step("shorter"),
    _Step("shrink", _NAME, 8),
    _Step("shrink", _STATUS, 5),
)
_LATE_PLAN = (
    _Step("one space"),
    _Step("shrink", _NAME, 12),
    _Step("shrink", _EVENT, 10),
)


def _total(parts: Sequence[_Part], sep: str) -> int:
    return sum(cells(part.text) for part in parts) + len(sep) * max(0, len(parts) - 1)


def _shrink(parts: list[_Part], kind: int, minimum: int, excess: int) -> list[_Part]:
    """Cut the first part of `kind` by `excess` cells, to no fewer than `minimum`."""
    for part in parts:
        if part.kind == kind:
            size = cells(part.text)
            target = max(minimum, size - excess)
            if target < size:
                part.text = fit(part.text, target)
            break
    return parts


def _hard_cut(parts: list[_Part], width: int, sep: str) -> list[_Part]:
    """The parts that fit in `width`; the first that does not is cut with "…"."""
    kept: list[_Part] = []
    used = 0
    for part in parts:
        room = width - used - (len(sep) if kept else 0)
        size = cells(part.text)
        if size <= room:
            kept.append(part)
            used += size + (len(sep) if len(kept) > 1 else 0)
            continue
        if room >= 2:
            part.text = fit(part.text, room)
            kept.append(part)
        break
    return kept


def _fit_parts(parts: list[_Part], width: int, plan: Sequence[_Step]) -> tuple[list[_Part], str]:
    """`parts` made to fit in `width` cells following `plan`, and the separator to use."""
    sep = "  "
    for step in plan:
        total = _total(parts, sep)
        if total <= width:
            return parts, sep
        if step.action == "drop":
            parts = [part for part in parts if part.kind != step.kind]
        elif step.action == "shrink":
            parts = _shrink(parts, step.kind, step.minimum, total - width)
        elif step.action == "one space":
            sep = " "
        else:
            for part in parts:
                if part.shorter:
                    part.text = part.shorter.pop(0)
    if _total(parts, sep) <= width:
        return parts, sep
    return _hard_cut(parts, width, sep), sep


def _join(parts: Sequence[_Part], sep: str, color: bool) -> str:
    return sep.join(_paint(part.text, part.style, color) for part in parts)


# --------------------------------------------------------------------------- span fields


class _Render:
    """What one tree is rendered with: width, colour, scrubbing of shown text."""

    __slots__ = ("_attrs", "_status", "color", "limit", "max_guides", "scrub", "width")

    def __init__(self, width: int, color: bool, scrub: Callable[[str], str] | None) -> None:
        self.width = width
        self.color = color
        self.scrub = scrub
        self.limit = 4 * width + 256  # characters of a payload looked at
        self.max_guides = max(6, (width * 2 // 5) // 3 * 3)
        self._attrs: dict[int, dict[str, Any]] = {}
        self._status: dict[int, _Part] = {}

    def attrs(self, span: ReadableSpan) -> dict[str, Any]:
        """The span's attributes as a plain dict, copied once per span and render."""
        found = self._attrs.get(id(span))
        if found is None:
            found = self._attrs[id(span)] = dict(span.attributes or {})
        return found

    def status(self, span: ReadableSpan) -> _Part:
        """The span's status field ("ok", "cancelled", "ERROR ..."), built once."""
        found = self._status.get(id(span))
        if found is None:
            found = self._status[id(span)] = _status_part(span, self.attrs(span), self)
        return _Part(found.text, found.style, found.kind)

    def text(self, value: object, limit: int | None = None) -> str:
        """`value` on one line, scrubbed (only the first `limit` characters are read)."""
        text = one_line(value, self.limit if limit is None else limit)
        return self.scrub(text) if self.scrub is not None else text

    def lead(self, guides: str, tail: str) -> str:
        """`guides` + `tail`, the guides elided from the left beyond `max_guides`."""
        if len(guides) <= self.max_guides:
            return guides + tail
        return "…" + guides[len(guides) - self.max_guides + 1 :] + tail

    def paint(self, text: str, style: str) -> str:
        return _paint(text, style, self.color)


def _attrs(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def _span_type(attrs: Mapping[str, Any]) -> str | None:
    value = attrs.get(ROLLOUT_SPAN_TYPE)
    if isinstance(value, str) and value:
        return value
    return LLM if is_llm_span(attrs) else None  # another instrumentation's model call


def trace_label(span: ReadableSpan, attrs: Mapping[str, Any] | None = None) -> str:
    """The name a Rollout trace is shown under: its trace name, else the span name."""
    if attrs is None:
        attrs = _attrs(span)
    trace_name = attrs.get(ROLLOUT_TRACE_NAME)
    if _span_type(attrs) in TRACE_SPAN_TYPES and isinstance(trace_name, str) and trace_name:
        return one_line(trace_name, _NAME_LIMIT)
    return one_line(span.name, _NAME_LIMIT)


def _error_text(span: ReadableSpan, attrs: Mapping[str, Any], r: _Render) -> str | None:
    """ "<type>: <message>" when the span failed, else None."""
    error_type = attrs.get(ROLLOUT_ERROR_TYPE)
    message = attrs.get(ROLLOUT_ERROR_MESSAGE)
    if span.status.status_code is not StatusCode.ERROR and error_type is None:
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
        return r.text(description) if description else ""
    if error_type is None:
        return r.text(message)
    if message is None or message == "":
        return r.text(error_type)
    return r.text(f"{error_type}: {message}")


def _interruption_text(span: ReadableSpan, attrs: Mapping[str, Any]) -> str | None:
    """ "cancelled" / "interrupted (<type>)" when a non-error exception ended the span."""
    error_type = attrs.get(ERROR_TYPE)
    if error_type is None or span.status.status_code is StatusCode.ERROR:
        return None
    if error_type == "CancelledError":
        return "cancelled"
    return f"interrupted ({one_line(error_type, _NAME_LIMIT)})"


def _status_part(span: ReadableSpan, attrs: Mapping[str, Any], r: _Render) -> _Part:
    error = _error_text(span, attrs, r)
    if error is not None:
        return _Part(f"ERROR {error}" if error else "ERROR", RED, _STATUS)
    interrupted = _interruption_text(span, attrs)
    if interrupted is not None:
        return _Part(interrupted, YELLOW, _STATUS)
    return _Part("ok", GREEN, _STATUS)


def _usage_parts(attrs: Mapping[str, Any]) -> list[_Part]:
    """ "tokens in→out (total)" (shorter: "in→out tok", "total tok") and "$cost"."""
    parts: list[_Part] = []
    in_tokens = attrs.get(ROLLOUT_USAGE_INPUT_TOKENS)
    out_tokens = attrs.get(ROLLOUT_USAGE_OUTPUT_TOKENS)
    total = attrs.get(ROLLOUT_USAGE_TOTAL_TOKENS)
    if in_tokens is None and out_tokens is None and total is None and is_llm_span(attrs):
        usage = foreign_usage(attrs)  # another instrumentation's LLM span
        in_tokens, out_tokens = usage.get("input_tokens"), usage.get("output_tokens")
        total = usage.get("total_tokens")
    if in_tokens is not None or out_tokens is not None or total is not None:
        if total is None and isinstance(in_tokens, int) and isinstance(out_tokens, int):
            total = in_tokens + out_tokens
        shown = ["?" if v is None else one_line(v, 20) for v in (in_tokens, out_tokens)]
        total_text = "?" if total is None else one_line(total, 20)
        long = f"tokens {shown[0]}→{shown[1]} ({total_text})"
        parts.append(_Part(long, "", _TOKENS, (f"{shown[0]}→{shown[1]} tok", f"{total_text} tok")))
    cost = attrs.get(ROLLOUT_USAGE_COST_USD)
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        parts.append(_Part(format_cost(float(cost)), "", _COST))
    return parts


def _span_parts(span: ReadableSpan, r: _Render) -> list[_Part]:
    """The fields of a span's line, before fitting."""
    attrs = r.attrs(span)
    name = r.text(trace_label(span, attrs), _NAME_LIMIT)
    duration = None
    if span.start_time is not None and span.end_time is not None:
        duration = span.end_time - span.start_time
    parts = [
        _Part(name, BOLD, _NAME),
        _Part(f"[{one_line(_span_type(attrs) or 'otel', 40)}]", CYAN, _TYPE),
        _Part(format_duration(duration), "", _DURATION),
        r.status(span),
    ]
    model = attrs.get(ROLLOUT_LLM_MODEL)
    if model is not None and str(model) not in span.name:
        parts.append(_Part(f"model {one_line(model, 80)}", "", _DETAIL))
    tool = attrs.get(ROLLOUT_TOOL_NAME)
    if tool is not None and str(tool) not in name:
        parts.append(_Part(f"tool {one_line(tool, 80)}", "", _DETAIL))
    parts.extend(_usage_parts(attrs))
    return parts


def _payloads(span: ReadableSpan, r: _Render) -> list[tuple[str, str]]:
    """(label, text) of the span's input and output; an empty or absent one is left out.

    A function called without arguments records input ``{}`` and one returning None
    records output ``null`` (JSON): neither is shown.
    """
    attrs = r.attrs(span)
    found: list[tuple[str, str]] = []
    for label, keys, mime_keys, absent in _PAYLOADS:
        key = next((key for key in keys if key in attrs), None)
        if key is None:
            continue
        value = attrs[key]
        if value in ("", ()):
            continue
        if value == absent and all(
            attrs.get(m, "application/json") != "text/plain" for m in mime_keys
        ):
            continue
        found.append((label, r.text(value)))
    return found


# --------------------------------------------------------------------------- events


def _event_text(name: str, attrs: Mapping[str, Any], r: _Render) -> tuple[str, str] | None:
    """(text, style) of a Rollout event shown in the tree, None for other events."""
    if name == EVENT_ROLLOUT_MESSAGE:
        role = attrs.get(ROLLOUT_MESSAGE_ROLE)
        head = f"message {r.text(role, 40)}" if role is not None else "message"
        return f'{head}: "{r.text(attrs.get(ROLLOUT_MESSAGE_CONTENT, ""))}"', ""
    if name == EVENT_ROLLOUT_FEEDBACK:
        label = r.text(attrs.get(ROLLOUT_FEEDBACK_NAME, "?"), _NAME_LIMIT)
        return f"feedback {label} = {r.text(attrs.get(ROLLOUT_FEEDBACK_VALUE, ''))}", MAGENTA
    if name == EVENT_ROLLOUT_SIGNAL:
        label = r.text(attrs.get(ROLLOUT_SIGNAL_NAME, "?"), _NAME_LIMIT)
        return f"signal {label} = {r.text(attrs.get(ROLLOUT_SIGNAL_VALUE, ''))}", MAGENTA
    if name == EVENT_ROLLOUT_IDENTIFY:
        who = attrs.get(ROLLOUT_USER_ID)
        account = attrs.get(ROLLOUT_ACCOUNT_ID)
        text = "identify"
        if who is not None:
            text += f" user {r.text(who, _NAME_LIMIT)}"
        if account is not None:
            text += f" account {r.text(account, _NAME_LIMIT)}"
        return text, ""
    if name == EVENT_ROLLOUT_EVENT:
        text = f"event {r.text(attrs.get(ROLLOUT_EVENT_TYPE, '?'), _NAME_LIMIT)}"
        fields = attrs.get(ROLLOUT_EVENT_FIELDS)
        return (f"{text} {r.text(fields)}" if fields is not None else text), ""
    return None


def _event_items(span: ReadableSpan, r: _Render) -> list[tuple[int, str, str]]:
    """(timestamp, text, style) of the span's events shown in the tree."""
    # The status already reports the exception that ended the span.
    ended_reported = r.status(span).style != GREEN
    items: list[tuple[int, str, str]] = []
    for event in span.events:
        event_attrs = event.attributes or {}
        if event.name == EVENT_EXCEPTION:
            if ended_reported:
                continue
            exc = (
                f"{event_attrs.get(EXCEPTION_TYPE, '?')}: {event_attrs.get(EXCEPTION_MESSAGE, '')}"
            )
            items.append((event.timestamp, f"exception {r.text(exc)}", YELLOW))
            continue
        shown = _event_text(event.name, event_attrs, r)
        if shown is not None:
            items.append((event.timestamp, shown[0], shown[1]))
    return items


# --------------------------------------------------------------------------- tree


def _span_id(span: ReadableSpan) -> int | None:
    context = span.context
    return None if context is None else int(context.span_id)


def _children(
    root: ReadableSpan, root_id: int | None, spans: Sequence[ReadableSpan]
) -> dict[int | None, list[ReadableSpan]]:
    """Spans by parent span id; a span whose parent is not among them hangs under `root`."""
    by_id: dict[int, ReadableSpan] = {}
    for span in spans:
        span_id = _span_id(span)
        if span is root or span_id is None or span_id == root_id or span_id in by_id:
            continue
        by_id[span_id] = span
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in by_id.values():
        parent = span.parent
        parent_id: int | None = None if parent is None else int(parent.span_id)
        if parent_id is None or (parent_id != root_id and parent_id not in by_id):
            parent_id = root_id
        children.setdefault(parent_id, []).append(span)
    return children


_Item = ReadableSpan | tuple[str, str]
"""A child span, or an event / note line as (text, style)."""


def _items(
    span: ReadableSpan,
    children: Sequence[ReadableSpan],
    extra: int,
    r: _Render,
) -> list[_Item]:
    """The span's events and child spans in time order, then the "more spans" note."""
    timed: list[tuple[int, int, _Item]] = [
        (time, 0, (text, style)) for time, text, style in _event_items(span, r)
    ]
    timed.extend((child.start_time or 0, 1, child) for child in children)
    timed.sort(key=lambda item: (item[0], item[1]))
    items = [item for _, _, item in timed]
    if extra > 0:
        items.append((f"… {extra} more spans not shown", DIM))
    return items


def _span_block(
    span: ReadableSpan,
    r: _Render,
    *,
    guides: str,
    branch: str,
    below: str,
    has_items: bool,
    root: bool = False,
) -> list[str]:
    """The span's line and its payload lines (and, for the root, maybe the trace id line).

    `guides` + `branch` lead the span's line; `guides` + `below` + own guide lead the lines
    under it (own guide: "│ " when items follow, so the tree stays connected).
    """
    own = "│ " if has_items else "  "
    under = r.lead(guides, below + own)
    head = r.lead(guides, branch)
    room = r.width - cells(head) - (cells(ROOT_MARK) if root else 0)
    parts = _span_parts(span, r)
    extra: list[tuple[str, str, str]] = []  # (label, text, style) lines under the span
    status = next(part for part in parts if part.kind == _STATUS)
    if status.style == RED and status.text != "ERROR" and _total(parts, "  ") > room:
        # A long error gets a line of its own rather than being cut on the span's line.
        extra.append(("err ", status.text[len("ERROR ") :], RED))
        status.text = "ERROR"
    lines: list[str] = []
    trace_line: str | None = None
    if root:
        context = span.context
        if context is not None:
            trace_text = f"trace {context.trace_id:032x}"
            with_trace = [*parts, _Part(trace_text, DIM, _TRACE)]
            if _total(with_trace, "  ") <= room:
                parts = with_trace
            else:
                text = fit(trace_text, r.width - cells(under))
                trace_line = r.paint(under + text, DIM)
    fitted, sep = _fit_parts(parts, room, _SPAN_PLAN)
    line = _join(fitted, sep, r.color)
    if root:
        line = r.paint(ROOT_MARK.rstrip(), DIM) + " " + line
    lines.append(r.paint(head, DIM) + line)
    if trace_line is not None:
        lines.append(trace_line)
    room = r.width - cells(under) - 4
    for label, text, style in [*((lb, tx, "") for lb, tx in _payloads(span, r)), *extra]:
        lines.append(r.paint(under + label, DIM) + r.paint(fit(text, room), style))
    return lines


def format_tree(
    root: ReadableSpan,
    spans: Sequence[ReadableSpan],
    *,
    dropped: int = 0,
    color: bool = False,
    width: int = 100,
    scrub: Callable[[str], str] | None = None,
) -> str:
    """Render `root` and the `spans` below it as a tree no wider than `width` cells.

    Args:
        root: The span at the top of the tree (usually a Rollout trace span).
        spans: Finished spans to place below `root`, found via their parent span ids; a
            span whose parent is not among them hangs directly under `root`. `root`
            itself may be included and is skipped.
        dropped: Number of further spans that were not kept; shown as a last line.
        color: Add ANSI colours (they take no width).
        width: Terminal cells a line may take.
        scrub: Applied to every text taken from the spans (names, payloads, events,
            errors) before it is cut to fit.

    Returns:
        The tree, without a trailing newline.
    """
    r = _Render(width, color, scrub)
    root_id = _span_id(root)
    children = _children(root, root_id, spans)
    items = _items(root, children.get(root_id, ()), dropped, r)
    lines = _span_block(root, r, guides="", branch="", below="", has_items=bool(items), root=True)
    visited: set[int | None] = {root_id}
    # Pending items: (guides of the item, is last among its siblings, item).
    stack: list[tuple[str, bool, _Item]] = []

    def push(owner_items: list[_Item], guides: str) -> None:
        for index in range(len(owner_items) - 1, -1, -1):
            stack.append((guides, index == len(owner_items) - 1, owner_items[index]))

    push(items, "")
    while stack:
        guides, last, item = stack.pop()
        branch = "└─ " if last else "├─ "
        below = "   " if last else "│  "
        if isinstance(item, tuple):
            text, style = item
            head = r.lead(guides, branch)
            bullet = "" if style == DIM else "• "
            shown = fit(bullet + text, r.width - cells(head))
            lines.append(r.paint(head, DIM) + r.paint(shown, style))
            continue
        item_id = _span_id(item)
        if item_id in visited:
            continue
        visited.add(item_id)
        own_items = _items(item, children.get(item_id, ()), 0, r)
        lines.extend(
            _span_block(
                item, r, guides=guides, branch=branch, below=below, has_items=bool(own_items)
            )
        )
        push(own_items, guides + below)
    return "\n".join(lines)


def format_late(
    span: ReadableSpan,
    trace_name: str | None,
    *,
    color: bool = False,
    width: int = 100,
    scrub: Callable[[str], str] | None = None,
) -> str:
    """One line for a feedback, signal or identity that arrived after its trace printed.

    `span` is the carrier span the late outcome travels on; `trace_name` the name its
    trace was printed under (None when it was not printed here), for example::

        rollout ▸ • feedback thumbs_up = true  for support_agent  trace …0e0e4736
    """
    r = _Render(width, color, scrub)
    text: tuple[str, str] | None = None
    for event in span.events:
        text = _event_text(event.name, event.attributes or {}, r)
        if text is not None:
            break
    if text is None:
        text = (r.text(span.name, _NAME_LIMIT), MAGENTA)
    parts = [_Part("• " + text[0], text[1], _EVENT)]
    context = span.context
    short_id = ""
    if context is not None:
        short_id = "trace …" + f"{context.trace_id:032x}"[-_SHORT_ID:]
    if trace_name:
        parts.append(_Part(f"for {r.text(trace_name, _NAME_LIMIT)}", BOLD, _NAME))
        if short_id:
            parts.append(_Part(short_id, DIM, _TRACE))
    elif short_id:
        parts.append(_Part(f"for {short_id}", DIM, _TRACE))
    fitted, sep = _fit_parts(parts, width - cells(ROOT_MARK), _LATE_PLAN)
    return r.paint(ROOT_MARK.rstrip(), DIM) + " " + _join(fitted, sep, color)

"""All Rollout event emission lives here.

Events are OTel span events today because Jaeger and Tempo show them. OTel is
deprecating the span-event API in favour of log-based events (OTEP 4430); keeping every
event in this one module makes that switch a single change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span as OTelSpan

from mv37.rollout import semconv as sc
from mv37.rollout.vocabulary._attributes import Attributes, user_attributes
from mv37.rollout.vocabulary._payload import attribute_value, serialize, to_json_text


def _scalar_or_json(value: object, limit: int) -> str | bool | int | float:
    if isinstance(value, (bool, int, float, str)):
        return attribute_value(value, limit)  # type: ignore[return-value]
    return serialize(value, limit).text


def message(
    span: OTelSpan,
    *,
    role: str,
    content: object,
    index: int,
    limit: int,
    content_type: str | None = None,
    tool_call_id: str | None = None,
    is_internal: bool = False,
    attributes: Mapping[str, Any] | None = None,
    with_content: bool = True,
) -> None:
    """A conversation message on `span`; without its content when `with_content` is off."""
    attrs: Attributes = {
        sc.ROLLOUT_MESSAGE_ROLE: str(role),
        sc.ROLLOUT_MESSAGE_INDEX: index,
        sc.ROLLOUT_MESSAGE_IS_INTERNAL: bool(is_internal),
    }
    if with_content:
        attrs[sc.ROLLOUT_MESSAGE_CONTENT] = serialize(content, limit).text
    if content_type:
        attrs[sc.ROLLOUT_MESSAGE_CONTENT_TYPE] = str(content_type)
    if tool_call_id:
        attrs[sc.ROLLOUT_MESSAGE_TOOL_CALL_ID] = str(tool_call_id)
    attrs.update(user_attributes(attributes, limit))
    span.add_event(sc.EVENT_ROLLOUT_MESSAGE, attrs)


def evaluation_attributes(name: str, value: object, limit: int) -> Attributes:
    """The GenAI `gen_ai.evaluation.*` view of a feedback or signal value.

    Numbers (and bools, as 1.0/0.0) are `score.value`; strings (and bools, as
    "true"/"false") are `score.label`; anything else (a dict) is JSON `explanation`.
    """
    attrs: Attributes = {sc.GEN_AI_EVALUATION_NAME: str(name)}
    if isinstance(value, bool):
        attrs[sc.GEN_AI_EVALUATION_SCORE_VALUE] = 1.0 if value else 0.0
        attrs[sc.GEN_AI_EVALUATION_SCORE_LABEL] = "true" if value else "false"
    elif isinstance(value, (int, float)):
        attrs[sc.GEN_AI_EVALUATION_SCORE_VALUE] = float(value)
    elif isinstance(value, str):
        attrs[sc.GEN_AI_EVALUATION_SCORE_LABEL] = attribute_value(value, limit)
    else:
        attrs[sc.GEN_AI_EVALUATION_EXPLANATION] = serialize(value, limit).text
    return attrs


_OUTCOMES = {
    "feedback": (sc.EVENT_ROLLOUT_FEEDBACK, sc.ROLLOUT_FEEDBACK_NAME, sc.ROLLOUT_FEEDBACK_VALUE),
    "signal": (sc.EVENT_ROLLOUT_SIGNAL, sc.ROLLOUT_SIGNAL_NAME, sc.ROLLOUT_SIGNAL_VALUE),
}


def outcome(
    span: OTelSpan,
    kind: str,
    name: str,
    value: object,
    *,
    limit: int,
    attributes: Mapping[str, Any] | None = None,
) -> None:
    """A feedback (explicit, from a person) or signal (implicit outcome) on `span`.

    Recorded as our `rollout.feedback` / `rollout.signal` event and mirrored as the
    GenAI `gen_ai.evaluation.result` event.
    """
    event_name, name_key, value_key = _OUTCOMES[kind]
    attrs: Attributes = {name_key: str(name), value_key: _scalar_or_json(value, limit)}
    attrs.update(user_attributes(attributes, limit))
    span.add_event(event_name, attrs)
    span.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, evaluation_attributes(name, value, limit))


def identify(
    span: OTelSpan,
    user_id: str | None,
    *,
    traits: Mapping[str, Any] | None,
    account_id: str | None,
    account_traits: Mapping[str, Any] | None,
) -> None:
    """Who the user is, as an event on `span`."""
    attrs: Attributes = {}
    if user_id:
        attrs[sc.ROLLOUT_USER_ID] = attrs[sc.USER_ID] = str(user_id)
    if traits:
        attrs[sc.ROLLOUT_USER_TRAITS] = to_json_text(dict(traits))
    if account_id:
        attrs[sc.ROLLOUT_ACCOUNT_ID] = str(account_id)
    if account_traits:
        attrs[sc.ROLLOUT_ACCOUNT_TRAITS] = to_json_text(dict(account_traits))
    span.add_event(sc.EVENT_ROLLOUT_IDENTIFY, attrs)


def chunk(span: OTelSpan, text: str, index: int, limit: int) -> None:
    """One streamed chunk (only with `capture_stream_chunks=True`)."""
    span.add_event(
        sc.EVENT_ROLLOUT_LLM_CHUNK,
        {
            sc.ROLLOUT_LLM_CHUNK_TEXT: attribute_value(text, limit),
            sc.ROLLOUT_LLM_CHUNK_INDEX: index,
        },
    )


def exception(span: OTelSpan, exc: BaseException) -> None:
    """OTel's standard `exception` event (type, message, stacktrace).

    An exception whose `__str__` raises still gets an event, with a placeholder message.
    """
    try:
        span.record_exception(exc, escaped=True)
    except Exception:
        span.add_event(
            sc.EVENT_EXCEPTION,
            {
                sc.EXCEPTION_TYPE: type(exc).__qualname__,
                sc.EXCEPTION_MESSAGE: f"<unprintable {type(exc).__qualname__}>",
                sc.EXCEPTION_ESCAPED: True,
            },
        )

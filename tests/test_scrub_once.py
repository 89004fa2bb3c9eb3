"""Default scrubbing skips the keys we write with known-safe values and scans each
distinct text of a span once (issue 12 item 4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.pipeline._privacy import PrivacyStage
from mv37.rollout.pipeline._scrub import REDACTED, SAFE_KEYS, Redactor
from mv37.rollout.pipeline._stats import Counters
from mv37.rollout.testing import capture_spans

CREDENTIAL = "sk-proj-" + "A1b2C3d4E5f6G7h8J9k0L1m2"
PAYLOAD = json.dumps({"query": "orders", "password": "hunter2-pass", "note": f"key {CREDENTIAL}"})


class CountingRedactor(Redactor):
    """Counts the texts it is asked to scan."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.scanned: list[str] = []

    def text(self, text: str) -> tuple[str, int]:
        self.scanned.append(text)
        return super().text(text)


def _span(attributes: dict[str, Any], events: tuple[Event, ...] = ()) -> ReadableSpan:
    context = SpanContext(0x1234, 0x5678, False, TraceFlags(1))
    return ReadableSpan(name="s", context=context, attributes=attributes, events=events)


def test_a_secret_in_a_payload_leaves_scrubbed_under_every_key() -> None:
    @rollout.tool("login")
    def login(request: dict[str, Any]) -> dict[str, Any]:
        return request

    with capture_spans() as captured, rollout.trace("run"):
        login(json.loads(PAYLOAD))
    tool = next(s for s in captured.exporter.get_finished_spans() if s.name.endswith("login"))
    attributes = dict(tool.attributes or {})
    payload_keys = [k for k, v in attributes.items() if isinstance(v, str) and "query" in v]
    assert sc.INPUT_VALUE in payload_keys
    assert sc.GEN_AI_TOOL_CALL_ARGUMENTS in payload_keys
    for key in payload_keys:
        value = str(attributes[key])
        assert "hunter2-pass" not in value, key
        assert CREDENTIAL not in value, key
        assert REDACTED in value, key
    assert attributes[sc.ROLLOUT_SCRUB_COUNT] == 4  # 2 in the input, 2 in the output


def test_identical_payloads_under_several_keys_and_events_are_scanned_once() -> None:
    redactor = CountingRedactor()
    copy = "".join(PAYLOAD)  # equal, not the same object
    span = _span(
        {
            sc.INPUT_VALUE: PAYLOAD,
            sc.GEN_AI_TOOL_CALL_ARGUMENTS: PAYLOAD,
            sc.ROLLOUT_INPUT: copy,
            "rollout.attributes.note": PAYLOAD,
        },
        (Event("rollout.message", {sc.ROLLOUT_MESSAGE_CONTENT: PAYLOAD}),),
    )
    (out,) = PrivacyStage(redactor, Counters()).process([span])
    assert redactor.scanned.count(PAYLOAD) == 1
    attributes = dict(out.attributes or {})
    masked = str(attributes[sc.INPUT_VALUE])
    assert CREDENTIAL not in masked
    assert "hunter2-pass" not in masked
    for key in (sc.GEN_AI_TOOL_CALL_ARGUMENTS, sc.ROLLOUT_INPUT, "rollout.attributes.note"):
        assert attributes[key] == masked, key
    assert dict(out.events[0].attributes or {})[sc.ROLLOUT_MESSAGE_CONTENT] == masked
    assert attributes[sc.ROLLOUT_SCRUB_COUNT] == 2  # counted once, where first seen


def test_safe_keys_are_untouched_and_never_scanned() -> None:
    redactor = CountingRedactor()
    # A value that would be masked anywhere else: safe keys are skipped, not scanned.
    attributes = dict.fromkeys(SAFE_KEYS, f"x {CREDENTIAL}")
    assert redactor.attributes(attributes) == (None, 0)
    assert redactor.scanned == []


def test_safe_keys_come_from_the_registry_and_exclude_user_and_payload_keys() -> None:
    for key in SAFE_KEYS:
        assert sc.is_registered_attribute(key), key
        assert not key.startswith(sc.ROLLOUT_ATTRIBUTES + "."), key
    never_safe = {
        sc.ROLLOUT_INPUT,
        sc.ROLLOUT_OUTPUT,
        sc.INPUT_VALUE,
        sc.OUTPUT_VALUE,
        sc.GEN_AI_TOOL_CALL_ARGUMENTS,
        sc.GEN_AI_TOOL_CALL_RESULT,
        sc.GEN_AI_INPUT_MESSAGES,
        sc.GEN_AI_OUTPUT_MESSAGES,
        sc.ROLLOUT_MESSAGE_CONTENT,
        sc.ROLLOUT_ERROR_MESSAGE,
        sc.EXCEPTION_MESSAGE,
        sc.EXCEPTION_STACKTRACE,
        sc.ROLLOUT_USER_ID,
        sc.ROLLOUT_SESSION_ID,
        sc.ROLLOUT_USER_TRAITS,
        sc.ROLLOUT_ACCOUNT_TRAITS,
        sc.ROLLOUT_TRACE_EXTERNAL_ID,
        sc.ROLLOUT_EVENT_FIELDS,
    }
    assert not SAFE_KEYS & never_safe


@pytest.mark.parametrize(
    "key", ["rollout.attributes.model", "rollout.attributes.rollout.span.type", "model"]
)
def test_a_user_attribute_is_never_assumed_safe(key: str) -> None:
    scrubbed, count = Redactor().attributes({key: f"using {CREDENTIAL}"})
    assert scrubbed is not None
    assert CREDENTIAL not in scrubbed[key]
    assert count == 1


def test_user_patterns_still_reach_safe_keys() -> None:
    redactor = Redactor(extra_patterns=[r"ACME-\d{6}"])
    scrubbed, count = redactor.attributes({sc.ROLLOUT_TOOL_NAME: "lookup ACME-123456"})
    assert scrubbed == {sc.ROLLOUT_TOOL_NAME: f"lookup {REDACTED}"}
    assert count == 1


def test_numbers_under_a_secret_user_key_are_still_masked() -> None:
    scrubbed, count = Redactor().attributes({"rollout.attributes.pin_password": 1234})
    assert scrubbed == {"rollout.attributes.pin_password": REDACTED}
    assert count == 1

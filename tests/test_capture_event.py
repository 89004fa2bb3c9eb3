"""`capture_event` (module and client) and `client.span`: what reaches the exporter."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from typing import Any

import pytest

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans

MODES = ["sync", "async"]


def events(span: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e["attributes"] for e in span["events"] if e["name"] == name]


async def in_trace(mode: str, body: Any) -> str:
    """Run `body()` inside a trace opened with `with` or `async with`; its trace id."""
    if mode == "async":
        async with rollout.trace("run") as trace:
            await asyncio.sleep(0)
            body()
            return trace.trace_id
    with rollout.trace("run") as trace:
        body()
        return trace.trace_id


@pytest.mark.parametrize("mode", MODES)
async def test_each_known_type_becomes_its_event_on_the_active_trace(
    captured: CapturedSpans, mode: str
) -> None:
    when = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)

    def body() -> None:
        rollout.capture_event("message", role="user", content="hello", content_type="text")
        rollout.capture_event("feedback", name="thumbs", value=True)
        rollout.capture_event("user.signal", name="order_placed", value=59.9)
        rollout.capture_event("identity.update", user_id="u-1", traits={"plan": "pro"})
        rollout.capture_event(
            "eval.result", name="groundedness", score=0.8, explanation="cites the doc"
        )
        rollout.capture_event("error", type="Timeout", message="upstream slow")
        rollout.capture_event(
            "metric",
            event_id="evt-1",
            occurred_at=when,
            name="latency_ms",
            value=412,
            attributes={"region": "eu"},
        )

    await in_trace(mode, body)
    [root] = captured.as_dicts()
    assert events(root, sc.EVENT_ROLLOUT_MESSAGE)[0][sc.ROLLOUT_MESSAGE_CONTENT] == "hello"
    assert events(root, sc.EVENT_ROLLOUT_MESSAGE)[0][sc.ROLLOUT_MESSAGE_CONTENT_TYPE] == "text"
    assert events(root, sc.EVENT_ROLLOUT_FEEDBACK) == [
        {sc.ROLLOUT_FEEDBACK_NAME: "thumbs", sc.ROLLOUT_FEEDBACK_VALUE: True}
    ]
    assert events(root, sc.EVENT_ROLLOUT_SIGNAL) == [
        {sc.ROLLOUT_SIGNAL_NAME: "order_placed", sc.ROLLOUT_SIGNAL_VALUE: 59.9}
    ]
    [identify] = events(root, sc.EVENT_ROLLOUT_IDENTIFY)
    assert identify[sc.ROLLOUT_USER_ID] == "u-1"
    evaluations = {
        e[sc.GEN_AI_EVALUATION_NAME]: e for e in events(root, sc.EVENT_GEN_AI_EVALUATION_RESULT)
    }
    assert evaluations["groundedness"][sc.GEN_AI_EVALUATION_SCORE_VALUE] == 0.8
    assert evaluations["groundedness"][sc.GEN_AI_EVALUATION_EXPLANATION] == "cites the doc"
    assert set(evaluations) == {"thumbs", "order_placed", "groundedness"}
    assert events(root, sc.EVENT_EXCEPTION) == [
        {sc.EXCEPTION_TYPE: "Timeout", sc.EXCEPTION_MESSAGE: "upstream slow"}
    ]
    [metric] = [e for e in root["events"] if e["name"] == sc.EVENT_ROLLOUT_EVENT]
    assert metric["attributes"][sc.ROLLOUT_EVENT_TYPE] == "metric"
    assert metric["attributes"][sc.ROLLOUT_EVENT_ID] == "evt-1"
    assert json.loads(metric["attributes"][sc.ROLLOUT_EVENT_FIELDS]) == {
        "name": "latency_ms",
        "value": 412,
    }
    assert metric["attributes"]["rollout.attributes.region"] == "eu"
    [sdk_root] = captured.spans()
    [sdk_metric] = [e for e in sdk_root.events if e.name == sc.EVENT_ROLLOUT_EVENT]
    assert sdk_metric.timestamp == int(when.timestamp()) * 1_000_000_000


@pytest.mark.parametrize("kind", ["metric", "message", "feedback"])
def test_after_the_trace_ended_it_lands_in_that_trace(captured: CapturedSpans, kind: str) -> None:
    client = captured.client
    with client.trace("run", external_trace_id="ext-9") as trace:
        pass
    by_kind: dict[str, dict[str, Any]] = {
        "metric": {"name": "cost", "value": 1.5},
        "message": {"role": "assistant", "content": "sorry for the wait"},
        "feedback": {"name": "csat", "value": 4},
    }
    fields = by_kind[kind]
    client.capture_event(kind, external_trace_id="ext-9", **fields)
    spans = captured.as_dicts()
    root = next(s for s in spans if s["name"] == "invoke_workflow run")
    [carrier] = [s for s in spans if s is not root]
    assert carrier["trace_id"] == root["trace_id"] == trace.trace_id
    assert carrier["parent_id"] == root["span_id"]
    names = [e["name"] for e in carrier["events"]]
    expected = {
        "metric": [sc.EVENT_ROLLOUT_EVENT],
        "message": [sc.EVENT_ROLLOUT_MESSAGE],
        "feedback": [sc.EVENT_ROLLOUT_FEEDBACK, sc.EVENT_GEN_AI_EVALUATION_RESULT],
    }[kind]
    assert names == expected


def test_unknown_types_and_no_trace_record_nothing_and_never_raise(
    captured: CapturedSpans, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mv37.rollout")
    rollout.capture_event("metric", name="x", value=1)  # no active trace
    with rollout.trace("run"):
        rollout.capture_event("not.a.type", anything=1)
        rollout.capture_event("not.a.type", anything=2)
        rollout.capture_event("metric", value=object())  # serialised, never raises
    [root] = captured.as_dicts()
    assert [e["name"] for e in root["events"]] == [sc.EVENT_ROLLOUT_EVENT]
    warnings = [r for r in caplog.records if "not.a.type" in r.getMessage()]
    assert len(warnings) == 1  # once per unknown type


def test_a_disabled_client_records_nothing() -> None:
    client = rollout.Rollout(disabled=True)
    with client.trace("run"):
        client.capture_event("metric", name="x", value=1)


@pytest.mark.parametrize("mode", MODES)
async def test_client_span_opens_a_typed_span_in_the_active_trace(
    captured: CapturedSpans, mode: str
) -> None:
    client = captured.client

    def body() -> None:
        with client.span("retrieval", name="faq", attributes={"index": "kb"}) as span:
            span.record_output(["Use Celsius."])
        with client.span("llm", model="gpt-4o-mini", provider="openai") as llm:
            llm.record_input("hi")

    trace_id = await in_trace(mode, body)
    spans = {s["name"]: s for s in captured.as_dicts()}
    root = spans["invoke_workflow run"]
    faq = spans["retrieval faq"]
    assert faq["trace_id"] == trace_id
    assert faq["parent_id"] == root["span_id"]
    assert faq["attributes"][sc.OPENINFERENCE_SPAN_KIND] == "RETRIEVER"
    assert faq["attributes"]["rollout.attributes.index"] == "kb"
    assert json.loads(faq["attributes"][sc.OUTPUT_VALUE]) == ["Use Celsius."]
    assert spans["chat gpt-4o-mini"]["attributes"][sc.GEN_AI_PROVIDER_NAME] == "openai"


def test_client_span_without_a_trace_runs_the_block_and_records_nothing(
    captured: CapturedSpans,
) -> None:
    with captured.client.span("retrieval", name="faq") as span:
        span.record_output("x")
        assert not span.is_recording
    assert captured.as_dicts() == []

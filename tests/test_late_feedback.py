"""Feedback and signals: on the live trace, and after it ended (here or elsewhere)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans, OTLPReceiver, capture_spans

ANNOTATION = "trace.annotations.0.annotation."


def _event(span: ReadableSpan, name: str) -> dict[str, Any]:
    return dict(next(e for e in span.events if e.name == name).attributes or {})


@pytest.mark.parametrize("kind", ["feedback", "signal"])
def test_on_the_live_trace_with_the_genai_mirror(captured: CapturedSpans, kind: str) -> None:
    with rollout.trace("run"):
        getattr(rollout, kind)("thumbs", True)
    (root,) = captured.exporter.get_finished_spans()
    ours = _event(root, f"rollout.{kind}")
    assert ours == {f"rollout.{kind}.name": "thumbs", f"rollout.{kind}.value": True}
    assert _event(root, sc.EVENT_GEN_AI_EVALUATION_RESULT) == {
        sc.GEN_AI_EVALUATION_NAME: "thumbs",
        sc.GEN_AI_EVALUATION_SCORE_VALUE: 1.0,
        sc.GEN_AI_EVALUATION_SCORE_LABEL: "true",
    }


@pytest.mark.parametrize(
    ("value", "mirror"),
    [
        (True, {sc.GEN_AI_EVALUATION_SCORE_VALUE: 1.0, sc.GEN_AI_EVALUATION_SCORE_LABEL: "true"}),
        (False, {sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.0, sc.GEN_AI_EVALUATION_SCORE_LABEL: "false"}),
        (4, {sc.GEN_AI_EVALUATION_SCORE_VALUE: 4.0}),
        (0.5, {sc.GEN_AI_EVALUATION_SCORE_VALUE: 0.5}),
        ("helpful", {sc.GEN_AI_EVALUATION_SCORE_LABEL: "helpful"}),
        ({"stars": 4}, {sc.GEN_AI_EVALUATION_EXPLANATION: '{"stars": 4}'}),
    ],
)
@pytest.mark.parametrize("kind", ["feedback", "signal"])
def test_after_the_trace_ended_in_this_process(
    captured: CapturedSpans, kind: str, value: object, mirror: dict[str, object]
) -> None:
    with rollout.trace("run") as trace:
        pass
    getattr(rollout, kind)("rating", value, trace_id=trace.trace_id, attributes={"by": "ops"})
    root, carrier = captured.exporter.get_finished_spans()
    assert root.context is not None
    assert carrier.context is not None
    assert carrier.name == f"{kind} rating"
    assert carrier.context.trace_id == root.context.trace_id
    assert carrier.parent is not None
    assert carrier.parent.span_id == root.context.span_id
    assert [link.context.span_id for link in carrier.links] == [root.context.span_id]
    attrs = dict(carrier.attributes or {})
    assert attrs[sc.ROLLOUT_SPAN_TYPE] == kind
    assert attrs[sc.OPENINFERENCE_SPAN_KIND] == "EVALUATOR"
    assert attrs[ANNOTATION + "name"] == "rating"
    assert attrs[ANNOTATION + "annotator_kind"] == ("HUMAN" if kind == "feedback" else "CODE")
    assert _event(carrier, sc.EVENT_GEN_AI_EVALUATION_RESULT) == {
        sc.GEN_AI_EVALUATION_NAME: "rating",
        **mirror,
    }
    ours = _event(carrier, f"rollout.{kind}")
    assert ours["rollout.attributes.by"] == "ops"
    recorded = ours[f"rollout.{kind}.value"]
    assert (json.loads(str(recorded)) if isinstance(value, dict) else recorded) == value


@pytest.mark.parametrize("via", ["external_trace_id", "trace_object", "int_trace_id"])
def test_other_ways_to_name_an_ended_trace(captured: CapturedSpans, via: str) -> None:
    with rollout.trace("run", external_trace_id="ticket-77") as trace:
        pass
    if via == "external_trace_id":
        rollout.feedback("csat", 5, external_trace_id="ticket-77")
    elif via == "trace_object":
        trace.feedback("csat", 5)
    else:
        rollout.get_client().feedback("csat", 5, trace_id=int(trace.trace_id, 16))
    root, carrier = captured.exporter.get_finished_spans()
    assert carrier.context is not None
    assert root.context is not None
    assert carrier.context.trace_id == root.context.trace_id


def test_naming_an_open_trace_records_on_it(captured: CapturedSpans) -> None:
    with rollout.trace("outer") as outer, rollout.trace("other"):
        rollout.signal("escalated", True, trace_id=outer.trace_id)
    spans = {s.name: s for s in captured.exporter.get_finished_spans()}
    assert len(spans) == 2
    assert any(e.name == "rollout.signal" for e in spans["invoke_workflow outer"].events)


def test_unknown_external_id_or_bad_id_is_dropped_quietly(captured: CapturedSpans) -> None:
    rollout.feedback("x", 1, external_trace_id="nobody-knows")
    rollout.feedback("x", 1, trace_id="zz")
    rollout.signal("x", 1)  # no active trace
    assert captured.exporter.get_finished_spans() == ()


def test_feedback_for_a_sampled_out_trace_is_dropped_too() -> None:
    with capture_spans(sample_rate=0.0) as captured:
        with rollout.trace("run") as trace:
            pass
        rollout.feedback("thumbs", True, trace_id=trace.trace_id)
        rollout.feedback("thumbs", True, trace_id="0af7651916cd43dd8448eb211c80319c")
        assert captured.exporter.get_finished_spans() == ()


def test_feedback_follows_the_sampling_decision_of_its_trace_id() -> None:
    with capture_spans(sample_rate=0.5) as captured:
        kept = dropped = 0
        for _ in range(200):
            with rollout.trace("run") as trace:
                pass
            before = len(captured.exporter.get_finished_spans())
            rollout.feedback("thumbs", True, trace_id=trace.trace_id)
            after = len(captured.exporter.get_finished_spans())
            if trace.is_recording:
                kept += 1
                assert after == before + 1
            else:
                dropped += 1
                assert after == before
        assert kept
        assert dropped


def test_on_a_user_sdk_provider_the_carrier_joins_the_trace() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    rollout.init(tracer_provider=provider, console=False)
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("POST /chat"), rollout.trace("run") as trace:
        pass
    rollout.feedback("thumbs", False, trace_id=trace.trace_id)
    rollout.feedback("thumbs", False, trace_id="0af7651916cd43dd8448eb211c80319c")
    spans = {s.name: s for s in memory.get_finished_spans()}
    carriers = [s for s in memory.get_finished_spans() if s.name == "feedback thumbs"]
    assert len(carriers) == 2
    run = spans["invoke_workflow run"]
    assert run.context is not None
    assert carriers[0].context is not None
    assert carriers[0].context.trace_id == run.context.trace_id
    assert carriers[1].context is not None
    assert carriers[1].context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert otel_trace.get_tracer_provider() is not provider


def test_from_another_process_given_only_the_trace_id() -> None:
    with OTLPReceiver() as receiver:
        rollout.init(base_url=receiver.url)
        with rollout.trace("run") as trace:
            pass
        assert rollout.flush()
        receiver.wait_for_spans(1)
        script = textwrap.dedent(
            f"""
            import mv37.rollout as rollout
            rollout.init(base_url={receiver.url!r})
            rollout.feedback("thumbs", True, trace_id={trace.trace_id!r})
            rollout.signal("order_placed", {{"total": 42}}, trace_id={trace.trace_id!r})
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        spans = receiver.wait_for_spans(3)
    by_name = {s.name: s for s in spans}
    root = by_name["invoke_workflow run"]
    for name in ("feedback thumbs", "signal order_placed"):
        carrier = by_name[name]
        assert carrier.trace_id == trace.trace_id == root.trace_id
        assert carrier.attributes[sc.OPENINFERENCE_SPAN_KIND] == "EVALUATOR"
        assert any(event[0] == sc.EVENT_GEN_AI_EVALUATION_RESULT for event in carrier.events)

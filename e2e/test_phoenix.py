"""What a person sees in Arize Phoenix: the examples, sent for real, read back over its API.

Phoenix maps `openinference.span.kind` to its span kind, keeps our attributes, drops
the OTel span kind and links and keeps microseconds, so the checks are on subsets.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from typing import Any

from e2e.servers import Phoenix, run_example

Span = dict[str, Any]


def _env(phoenix: Phoenix, project: str) -> dict[str, str]:
    return {
        "ROLLOUT_BASE_URL": phoenix.url,
        "OTEL_EXPORTER_OTLP_HEADERS": f"x-project-name={project}",
        # The console tree also prints, so we know the trace id that was sent.
        "ROLLOUT_CONSOLE": "true",
    }


def _sent_trace_ids(output: str) -> list[str]:
    return re.findall(r"trace ([0-9a-f]{32})", output)


def _one(spans: list[Span], name: str) -> Span:
    found = [s for s in spans if s["name"] == name]
    assert len(found) == 1, (name, [s["name"] for s in spans])
    return found[0]


def _children(spans: list[Span], parent: Span) -> list[str]:
    return sorted(s["name"] for s in spans if s["parent_id"] == parent["context"]["span_id"])


def _events(span: Span, name: str) -> list[dict[str, Any]]:
    return [e["attributes"] for e in span.get("events", []) if e["name"] == name]


def _assert_one_tree(spans: list[Span], output: str) -> None:
    """The trace id that was sent; every parent is a span of the set; exactly one root."""
    assert {s["context"]["trace_id"] for s in spans} == set(_sent_trace_ids(output))
    ids = {s["context"]["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_id"] is None]
    assert len(roots) == 1, [s["name"] for s in roots]
    assert all(s["parent_id"] in ids for s in spans if s["parent_id"] is not None)


def test_quickstart_in_phoenix(phoenix: Phoenix, project: str) -> None:
    output = run_example("quickstart.py", _env(phoenix, project))
    spans = phoenix.wait_for_spans(project, 5)
    assert len(spans) == 5
    _assert_one_tree(spans, output)

    agent = _one(spans, "invoke_agent support_agent")
    assert agent["span_kind"] == "AGENT"
    assert agent["parent_id"] is None
    assert _children(spans, agent) == [
        "compose_answer",
        "execute_tool get_weather",
        "retrieval faq_lookup",
    ]
    attrs = agent["attributes"]
    assert json.loads(attrs["input.value"]) == {"text": "What's the weather in Paris?"}
    assert attrs["output.value"].startswith("It's 21°C and sunny.")
    assert attrs["user.id"] == "user-42"
    assert attrs["session.id"] == "session-7"
    roles = [m["rollout.message.role"] for m in _events(agent, "rollout.message")]
    assert roles == ["user", "assistant"]
    assert _events(agent, "rollout.feedback") == [
        {"rollout.feedback.name": "thumbs_up", "rollout.feedback.value": True}
    ]
    assert _events(agent, "rollout.signal") == [
        {"rollout.signal.name": "resolved", "rollout.signal.value": True}
    ]
    evaluations = {e["gen_ai.evaluation.name"] for e in _events(agent, "gen_ai.evaluation.result")}
    assert evaluations == {"thumbs_up", "resolved"}

    tool = _one(spans, "execute_tool get_weather")
    assert tool["span_kind"] == "TOOL"
    assert json.loads(tool["attributes"]["input.value"]) == {"city": "Paris"}
    assert json.loads(tool["attributes"]["output.value"])["temp"] == 21

    retrieval = _one(spans, "retrieval faq_lookup")
    assert retrieval["span_kind"] == "RETRIEVER"

    task = _one(spans, "compose_answer")
    assert task["span_kind"] == "CHAIN"
    llm = _one(spans, "chat gpt-4o-mini")
    assert llm["span_kind"] == "LLM"
    assert llm["parent_id"] == task["context"]["span_id"]
    llm_attrs = llm["attributes"]
    assert llm_attrs["llm.model_name"] == "gpt-4o-mini"
    assert llm_attrs["llm.provider"] == "openai"
    assert (
        llm_attrs["llm.token_count.prompt"],
        llm_attrs["llm.token_count.completion"],
        llm_attrs["llm.token_count.total"],
    ) == (42, 12, 54)
    assert llm_attrs["llm.token_count.prompt_details.cache_read"] == 10
    assert "input.value" in llm_attrs
    assert "output.value" in llm_attrs
    assert all(s["status_code"] != "ERROR" for s in spans)


def test_async_multi_agent_in_phoenix(phoenix: Phoenix, project: str) -> None:
    output = run_example("multi_agent.py", _env(phoenix, project))
    spans = phoenix.wait_for_spans(project, 9)
    assert len(spans) == 9
    _assert_one_tree(spans, output)
    desk = _one(spans, "invoke_agent travel_desk")
    assert desk["span_kind"] == "AGENT"
    assert _children(spans, desk) == ["invoke_agent flights_agent", "invoke_agent hotels_agent"]
    for specialist, tool in (("flights", "search_flights"), ("hotels", "search_hotels")):
        agent = _one(spans, f"invoke_agent {specialist}_agent")
        assert agent["span_kind"] == "AGENT"
        assert _children(spans, agent) == [
            "chat gpt-4o-mini",
            f"execute_tool {tool}",
            f"retrieval {specialist}_docs",
        ]
    kinds = Counter(s["span_kind"] for s in spans)
    assert kinds == Counter({"AGENT": 3, "TOOL": 2, "LLM": 2, "RETRIEVER": 2})
    for llm in (s for s in spans if s["span_kind"] == "LLM"):
        assert llm["attributes"]["llm.model_name"] == "gpt-4o-mini"
        assert llm["attributes"]["llm.token_count.completion"] == 9
    assert desk["attributes"]["user.id"] == "user-7"
    assert {s["attributes"].get("session.id") for s in spans} == {"trip-2026"}
    assert _events(desk, "rollout.feedback") == [
        {"rollout.feedback.name": "helpful", "rollout.feedback.value": 5}
    ]
    assert [e["rollout.signal.name"] for e in _events(desk, "rollout.signal")] == [
        "booking_started"
    ]


def test_error_example_in_phoenix(phoenix: Phoenix, project: str) -> None:
    output = run_example("error_example.py", _env(phoenix, project))
    assert "handled: card declined" in output
    spans = phoenix.wait_for_spans(project, 2)
    _assert_one_tree(spans, output)
    for name in ("invoke_agent billing_agent", "execute_tool charge_card"):
        span = _one(spans, name)
        assert span["status_code"] == "ERROR"
        assert "card declined" in span["status_message"]
        (exception,) = _events(span, "exception")
        assert exception["exception.type"].endswith("PaymentDeclinedError")
        assert "card declined for order ord-1001" in exception["exception.message"]
        assert "Traceback" in exception["exception.stacktrace"]


def test_late_feedback_lands_in_the_same_trace(phoenix: Phoenix, project: str) -> None:
    run_example("error_example.py", _env(phoenix, project))
    (root,) = [s for s in phoenix.wait_for_spans(project, 2) if s["parent_id"] is None]
    trace_id = root["context"]["trace_id"]
    script = (
        "import mv37.rollout as rollout\n"
        "rollout.init()\n"
        f"rollout.feedback('thumbs_up', False, trace_id={trace_id!r})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **_env(phoenix, project)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    spans = phoenix.wait_for_spans(project, 3)
    carrier = _one(spans, "feedback thumbs_up")
    assert carrier["context"]["trace_id"] == trace_id
    assert carrier["span_kind"] == "EVALUATOR"
    assert carrier["attributes"]["trace.annotations.0.annotation.name"] == "thumbs_up"
    assert carrier["attributes"]["trace.annotations.0.annotation.annotator_kind"] == "HUMAN"

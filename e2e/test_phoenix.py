"""What a person sees in Arize Phoenix: the examples, sent for real, read back over its API.

Each example runs as its own process with `ROLLOUT_BASE_URL` pointing at a transparent
recording hop in front of Phoenix (`proxy`), so the test knows exactly what the SDK
sent — trace and span ids, parents, attributes, events, status — and compares what
Phoenix stored against it, span by span. Phoenix moves `openinference.span.kind` into
its own span kind, derives a few attributes, keeps microseconds (rounded), and drops
the OTel span kind, links and the resource, so the checks are on subsets.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from e2e.servers import Phoenix, RecordingProxy, clean_environ, run_example

Span = dict[str, Any]
Tree = tuple[str, str, tuple["Tree", ...]]  # (name, Phoenix span kind, children)

# What Phoenix adds on its own: OpenInference attributes it derives from ours.
DERIVED = re.compile(r"^(tool\.parameters\..+|llm\.system)$")


@pytest.fixture
def proxy(phoenix: Phoenix) -> Iterator[RecordingProxy]:
    """The examples' destination: forwards to Phoenix byte for byte, keeps what was sent."""
    hop = RecordingProxy(phoenix.url)
    try:
        yield hop
    finally:
        hop.stop()


def _env(proxy: RecordingProxy, project: str) -> dict[str, str]:
    return {
        "ROLLOUT_BASE_URL": proxy.url,
        "OTEL_EXPORTER_OTLP_HEADERS": f"x-project-name={project}",
        # The console tree prints too: the trace ids it shows are a second witness.
        "ROLLOUT_CONSOLE": "true",
    }


def _micros(iso: str) -> int:
    moment = datetime.fromisoformat(iso)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def _stored_as_sent(
    phoenix: Phoenix, proxy: RecordingProxy, project: str, count: int, output: str
) -> list[Span]:
    """Phoenix's spans for `project`, checked against what the SDK sent, span by span.

    Nothing lost, nothing extra; trace id, parent, name, times (to the microsecond),
    status and events as sent; every attribute we sent kept with its value, except
    `openinference.span.kind`, which becomes Phoenix's `span_kind`; the only attributes
    Phoenix adds are the derived ones in DERIVED.
    """
    sent = proxy.spans(project)
    assert len(sent) == count, [s.name for s in sent]
    stored = phoenix.wait_for_spans(project, count)
    by_id = {s["context"]["span_id"]: s for s in stored}
    assert sorted(by_id) == sorted(s.span_id for s in sent), "lost or extra spans"
    printed = set(re.findall(r"trace ([0-9a-f]{32})", output))
    assert {s.trace_id for s in sent} == printed, "the console tree printed other trace ids"
    for want in sent:
        got = by_id[want.span_id]
        where = f"span {want.name!r}"
        assert got["context"]["trace_id"] == want.trace_id, where
        assert got["parent_id"] == want.parent_id, where
        assert got["name"] == want.name, where
        assert abs(_micros(got["start_time"]) - want.start_ns / 1000) <= 1, where
        assert abs(_micros(got["end_time"]) - want.end_ns / 1000) <= 1, where
        assert (got["status_code"], got["status_message"]) == (
            want.status_code,
            want.status_message,
        ), where
        attributes = dict(want.attributes)
        assert got["span_kind"] == attributes.pop("openinference.span.kind"), where
        assert {k: got["attributes"].get(k) for k in attributes} == attributes, where
        added = sorted(k for k in got["attributes"] if k not in attributes)
        assert all(DERIVED.match(k) for k in added), (where, added)
        assert [(e["name"], e["attributes"]) for e in got["events"]] == want.events, where
    return stored


def _tree(spans: list[Span]) -> Tree:
    """Phoenix's parent/child structure as (name, kind, children), children by name."""
    (root,) = (s for s in spans if s["parent_id"] is None)

    def build(span: Span) -> Tree:
        below = [s for s in spans if s["parent_id"] == span["context"]["span_id"]]
        return span["name"], span["span_kind"], tuple(sorted(build(s) for s in below))

    return build(root)


def _one(spans: list[Span], name: str) -> Span:
    found = [s for s in spans if s["name"] == name]
    assert len(found) == 1, (name, [s["name"] for s in spans])
    return found[0]


def _events(span: Span, name: str) -> list[dict[str, Any]]:
    return [e["attributes"] for e in span.get("events", []) if e["name"] == name]


def test_quickstart_in_phoenix(phoenix: Phoenix, proxy: RecordingProxy, project: str) -> None:
    output = run_example("quickstart.py", _env(proxy, project))
    spans = _stored_as_sent(phoenix, proxy, project, 5, output)
    assert _tree(spans) == (
        "invoke_agent support_agent",
        "AGENT",
        (
            ("compose_answer", "CHAIN", (("chat gpt-4o-mini", "LLM", ()),)),
            ("execute_tool get_weather", "TOOL", ()),
            ("retrieval faq_lookup", "RETRIEVER", ()),
        ),
    )

    agent = _one(spans, "invoke_agent support_agent")
    attrs = agent["attributes"]
    assert json.loads(attrs["input.value"]) == {"text": "What's the weather in Paris?"}
    assert attrs["output.value"].startswith("It's 21°C and sunny.")
    assert attrs["user.id"] == "user-42"
    assert attrs["session.id"] == "session-7"
    messages = [
        (m["rollout.message.role"], m["rollout.message.content"])
        for m in _events(agent, "rollout.message")
    ]
    assert messages[0] == ("user", "What's the weather in Paris?")
    assert messages[1][0] == "assistant"
    assert messages[1][1].startswith("It's 21°C and sunny.")
    assert len(messages) == 2
    assert _events(agent, "rollout.feedback") == [
        {"rollout.feedback.name": "thumbs_up", "rollout.feedback.value": True}
    ]
    assert _events(agent, "rollout.signal") == [
        {"rollout.signal.name": "resolved", "rollout.signal.value": True}
    ]
    evaluations = {e["gen_ai.evaluation.name"] for e in _events(agent, "gen_ai.evaluation.result")}
    assert evaluations == {"thumbs_up", "resolved"}

    tool = _one(spans, "execute_tool get_weather")
    assert json.loads(tool["attributes"]["input.value"]) == {"city": "Paris"}
    assert json.loads(tool["attributes"]["output.value"])["temp"] == 21
    assert tool["attributes"]["tool.name"] == "get_weather"
    assert tool["attributes"]["tool.parameters.city"] == "Paris"  # derived by Phoenix

    retrieval = _one(spans, "retrieval faq_lookup")
    question = "What's the weather in Paris?"
    assert json.loads(retrieval["attributes"]["input.value"]) == {"query": question}
    assert json.loads(retrieval["attributes"]["output.value"]) == ["Weather answers use Celsius."]

    llm_attrs = _one(spans, "chat gpt-4o-mini")["attributes"]
    assert llm_attrs["llm.model_name"] == "gpt-4o-mini"
    assert llm_attrs["llm.provider"] == "openai"
    assert (
        llm_attrs["llm.token_count.prompt"],
        llm_attrs["llm.token_count.completion"],
        llm_attrs["llm.token_count.total"],
    ) == (42, 12, 54)
    assert llm_attrs["llm.token_count.prompt_details.cache_read"] == 10
    assert llm_attrs["llm.cost.total"] == 0.00021
    assert json.loads(llm_attrs["input.value"])[0]["role"] == "user"
    assert llm_attrs["output.value"].startswith("It's 21°C and sunny.")
    # The conversation Phoenix's LLM view shows (OpenInference) and the GenAI mirror.
    assert llm_attrs["llm.input_messages.0.message.role"] == "user"
    assert llm_attrs["llm.input_messages.0.message.content"].startswith("Question: What's")
    assert llm_attrs["llm.output_messages.0.message.role"] == "assistant"
    assert llm_attrs["llm.output_messages.0.message.content"].startswith("It's 21°C and sunny.")
    assert json.loads(llm_attrs["gen_ai.input.messages"])[0]["role"] == "user"
    assert all(s["status_code"] != "ERROR" for s in spans)

    # Phoenix's own trace summary counts the LLM span's tokens.
    (trace,) = phoenix.traces(project)
    assert trace["trace_id"] == agent["context"]["trace_id"]
    assert (
        trace["token_count_prompt"],
        trace["token_count_completion"],
        trace["token_count_total"],
    ) == (42, 12, 54)


def test_async_multi_agent_in_phoenix(
    phoenix: Phoenix, proxy: RecordingProxy, project: str
) -> None:
    output = run_example("multi_agent.py", _env(proxy, project))
    spans = _stored_as_sent(phoenix, proxy, project, 9, output)
    specialist = {
        topic: (
            f"invoke_agent {topic}_agent",
            "AGENT",
            (
                ("chat gpt-4o-mini", "LLM", ()),
                (f"execute_tool search_{topic}", "TOOL", ()),
                (f"retrieval {topic}_docs", "RETRIEVER", ()),
            ),
        )
        for topic in ("flights", "hotels")
    }
    assert _tree(spans) == (
        "invoke_agent travel_desk",
        "AGENT",
        (specialist["flights"], specialist["hotels"]),
    )
    assert Counter(s["span_kind"] for s in spans) == Counter(
        {"AGENT": 3, "TOOL": 2, "LLM": 2, "RETRIEVER": 2}
    )
    for llm in (s for s in spans if s["span_kind"] == "LLM"):
        attrs = llm["attributes"]
        assert attrs["llm.model_name"] == "gpt-4o-mini"
        assert attrs["llm.provider"] == "openai"
        assert attrs["llm.token_count.completion"] == 9
        assert attrs["llm.token_count.prompt"] > 0
        assert attrs["llm.token_count.total"] == attrs["llm.token_count.prompt"] + 9
        assert attrs["output.value"].startswith("Summary of ")
    for span in spans:
        assert "input.value" in span["attributes"], span["name"]
        assert "output.value" in span["attributes"], span["name"]
    for topic in ("flights", "hotels"):
        agent = _one(spans, f"invoke_agent {topic}_agent")
        (said,) = _events(agent, "rollout.message")
        assert (said["rollout.message.role"], said["rollout.message.is_internal"]) == (
            "assistant",
            True,
        )
        assert said["rollout.message.content"] == agent["attributes"]["output.value"]
        assert _events(agent, "rollout.signal") == [
            {"rollout.signal.name": "options_found", "rollout.signal.value": 1}
        ]
    flights = _one(spans, "execute_tool search_flights")["attributes"]
    assert json.loads(flights["input.value"]) == {"origin": "PAR", "destination": "LIS"}
    assert json.loads(flights["output.value"])[0]["flight"] == "AF123"

    desk = _one(spans, "invoke_agent travel_desk")
    assert desk["attributes"]["user.id"] == "user-7"
    assert {s["attributes"].get("session.id") for s in spans} == {"trip-2026"}
    assert desk["attributes"]["output.value"].startswith("Flights: Summary of ")
    assert [m["rollout.message.role"] for m in _events(desk, "rollout.message")] == [
        "user",
        "assistant",
    ]
    assert _events(desk, "rollout.feedback") == [
        {"rollout.feedback.name": "helpful", "rollout.feedback.value": 5}
    ]
    assert _events(desk, "rollout.signal") == [
        {"rollout.signal.name": "booking_started", "rollout.signal.value": True}
    ]
    # The coordinator's span carries the usage summed over both specialists' LLM calls.
    llm_tokens = sum(
        s["attributes"]["llm.token_count.total"] for s in spans if s["span_kind"] == "LLM"
    )
    assert desk["attributes"]["rollout.usage.total_tokens"] == llm_tokens


def test_error_example_in_phoenix(phoenix: Phoenix, proxy: RecordingProxy, project: str) -> None:
    output = run_example("error_example.py", _env(proxy, project))
    assert "handled: card declined" in output
    spans = _stored_as_sent(phoenix, proxy, project, 2, output)
    assert _tree(spans) == (
        "invoke_agent billing_agent",
        "AGENT",
        (("execute_tool charge_card", "TOOL", ()),),
    )
    for name in ("invoke_agent billing_agent", "execute_tool charge_card"):
        span = _one(spans, name)
        assert span["status_code"] == "ERROR"
        assert span["status_message"].startswith("PaymentDeclinedError: card declined")
        assert span["attributes"]["error.type"] == "PaymentDeclinedError"
        (exception,) = _events(span, "exception")
        assert exception["exception.type"].endswith("PaymentDeclinedError")
        assert "card declined for order ord-1001" in exception["exception.message"]
        assert "Traceback" in exception["exception.stacktrace"]
    tool = _one(spans, "execute_tool charge_card")
    assert json.loads(tool["attributes"]["input.value"]) == {"order_id": "ord-1001", "amount": 42.5}
    assert "output.value" not in tool["attributes"]


def test_late_feedback_lands_in_the_same_trace(
    phoenix: Phoenix, proxy: RecordingProxy, project: str
) -> None:
    output = run_example("error_example.py", _env(proxy, project))
    (root,) = [s for s in _stored_as_sent(phoenix, proxy, project, 2, output) if not s["parent_id"]]
    trace_id = root["context"]["trace_id"]
    script = (
        "import mv37.rollout as rollout\n"
        "rollout.init()\n"
        f"rollout.feedback('thumbs_up', False, trace_id={trace_id!r})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**clean_environ(), **_env(proxy, project)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    spans = _stored_as_sent(phoenix, proxy, project, 3, output + done.stdout)
    carrier = _one(spans, "feedback thumbs_up")
    assert carrier["context"]["trace_id"] == trace_id
    assert carrier["span_kind"] == "EVALUATOR"
    assert carrier["attributes"]["trace.annotations.0.annotation.name"] == "thumbs_up"
    assert carrier["attributes"]["trace.annotations.0.annotation.annotator_kind"] == "HUMAN"

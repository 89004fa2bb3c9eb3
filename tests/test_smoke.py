"""The seed's first example, end to end on the in-memory exporter."""

from __future__ import annotations

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans


def test_traced_function_with_tool(captured: CapturedSpans) -> None:
    """A @trace calling a @tool yields a trace span with the tool span as its child."""

    @rollout.tool("get_weather")
    def get_weather(city: str) -> dict[str, object]:
        return {"city": city, "temp": 21}

    @rollout.trace("support_agent")
    def handle_request(text: str) -> str:
        trace = rollout.current_trace()
        assert trace is not None
        trace.message(role="user", content=text)
        weather = get_weather("Paris")
        return f"It's {weather['temp']}°C."

    assert handle_request("hi") == "It's 21°C."
    root = captured.by_name("invoke_workflow support_agent")
    tool = captured.by_name("execute_tool get_weather")
    assert tool["parent_id"] == root["span_id"]
    assert tool["trace_id"] == root["trace_id"]
    assert tool["attributes"][sc.INPUT_VALUE] == '{"city": "Paris"}'
    assert root["events"][0]["name"] == sc.EVENT_ROLLOUT_MESSAGE

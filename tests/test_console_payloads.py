"""The console tree shows inputs and outputs whichever conventions carry them."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout

SETTINGS: list[list[str]] = [["genai", "openinference"], ["genai"], ["openinference"], []]


@pytest.mark.parametrize("semconv", SETTINGS, ids=lambda s: "+".join(s) or "rollout-only")
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_tool_and_agent_lines_show_in_and_out(
    capsys: pytest.CaptureFixture[str], semconv: list[str], mode: str
) -> None:
    """Under every `semconv` setting, the tool and agent lines print their payloads."""
    rollout.init(
        console=True, sync_mode=True, semconv=semconv, span_exporters=[InMemorySpanExporter()]
    )

    @rollout.tool("get_weather")
    def get_weather(city: str) -> dict[str, object]:
        return {"city": city, "temp": 21}

    @rollout.agent("support")
    def support(text: str) -> str:
        return str(get_weather("Paris")["temp"])

    @rollout.agent("support")
    async def asupport(text: str) -> str:
        return str(get_weather("Paris")["temp"])

    assert (support("hi") if mode == "sync" else await asupport("hi")) == "21"
    err = capsys.readouterr().err
    tool_line = next(line for line in err.splitlines() if "get_weather" in line)
    agent_line = next(line for line in err.splitlines() if "support" in line)
    assert 'in {"city": "Paris"}' in tool_line
    assert 'out {"city": "Paris", "temp": 21}' in tool_line
    assert 'in {"text": "hi"}' in agent_line
    assert "out 21" in agent_line

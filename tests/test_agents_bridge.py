"""OpenAI Agents SDK bridge, driven by the real `agents` package with a fake model."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import pytest

agents = pytest.importorskip(
    "agents", reason="needs the openai-agents extra: pip install 'mv37-rollout[openai-agents]'"
)

from agents import (  # noqa: E402
    Agent,
    GuardrailFunctionOutput,
    RunContextWrapper,
    Runner,
    function_tool,
    input_guardrail,
)
from agents.items import ModelResponse  # noqa: E402
from agents.models.interface import Model  # noqa: E402
from agents.usage import Usage  # noqa: E402
from openai.types.responses import (  # noqa: E402
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from opentelemetry import trace as otel_trace  # noqa: E402

import mv37.rollout as rollout  # noqa: E402
from mv37.rollout import semconv as sc  # noqa: E402
from mv37.rollout.integrations import _agents_bridge as bridge  # noqa: E402
from mv37.rollout.integrations._errors import MissingExtraError  # noqa: E402
from mv37.rollout.testing import CapturedSpans  # noqa: E402


class FakeModel(Model):
    """Canned turns; each call records a generation span like a real model does."""

    def __init__(self, turns: list[list[Any]]) -> None:
        self.turns = list(turns)

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        output = self.turns.pop(0)
        with agents.generation_span(
            model="fake-model",
            input=[{"role": "user", "content": "weather?"}],
            model_config={"temperature": 0},
        ) as span:
            span.span_data.output = [{"role": "assistant", "content": "ok"}]
            span.span_data.usage = {"input_tokens": 11, "output_tokens": 5}
        usage = Usage(requests=1, input_tokens=11, output_tokens=5, total_tokens=16)
        return ModelResponse(output=output, usage=usage, response_id="resp_1")

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def _call(name: str, arguments: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        arguments=arguments, call_id="call_1", name=name, type="function_call", id="fc_1"
    )


def _message(text: str) -> ResponseOutputMessage:
    content: list[Any] = [ResponseOutputText(annotations=[], text=text, type="output_text")]
    return ResponseOutputMessage(
        id="msg_1", content=content, role="assistant", status="completed", type="message"
    )


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@function_tool
def book_flight(city: str) -> str:
    """Book a flight (always fails here)."""
    raise RuntimeError("no seats left")


@input_guardrail
async def polite(
    ctx: RunContextWrapper[Any], agent: Agent[Any], data: Any
) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered=False)


def _agent(turns: list[list[Any]], tools: list[Any] | None = None) -> Agent[Any]:
    return Agent(
        name="weather_agent",
        instructions="be nice",
        tools=tools or [get_weather],
        input_guardrails=[polite],
        model=FakeModel(turns),
    )


@pytest.fixture(autouse=True)
def _agents_tracing() -> Iterator[None]:
    """No processor of the SDK's own (it would export to OpenAI); restore afterwards."""
    provider = agents.tracing.get_trace_provider()
    before = list(provider._multi_processor._processors)
    agents.set_trace_processors([])
    bridge._registration.processor = None
    bridge._registration.added = False
    yield
    agents.set_trace_processors(before)
    bridge._registration.processor = None
    bridge._registration.added = False


def _run(agent: Agent[Any], prompt: str) -> str:
    return str(asyncio.run(Runner.run(agent, prompt)).final_output)


def _by_type(captured: CapturedSpans, span_type: str) -> list[dict[str, Any]]:
    return [s for s in captured.as_dicts() if s["type"] == span_type]


def test_a_run_inside_a_rollout_trace_is_part_of_it(captured: CapturedSpans) -> None:
    rollout.instrument_openai_agents()
    agent = _agent([[_call("get_weather", '{"city": "Paris"}')], [_message("It is sunny")]])

    async def main() -> str:
        async with rollout.trace("outer"):
            result = await Runner.run(agent, "weather in Paris?")
        return str(result.final_output)

    assert asyncio.run(main()) == "It is sunny"
    spans = captured.as_dicts()
    assert len({s["trace_id"] for s in spans}) == 1
    outer = captured.by_name("invoke_workflow outer")
    workflow = captured.by_name("invoke_workflow Agent workflow")
    assert workflow["parent_id"] == outer["span_id"]
    (agent_span,) = _by_type(captured, "agent")
    assert agent_span["name"] == "invoke_agent weather_agent"
    assert agent_span["attributes"][sc.OPENINFERENCE_SPAN_KIND] == "AGENT"
    (tool,) = _by_type(captured, "tool")
    assert tool["name"] == "execute_tool get_weather"
    assert tool["attributes"][sc.OPENINFERENCE_SPAN_KIND] == "TOOL"
    assert tool["attributes"][sc.ROLLOUT_INPUT] == '{"city": "Paris"}'
    assert tool["attributes"][sc.ROLLOUT_OUTPUT] == "sunny in Paris"
    llms = _by_type(captured, "llm")
    assert len(llms) == 2
    for llm in llms:
        assert llm["name"] == "chat fake-model"
        assert llm["attributes"][sc.GEN_AI_REQUEST_MODEL] == "fake-model"
        assert llm["attributes"][sc.GEN_AI_USAGE_INPUT_TOKENS] == 11
        assert llm["attributes"][sc.OPENINFERENCE_SPAN_KIND] == "LLM"
    (guardrail,) = _by_type(captured, "guardrail")
    assert guardrail["attributes"][sc.OPENINFERENCE_SPAN_KIND] == "GUARDRAIL"
    assert guardrail["attributes"]["rollout.attributes.triggered"] is False
    ids = {s["span_id"] for s in spans}
    assert all(s["parent_id"] in ids for s in spans if s["name"] != "invoke_workflow outer")
    assert outer["attributes"][sc.ROLLOUT_USAGE_INPUT_TOKENS] == 22


def test_a_run_inside_a_foreign_otel_span_joins_its_trace(captured: CapturedSpans) -> None:
    rollout.instrument_openai_agents()
    tracer = otel_trace.get_tracer("web")
    agent = _agent([[_message("hi")]])

    async def main() -> None:
        with tracer.start_as_current_span("POST /chat"):
            await Runner.run(agent, "hello")

    asyncio.run(main())
    http = captured.by_name("POST /chat")
    workflow = captured.by_name("invoke_workflow Agent workflow")
    assert workflow["parent_id"] == http["span_id"]
    assert workflow["trace_id"] == http["trace_id"]


def test_tool_errors_mark_the_span(captured: CapturedSpans) -> None:
    rollout.instrument_openai_agents()
    agent = _agent(
        [[_call("book_flight", '{"city": "Rome"}')], [_message("sorry")]], tools=[book_flight]
    )
    assert _run(agent, "book Rome") == "sorry"
    (tool,) = _by_type(captured, "tool")
    assert tool["status"] == "ERROR"


def test_registration_is_idempotent_and_replace_takes_over() -> None:
    provider = agents.tracing.get_trace_provider()
    sentinel = agents.tracing.processors.BatchTraceProcessor(
        agents.tracing.processors.BackendSpanExporter(api_key="sk-unused")
    )
    agents.set_trace_processors([sentinel])
    first = rollout.instrument_openai_agents()
    second = rollout.instrument_openai_agents()
    assert first is second
    assert list(provider._multi_processor._processors) == [sentinel, first]
    rollout.instrument_openai_agents(replace=True)
    assert list(provider._multi_processor._processors) == [first]
    sentinel.shutdown()


def test_manual_processor() -> None:
    processor = rollout.openai_agents_processor()
    assert isinstance(processor, agents.TracingProcessor)


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "agents", None)
    with pytest.raises(MissingExtraError, match=r"mv37-rollout\[openai-agents\]"):
        rollout.openai_agents_processor()


def test_handoffs_become_handoff_spans(captured: CapturedSpans) -> None:
    rollout.instrument_openai_agents()
    specialist = Agent(name="billing", instructions="bill", model=FakeModel([[_message("paid")]]))
    triage = Agent(
        name="triage",
        instructions="route",
        handoffs=[specialist],
        model=FakeModel([[_call("transfer_to_billing", "{}")]]),
    )
    assert _run(triage, "I want to pay") == "paid"
    (handoff,) = _by_type(captured, "handoff")
    assert handoff["attributes"]["rollout.attributes.from_agent"] == "triage"
    assert handoff["attributes"]["rollout.attributes.to_agent"] == "billing"
    names = {s["name"] for s in _by_type(captured, "agent")}
    assert names == {"invoke_agent triage", "invoke_agent billing"}
    assert len({s["trace_id"] for s in captured.as_dicts()}) == 1

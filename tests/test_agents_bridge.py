"""OpenAI Agents SDK bridge, driven by the real `agents` package without a network.

The model is the SDK's own `OpenAIResponsesModel` (or `OpenAIChatCompletionsModel`) on
an `AsyncOpenAI` client whose HTTP transport is an in-memory `httpx2.MockTransport`
serving canned responses, so every span is one the SDK itself produced.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

agents = pytest.importorskip(
    "agents", reason="needs the openai-agents extra: pip install 'mv37-rollout[openai-agents]'"
)
import httpx2  # noqa: E402
from agents import (  # noqa: E402
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    ModelSettings,
    RunConfig,
    RunContextWrapper,
    Runner,
    function_tool,
    input_guardrail,
)
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel  # noqa: E402
from agents.models.openai_responses import OpenAIResponsesModel  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402
from opentelemetry import trace as otel_trace  # noqa: E402

import mv37.rollout as rollout  # noqa: E402
from mv37.rollout import semconv as sc  # noqa: E402
from mv37.rollout.base import _diagnostics  # noqa: E402
from mv37.rollout.integrations import _agents_bridge as bridge  # noqa: E402
from mv37.rollout.integrations._errors import MissingExtraError  # noqa: E402
from mv37.rollout.testing import CapturedSpans, capture_spans  # noqa: E402

MODEL = "gpt-4o-mini-2024-07-18"
USAGE = {
    "input_tokens": 20,
    "output_tokens": 5,
    "total_tokens": 25,
    "input_tokens_details": {"cached_tokens": 4},
    "output_tokens_details": {"reasoning_tokens": 2},
}


# -- a model server in memory ----------------------------------------------------------------


def call(name: str, arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    """A Responses API function call output item."""
    return {
        "type": "function_call",
        "id": f"fc_{call_id}",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def say(text: str) -> dict[str, Any]:
    """A Responses API assistant message output item."""
    return {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


class ModelServer:
    """Serves canned Responses (JSON or SSE) and chat completions, one per request."""

    def __init__(self, *turns: list[dict[str, Any]] | dict[str, Any] | int) -> None:
        self.turns = list(turns)
        self.requests: list[dict[str, Any]] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        turn = self.turns.pop(0)
        if isinstance(turn, int):
            return httpx2.Response(turn, json={"error": {"message": "model down"}})
        if isinstance(turn, dict):  # a chat completion
            return httpx2.Response(200, json=turn)
        response = {
            "id": f"resp_{len(self.requests)}",
            "object": "response",
            "created_at": 0,
            "model": MODEL,
            "status": "completed",
            "output": turn,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": USAGE,
        }
        if not body.get("stream"):
            return httpx2.Response(200, json=response)
        event = {"type": "response.completed", "sequence_number": 0, "response": response}
        sse = f"event: response.completed\ndata: {json.dumps(event)}\n\n"
        return httpx2.Response(200, content=sse, headers={"content-type": "text/event-stream"})

    def client(self) -> AsyncOpenAI:
        transport = httpx2.MockTransport(self.handle)
        return AsyncOpenAI(
            api_key="sk-test",
            base_url="http://model.test/v1",
            http_client=httpx2.AsyncClient(transport=transport),
            max_retries=0,
        )

    def responses(self) -> OpenAIResponsesModel:
        return OpenAIResponsesModel("gpt-4o-mini", self.client())

    def chat(self) -> OpenAIChatCompletionsModel:
        return OpenAIChatCompletionsModel("gpt-4o-mini", self.client())


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
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered="rude" in str(data))


def weather_agent(server: ModelServer, tools: list[Any] | None = None) -> Agent[Any]:
    return Agent(
        name="weather_agent",
        instructions="be nice",
        tools=tools or [get_weather],
        input_guardrails=[polite],
        model=server.responses(),
    )


Run = Callable[..., str]


def sync_run(agent: Agent[Any], prompt: str, **kwargs: Any) -> Any:
    """`Runner.run_sync` on a fresh event loop, closed afterwards.

    `run_sync` keeps the thread's default loop open across calls by design; in a test
    suite that turns ResourceWarnings into errors, each run gets its own loop.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return Runner.run_sync(agent, prompt, **kwargs)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def run_async(agent: Agent[Any], prompt: str, **kwargs: Any) -> str:
    """`Runner.run` inside `async with rollout.trace("outer")`."""

    async def main() -> str:
        async with rollout.trace("outer"):
            result = await Runner.run(agent, prompt, **kwargs)
        return str(result.final_output)

    return asyncio.run(main())


def run_sync(agent: Agent[Any], prompt: str, **kwargs: Any) -> str:
    """`Runner.run_sync` inside `with rollout.trace("outer")`."""
    with rollout.trace("outer"):
        return str(sync_run(agent, prompt, **kwargs).final_output)


def run_streamed(agent: Agent[Any], prompt: str, **kwargs: Any) -> str:
    """`Runner.run_streamed` (its loop runs in a background task), events consumed."""

    async def main() -> str:
        async with rollout.trace("outer"):
            result = Runner.run_streamed(agent, prompt, **kwargs)
            async for _ in result.stream_events():
                pass
        return str(result.final_output)

    return asyncio.run(main())


RUNNERS = pytest.mark.parametrize("run", [run_async, run_sync, run_streamed])


@pytest.fixture(autouse=True)
def _agents_tracing() -> Iterator[None]:
    """No processor of the SDK's own (it would export to OpenAI); restore afterwards.

    Also fails a test whose callbacks hit an internal error: the SDK swallows what a
    processor raises, so the counter is the only place such a bug shows.
    """
    provider = agents.tracing.get_trace_provider()
    before = list(provider._multi_processor._processors)
    agents.set_tracing_disabled(False)
    agents.set_trace_processors([])
    bridge._registration.processor = None
    bridge._registration.added = False
    yield
    agents.set_trace_processors(before)
    bridge._registration.processor = None
    bridge._registration.added = False
    errors = {k: v for k, v in _diagnostics.internal_error_counts().items() if "agents" in k}
    assert errors == {}


def by_type(captured: CapturedSpans, span_type: str) -> list[dict[str, Any]]:
    return [s for s in captured.as_dicts() if s["type"] == span_type]


# -- a run and its spans ----------------------------------------------------------------------


@RUNNERS
def test_a_run_inside_a_rollout_trace_is_one_tree_in_its_trace(
    captured: CapturedSpans, run: Run
) -> None:
    """Sync, async and streamed runs nest under the enclosing trace by the SDK's parents."""
    rollout.instrument_openai_agents()
    server = ModelServer([call("get_weather", '{"city": "Paris"}')], [say("It is sunny")])
    assert run(weather_agent(server), "weather in Paris?") == "It is sunny"

    spans = captured.as_dicts()
    assert len({s["trace_id"] for s in spans}) == 1

    def parent(span: dict[str, Any]) -> str:
        return str(span["parent_id"])

    outer = captured.by_name("invoke_workflow outer")
    workflow = captured.by_name("invoke_workflow Agent workflow")
    assert workflow["parent_id"] == outer["span_id"]
    (task,) = by_type(captured, "task")
    assert parent(task) == workflow["span_id"]
    (agent,) = by_type(captured, "agent")
    assert parent(agent) == task["span_id"]
    assert agent["name"] == "invoke_agent weather_agent"
    assert agent["attributes"][sc.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert agent["attributes"][sc.GEN_AI_AGENT_NAME] == "weather_agent"
    assert agent["attributes"][sc.OPENINFERENCE_SPAN_KIND] == "AGENT"
    assert agent["attributes"][sc.ROLLOUT_AGENT_TOOLS] == ("get_weather",)  # known at the end
    assert agent["attributes"][sc.ROLLOUT_AGENT_OUTPUT_TYPE] == "str"
    turns = sorted(by_type(captured, "turn"), key=lambda s: s["name"])
    assert [t["name"] for t in turns] == ["turn 1", "turn 2"]
    assert all(parent(t) == agent["span_id"] for t in turns)

    (tool,) = by_type(captured, "tool")
    assert parent(tool) == turns[0]["span_id"]
    assert tool["name"] == "execute_tool get_weather"
    assert tool["attributes"][sc.OPENINFERENCE_SPAN_KIND] == "TOOL"
    assert tool["attributes"][sc.GEN_AI_TOOL_NAME] == "get_weather"
    assert tool["attributes"][sc.INPUT_VALUE] == '{"city": "Paris"}'
    assert tool["attributes"][sc.OUTPUT_VALUE] == "sunny in Paris"
    assert tool["status"] == "UNSET"

    llms = sorted(by_type(captured, "llm"), key=lambda s: s["attributes"][sc.GEN_AI_RESPONSE_ID])
    assert [parent(s) for s in llms] == [t["span_id"] for t in turns]
    for llm in llms:
        attrs = llm["attributes"]
        assert llm["name"] == f"chat {MODEL}"
        assert attrs[sc.OPENINFERENCE_SPAN_KIND] == "LLM"
        assert attrs[sc.GEN_AI_OPERATION_NAME] == "chat"
        assert attrs[sc.GEN_AI_PROVIDER_NAME] == "openai"
        assert attrs[sc.GEN_AI_REQUEST_MODEL] == MODEL
        assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 20
        assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
        assert attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 4
        assert attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 2
    assert [s["attributes"][sc.GEN_AI_RESPONSE_ID] for s in llms] == ["resp_1", "resp_2"]
    assert '"tool_call"' in llms[0]["attributes"][sc.GEN_AI_OUTPUT_MESSAGES]
    assert llms[1]["attributes"][sc.OUTPUT_VALUE] == "It is sunny"
    assert "weather in Paris?" in llms[0]["attributes"][sc.GEN_AI_INPUT_MESSAGES]

    (guardrail,) = by_type(captured, "guardrail")
    assert guardrail["name"] == "guardrail polite"
    assert guardrail["attributes"][sc.OPENINFERENCE_SPAN_KIND] == "GUARDRAIL"
    assert guardrail["attributes"][sc.ROLLOUT_GUARDRAIL_TRIGGERED] is False

    # Usage is counted once: on the llm spans, summed into the traces (not from task/turn).
    assert workflow["attributes"][sc.ROLLOUT_USAGE_INPUT_TOKENS] == 40
    assert outer["attributes"][sc.ROLLOUT_USAGE_INPUT_TOKENS] == 40
    assert all(sc.ROLLOUT_USAGE_INPUT_TOKENS not in s["attributes"] for s in [task, *turns])


def test_a_run_inside_a_foreign_otel_span_joins_its_trace(captured: CapturedSpans) -> None:
    rollout.instrument_openai_agents()
    tracer = otel_trace.get_tracer("web")
    agent = weather_agent(ModelServer([say("hi")]))

    async def main() -> None:
        with tracer.start_as_current_span("POST /chat"):
            await Runner.run(agent, "hello")

    asyncio.run(main())
    http = captured.by_name("POST /chat")
    workflow = captured.by_name("invoke_workflow Agent workflow")
    assert workflow["parent_id"] == http["span_id"]
    assert {s["trace_id"] for s in captured.as_dicts()} == {http["trace_id"]}


def test_a_run_on_its_own_is_a_new_trace(captured: CapturedSpans) -> None:
    rollout.instrument_openai_agents()
    sync_run(weather_agent(ModelServer([say("hi")])), "hello")
    workflow = captured.by_name("invoke_workflow Agent workflow")
    assert workflow["parent_id"] is None
    assert {s["trace_id"] for s in captured.as_dicts()} == {workflow["trace_id"]}


@pytest.mark.parametrize("how", ["instrument", "processor", "client"])
def test_the_attributes_option_tags_every_trace_and_span(captured: CapturedSpans, how: str) -> None:
    tags = {"team": "search"}
    if how == "instrument":
        rollout.instrument_openai_agents(attributes=tags)
    elif how == "client":
        captured.client.instrument_openai_agents(replace=False, attributes=tags)
    else:
        agents.set_trace_processors([rollout.openai_agents_processor(attributes=tags)])
    sync_run(weather_agent(ModelServer([say("hi")])), "hello")
    spans = captured.as_dicts()
    assert len(spans) >= 3
    assert all(s["attributes"].get("rollout.attributes.team") == "search" for s in spans)


def test_an_unknown_option_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="unexpected option.*colour"):
        rollout.instrument_openai_agents(colour="red")
    with pytest.raises(TypeError, match="unexpected option.*colour"):
        rollout.openai_agents_processor(colour="red")
    with pytest.raises(TypeError, match="must be a mapping"):
        rollout.openai_agents_processor(attributes=["team"])


def test_chat_completions_generations_carry_model_config_and_usage(
    captured: CapturedSpans,
) -> None:
    rollout.instrument_openai_agents()

    def completion(message: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "usage": {
                "prompt_tokens": 30,
                "completion_tokens": 7,
                "total_tokens": 37,
                "prompt_tokens_details": {"cached_tokens": 10},
                "completion_tokens_details": {"reasoning_tokens": 3},
            },
        }

    tool_call = {"id": "c1", "type": "function", "function": {"name": "get_weather"}}
    tool_call["function"]["arguments"] = '{"city": "Rome"}'  # type: ignore[index]
    server = ModelServer(
        completion({"role": "assistant", "content": None, "tool_calls": [tool_call]}),
        completion({"role": "assistant", "content": "warm"}),
    )
    agent = Agent(
        name="chat_agent",
        instructions="be brief",
        tools=[get_weather],
        model=server.chat(),
        model_settings=ModelSettings(temperature=0.2, max_tokens=100, top_p=0.9),
    )
    assert sync_run(agent, "weather in Rome?").final_output == "warm"

    llms = by_type(captured, "llm")
    assert len(llms) == 2
    for llm in llms:
        attrs = llm["attributes"]
        assert llm["name"] == "chat gpt-4o-mini"
        assert attrs[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
        assert attrs[sc.GEN_AI_PROVIDER_NAME] == "openai"
        assert attrs[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2
        assert attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] == 100
        assert attrs[sc.GEN_AI_REQUEST_TOP_P] == 0.9
        params = json.loads(str(attrs[sc.LLM_INVOCATION_PARAMETERS]))
        assert params["temperature"] == 0.2
        assert "base_url" not in params
        assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 30
        assert attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 10
        assert attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 3
        assert "weather in Rome?" in attrs[sc.GEN_AI_INPUT_MESSAGES]
    outputs = sorted(str(s["attributes"][sc.GEN_AI_OUTPUT_MESSAGES]) for s in llms)
    assert '"tool_call"' in outputs[1]
    assert "warm" in outputs[0]


def test_message_content_off_keeps_messages_out(captured: CapturedSpans) -> None:
    """`capture_content=False` applies to what the SDK hands us too."""
    with capture_spans(capture_content=False) as quiet:
        rollout.instrument_openai_agents()
        sync_run(weather_agent(ModelServer([say("secret answer")])), "secret question")
        (llm,) = by_type(quiet, "llm")
    assert sc.GEN_AI_INPUT_MESSAGES not in llm["attributes"]
    assert sc.GEN_AI_OUTPUT_MESSAGES not in llm["attributes"]
    assert sc.OUTPUT_VALUE not in llm["attributes"]
    assert llm["attributes"][sc.GEN_AI_USAGE_INPUT_TOKENS] == 20


def test_trace_fields_metadata_and_later_feedback(captured: CapturedSpans) -> None:
    """Group id, metadata, and the SDK's trace id usable as `external_trace_id`."""
    rollout.instrument_openai_agents()
    trace_id = "trace_" + "a1" * 16
    config = RunConfig(
        workflow_name="support",
        trace_id=trace_id,
        group_id="conv-7",
        trace_metadata={"user_id": "u-1", "channel": "web"},
    )
    sync_run(weather_agent(ModelServer([say("hi")])), "hello", run_config=config)
    rollout.feedback("thumbs_up", True, external_trace_id=trace_id)

    workflow = captured.by_name("invoke_workflow support")
    attrs = workflow["attributes"]
    assert attrs[sc.GEN_AI_CONVERSATION_ID] == "conv-7"
    assert attrs[sc.ROLLOUT_TRACE_EXTERNAL_ID] == trace_id
    assert attrs["rollout.attributes.channel"] == "web"
    spans = captured.as_dicts()
    assert all(s["attributes"].get(sc.USER_ID) == "u-1" for s in spans if s["type"] == "tool")
    assert all(s["attributes"].get(sc.USER_ID) == "u-1" for s in by_type(captured, "llm"))
    assert {s["trace_id"] for s in spans} == {workflow["trace_id"]}
    assert any(e["name"] == "rollout.feedback" for s in spans for e in s["events"])


# -- errors ---------------------------------------------------------------------------------


def test_a_failing_tool_marks_its_span(captured: CapturedSpans) -> None:
    rollout.instrument_openai_agents()
    server = ModelServer([call("book_flight", '{"city": "Rome"}')], [say("sorry")])
    agent = weather_agent(server, tools=[book_flight])
    assert sync_run(agent, "book Rome").final_output == "sorry"
    (tool,) = by_type(captured, "tool")
    assert tool["status"] == "ERROR"
    assert tool["attributes"][sc.ROLLOUT_TOOL_STATUS] == "error"


def test_a_failing_model_marks_the_spans_and_the_error_propagates(
    captured: CapturedSpans,
) -> None:
    rollout.instrument_openai_agents()
    agent = weather_agent(ModelServer(500))
    with pytest.raises(Exception, match="model down"):
        sync_run(agent, "hello")
    (agent_span,) = by_type(captured, "agent")
    assert agent_span["status"] == "ERROR"
    (llm,) = by_type(captured, "llm")
    assert llm["status"] == "ERROR"
    captured.by_name("invoke_workflow Agent workflow")  # the trace ended and was exported


def test_a_tripped_guardrail_is_recorded(captured: CapturedSpans) -> None:
    rollout.instrument_openai_agents()
    agent = weather_agent(ModelServer([say("never sent")]))
    with pytest.raises(InputGuardrailTripwireTriggered):
        sync_run(agent, "you are rude")
    (guardrail,) = by_type(captured, "guardrail")
    assert guardrail["attributes"][sc.ROLLOUT_GUARDRAIL_TRIGGERED] is True
    (turn,) = by_type(captured, "turn")  # the SDK reports the trip on the turn
    assert turn["status"] == "ERROR"
    assert turn["status_description"] == "Guardrail tripwire triggered"


def test_callbacks_never_raise_into_the_sdk(
    captured: CapturedSpans, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken client costs the telemetry, never the run."""
    monkeypatch.setenv("MV37_ROLLOUT_RAISE_INTERNAL", "0")
    processor = rollout.instrument_openai_agents()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("broken client")

    monkeypatch.setattr(captured.client, "start_trace", broken)
    monkeypatch.setattr(captured.client, "flush", broken)
    assert sync_run(weather_agent(ModelServer([say("fine")])), "hi").final_output == "fine"
    processor.force_flush()
    processor.on_span_start(object())  # type: ignore[arg-type]
    processor.on_span_end(object())  # type: ignore[arg-type]
    counts = _diagnostics.internal_error_counts()
    assert counts["openai-agents trace start"] == 1
    assert counts["openai-agents force_flush"] == 1
    _diagnostics.reset_diagnostics()


# -- handoffs, custom spans, spans from other threads ----------------------------------------


def test_handoffs_become_handoff_spans(captured: CapturedSpans) -> None:
    rollout.instrument_openai_agents()
    server = ModelServer([call("transfer_to_billing", "{}")], [say("paid")])
    billing = Agent(name="billing", instructions="bill", model=server.responses())
    triage = Agent(
        name="triage", instructions="route", handoffs=[billing], model=server.responses()
    )
    assert sync_run(triage, "I want to pay").final_output == "paid"
    (handoff,) = by_type(captured, "handoff")
    assert handoff["name"] == "handoff triage -> billing"
    assert handoff["attributes"][sc.ROLLOUT_HANDOFF_FROM_AGENT] == "triage"
    assert handoff["attributes"][sc.ROLLOUT_HANDOFF_TO_AGENT] == "billing"
    agent_spans = {s["attributes"][sc.GEN_AI_AGENT_NAME]: s for s in by_type(captured, "agent")}
    assert set(agent_spans) == {"triage", "billing"}
    assert agent_spans["triage"]["attributes"][sc.ROLLOUT_AGENT_HANDOFFS] == ("billing",)
    assert len({s["trace_id"] for s in captured.as_dicts()}) == 1


def test_custom_spans_and_the_sdk_tracing_api(captured: CapturedSpans) -> None:
    rollout.instrument_openai_agents()
    with agents.trace("nightly_job"), agents.custom_span("fetch_rows", {"rows": 3}):
        pass
    custom = captured.by_name("fetch_rows")
    assert custom["type"] == "span"
    assert custom["attributes"]["rollout.attributes.rows"] == 3
    assert custom["parent_id"] == captured.by_name("invoke_workflow nightly_job")["span_id"]


def test_spans_from_other_threads_nest_by_their_sdk_parent(captured: CapturedSpans) -> None:
    """Callbacks from a thread with no context of ours still nest under the right span."""
    rollout.instrument_openai_agents()

    with agents.trace("threaded") as sdk_trace:

        def work() -> None:
            with agents.agent_span(name="worker", parent=sdk_trace) as sdk_agent:  # noqa: SIM117
                with agents.function_span(name="lookup", parent=sdk_agent):
                    pass

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()

    workflow = captured.by_name("invoke_workflow threaded")
    agent = captured.by_name("invoke_agent worker")
    tool = captured.by_name("execute_tool lookup")
    assert agent["parent_id"] == workflow["span_id"]
    assert tool["parent_id"] == agent["span_id"]
    assert {workflow["trace_id"], agent["trace_id"], tool["trace_id"]} == {workflow["trace_id"]}


def test_spans_left_open_end_with_their_trace(captured: CapturedSpans) -> None:
    rollout.instrument_openai_agents()
    with agents.trace("leaky") as sdk_trace:
        agents.custom_span("never_finished", parent=sdk_trace).start()
    captured.by_name("never_finished")
    captured.by_name("invoke_workflow leaky")


# -- registration -----------------------------------------------------------------------------


def processors() -> list[Any]:
    return list(agents.tracing.get_trace_provider()._multi_processor._processors)


def test_registration_is_idempotent_and_replace_takes_over() -> None:
    sentinel = agents.tracing.processors.BatchTraceProcessor(
        agents.tracing.processors.BackendSpanExporter(api_key="sk-unused")
    )
    agents.set_trace_processors([sentinel])
    first = rollout.instrument_openai_agents()
    second = rollout.instrument_openai_agents()
    assert first is second
    assert processors() == [sentinel, first]
    rollout.instrument_openai_agents(replace=True)
    assert processors() == [first]
    agents.set_trace_processors([sentinel])  # someone else took ours out: add it back
    rollout.instrument_openai_agents()
    assert processors() == [sentinel, first]
    sentinel.shutdown()


def test_the_latest_client_records_and_a_shut_down_one_gives_way(
    captured: CapturedSpans,
) -> None:
    standalone = rollout.Rollout(sync_mode=True, console=False, span_exporters=())
    processor = standalone.instrument_openai_agents()
    assert rollout.instrument_openai_agents() is processor  # rebinds to the global client
    sync_run(weather_agent(ModelServer([say("one")])), "hi")
    assert len(by_type(captured, "agent")) == 1

    standalone.instrument_openai_agents()
    standalone.shutdown()  # a shut-down client hands over to the global one
    sync_run(weather_agent(ModelServer([say("two")])), "hi")
    assert len(by_type(captured, "agent")) == 2


def test_auto_instrument_at_a_second_init_records_into_the_new_client() -> None:
    with capture_spans(auto_instrument=["openai_agents"]):
        pass
    with capture_spans(auto_instrument=["openai_agents"]) as second:
        sync_run(weather_agent(ModelServer([say("hi")])), "hi")
        assert len(by_type(second, "agent")) == 1
    assert len([p for p in processors() if isinstance(p, bridge.RolloutAgentsProcessor)]) == 1


def test_manual_processor() -> None:
    processor = rollout.openai_agents_processor()
    assert isinstance(processor, agents.TracingProcessor)
    assert processors() == []


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "agents", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'mv37-rollout\[openai-agents\]'"):
        rollout.openai_agents_processor()
    with pytest.raises(MissingExtraError, match=r"mv37-rollout\[openai-agents\]"):
        rollout.instrument_openai_agents()

"""Decorators x every call shape: span names and types, capture defaults, return values and
@agent options, asserted on what the in-memory exporter received.

The matrix (kinds, shapes, `build`, `invoke`) is in `decorator_matrix.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans

if TYPE_CHECKING:
    from tests import decorator_matrix as matrix
else:
    import decorator_matrix as matrix


PAYLOAD_KEYS = (
    sc.INPUT_VALUE,
    sc.OUTPUT_VALUE,
    sc.INPUT_VALUE,
    sc.OUTPUT_VALUE,
    sc.INPUT_MIME_TYPE,
    sc.OUTPUT_MIME_TYPE,
    sc.GEN_AI_TOOL_CALL_ARGUMENTS,
    sc.GEN_AI_TOOL_CALL_RESULT,
)


# == span naming and types ==================================================================


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_span_name_type_and_kind(captured: CapturedSpans, kind: str, shape: str) -> None:
    """Each decorator exports one span with its GenAI name, type, operation and OI kind."""
    built = matrix.build(shape, matrix.deco_for(kind))
    await matrix.invoke(kind, built, "Paris")

    span = captured.by_name("work")
    otel_name, span_kind, operation, oi_kind = matrix.EXPECTED[kind]
    attrs = span["attributes"]
    assert span["name"] == otel_name
    assert span["kind"] == span_kind
    assert span["type"] == kind
    assert attrs[sc.ROLLOUT_SPAN_TYPE] == kind
    assert attrs[sc.ROLLOUT_SPAN_NAME] == "work"
    assert attrs[sc.GEN_AI_OPERATION_NAME] == operation
    assert attrs[sc.OPENINFERENCE_SPAN_KIND] == oi_kind
    assert span["status"] == "UNSET"
    if kind in matrix.TRACE_KINDS:
        assert span["parent_id"] is None
        assert len(captured.as_dicts()) == 1
    else:
        root = captured.by_name("root")
        assert span["parent_id"] == root["span_id"]
        assert span["trace_id"] == root["trace_id"]
        assert len(captured.as_dicts()) == 2


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
async def test_tool_name_mirrors(captured: CapturedSpans, shape: str) -> None:
    """A tool span carries its name as rollout.tool.name, gen_ai.tool.name and tool.name."""
    built = matrix.build(shape, rollout.tool("get_weather"))
    await matrix.invoke("tool", built, "Paris")

    attrs = captured.by_name("execute_tool get_weather")["attributes"]
    assert attrs[sc.ROLLOUT_TOOL_NAME] == "get_weather"
    assert attrs[sc.GEN_AI_TOOL_NAME] == "get_weather"
    assert attrs[sc.TOOL_NAME] == "get_weather"


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
async def test_llm_span_model_and_provider_mirrors(captured: CapturedSpans, shape: str) -> None:
    """@span("llm", model=, provider=) is `chat {model}`, CLIENT, with model/provider mirrors."""
    built = matrix.build(shape, matrix.deco_for("llm"))
    await matrix.invoke("llm", built, "Paris")

    span = captured.by_name("chat gpt-4o")
    attrs = span["attributes"]
    assert span["kind"] == "CLIENT"
    assert attrs[sc.ROLLOUT_LLM_MODEL] == "gpt-4o"
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert attrs[sc.LLM_MODEL_NAME] == "gpt-4o"
    assert attrs[sc.ROLLOUT_LLM_PROVIDER] == "openai"
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[sc.LLM_PROVIDER] == "openai"


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("kind", matrix.TRACE_KINDS)
async def test_trace_decorators_start_a_new_trace_per_call(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """Two calls of an @agent/@trace function are two root spans in two OTel traces."""
    built = matrix.build(shape, matrix.deco_for(kind))
    await matrix.invoke(kind, built, "Paris")
    await matrix.invoke(kind, built, "Lyon")

    spans = matrix.named(captured, "work")
    assert len(spans) == 2
    assert [s["parent_id"] for s in spans] == [None, None]
    assert spans[0]["trace_id"] != spans[1]["trace_id"]
    assert all(len(s["trace_id"]) == 32 and s["trace_id"] != "0" * 32 for s in spans)


@dataclass(frozen=True)
class Form:
    """One spelling of a decorator and the span it should produce."""

    make: Callable[[], Any]
    otel_name: str
    span_type: str
    rollout_name: str
    has_output: bool
    extra: tuple[tuple[str, object], ...] = ()


FORMS: dict[str, Form] = {
    "agent-bare": Form(lambda: rollout.agent, "invoke_agent work", "agent", "work", True),
    "agent-named": Form(lambda: rollout.agent("x"), "invoke_agent x", "agent", "x", True),
    "agent-options": Form(
        lambda: rollout.agent(name="x", capture_output=False),
        "invoke_agent x",
        "agent",
        "x",
        False,
    ),
    "trace-bare": Form(lambda: rollout.trace, "invoke_workflow work", "trace", "work", False),
    "trace-named": Form(lambda: rollout.trace("x"), "invoke_workflow x", "trace", "x", False),
    "trace-options": Form(
        lambda: rollout.trace(name="x", attributes={"k": "v"}),
        "invoke_workflow x",
        "trace",
        "x",
        False,
        ((f"{sc.ROLLOUT_ATTRIBUTES}.k", "v"),),
    ),
    "tool-bare": Form(lambda: rollout.tool, "execute_tool work", "tool", "work", True),
    "tool-named": Form(lambda: rollout.tool("x"), "execute_tool x", "tool", "x", True),
    "tool-options": Form(
        lambda: rollout.tool(name="x", record_output=False),
        "execute_tool x",
        "tool",
        "x",
        False,
        ((sc.ROLLOUT_TOOL_NAME, "x"),),
    ),
    "task-bare": Form(lambda: rollout.task, "work", "task", "work", False),
    "task-named": Form(lambda: rollout.task("x"), "x", "task", "x", False),
    "task-options": Form(
        lambda: rollout.task(name="x", record_output=True), "x", "task", "x", True
    ),
    "span-bare": Form(lambda: rollout.span, "work", "span", "work", False),
    "span-named": Form(
        lambda: rollout.span("retrieval"), "retrieval work", "retrieval", "work", False
    ),
    "span-options": Form(
        lambda: rollout.span("retrieval", name="x", record_output=True),
        "retrieval x",
        "retrieval",
        "x",
        True,
    ),
}


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("form", list(FORMS))
async def test_bare_named_and_options_forms(captured: CapturedSpans, form: str, shape: str) -> None:
    """Bare, named and keyword-option spellings of every decorator give the right span."""
    spec = FORMS[form]
    built = matrix.build(shape, spec.make())
    result = await matrix.invoke(spec.span_type, built, "Paris")

    assert result == await matrix.run(
        built.mode, matrix.build(shape, matrix.identity).call, "Paris"
    )
    span = captured.by_name(spec.rollout_name)
    assert span["name"] == spec.otel_name
    assert span["attributes"][sc.ROLLOUT_SPAN_TYPE] == spec.span_type
    assert span["attributes"][sc.ROLLOUT_SPAN_NAME] == spec.rollout_name
    assert (sc.OUTPUT_VALUE in span["attributes"]) is spec.has_output
    for key, value in spec.extra:
        assert span["attributes"][key] == value


# == capture defaults =======================================================================


CALLS: dict[str, tuple[tuple[Any, ...], dict[str, Any], dict[str, Any]]] = {
    # call style -> (args, kwargs, expected bound input)
    "positional+varargs": (
        ("Paris", 2, "x", "y"),
        {},
        {"city": "Paris", "n": 2, "rest": ["x", "y"]},
    ),
    "keyword": (("Paris",), {"n": 3}, {"city": "Paris", "n": 3}),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("kind", matrix.CAPTURING_BY_DEFAULT)
async def test_agent_and_tool_capture_input_and_output_by_default(
    captured: CapturedSpans, kind: str, shape: str, call: str
) -> None:
    """@agent/@tool record arguments bound by name (no self/cls, *args kept) and the result."""
    args, kwargs, expected_input = CALLS[call]
    built = matrix.build(shape, matrix.deco_for(kind))
    result = await matrix.invoke(kind, built, *args, **kwargs)

    attrs = captured.by_name("work")["attributes"]
    assert json.loads(attrs[sc.INPUT_VALUE]) == expected_input
    assert attrs[sc.INPUT_VALUE] == attrs[sc.INPUT_VALUE]
    assert attrs[sc.INPUT_MIME_TYPE] == "application/json"
    assert attrs[sc.INPUT_MIME_TYPE] == "application/json"
    assert json.loads(attrs[sc.OUTPUT_VALUE]) == result
    assert attrs[sc.OUTPUT_VALUE] == attrs[sc.OUTPUT_VALUE]
    assert attrs[sc.OUTPUT_MIME_TYPE] == "application/json"
    if kind == "tool":
        assert attrs[sc.GEN_AI_TOOL_CALL_ARGUMENTS] == attrs[sc.INPUT_VALUE]
        assert attrs[sc.GEN_AI_TOOL_CALL_RESULT] == attrs[sc.OUTPUT_VALUE]
    else:
        assert sc.GEN_AI_TOOL_CALL_ARGUMENTS not in attrs


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("kind", ["trace", "task", "retrieval", "llm"])
async def test_trace_span_task_capture_nothing_by_default(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """@trace, @span and @task record no input or output unless asked to."""
    built = matrix.build(shape, matrix.deco_for(kind))
    await matrix.invoke(kind, built, "Paris", 2)

    attrs = captured.by_name("work")["attributes"]
    for key in PAYLOAD_KEYS:
        assert key not in attrs


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("kind", ["task", "retrieval", "llm"])
async def test_span_and_task_capture_when_asked(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """record_input/record_output=True on @span/@task record the bound arguments and result."""
    built = matrix.build(shape, matrix.deco_for(kind, record_input=True, record_output=True))
    result = await matrix.invoke(kind, built, "Paris", 2, "x")

    attrs = captured.by_name("work")["attributes"]
    assert json.loads(attrs[sc.INPUT_VALUE]) == {"city": "Paris", "n": 2, "rest": ["x"]}
    assert attrs[sc.INPUT_VALUE] == attrs[sc.INPUT_VALUE]
    assert attrs[sc.INPUT_MIME_TYPE] == "application/json"
    assert json.loads(attrs[sc.OUTPUT_VALUE]) == result
    assert attrs[sc.OUTPUT_VALUE] == attrs[sc.OUTPUT_VALUE]


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("kind", matrix.CAPTURING_BY_DEFAULT)
async def test_agent_and_tool_capture_can_be_switched_off(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """capture_input/capture_output=False (agent) and record_*=False (tool) record nothing."""
    options = (
        {"capture_input": False, "capture_output": False}
        if kind == "agent"
        else {"record_input": False, "record_output": False}
    )
    built = matrix.build(shape, matrix.deco_for(kind, **options))
    await matrix.invoke(kind, built, "Paris", 2)

    attrs = captured.by_name("work")["attributes"]
    for key in PAYLOAD_KEYS:
        assert key not in attrs


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
async def test_string_output_is_text_plain(captured: CapturedSpans, shape: str) -> None:
    """A str result is recorded as itself with mime type text/plain."""
    built = matrix.build(shape, rollout.tool(), lambda city, n, rest: f"sunny in {city}")
    await matrix.invoke("tool", built, "Paris")

    attrs = captured.by_name("work")["attributes"]
    mode = matrix.SHAPES[shape][0]
    if mode in ("gen", "agen"):
        assert json.loads(attrs[sc.OUTPUT_VALUE]) == ["Paris", "sunny in Paris"]
    else:
        assert attrs[sc.OUTPUT_VALUE] == "sunny in Paris"
        assert attrs[sc.OUTPUT_MIME_TYPE] == "text/plain"


# == return values ==========================================================================


@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
@pytest.mark.parametrize("kind", matrix.KINDS)
async def test_return_value_passes_through_untouched(
    captured: CapturedSpans, kind: str, shape: str
) -> None:
    """The wrapped function's return value (or yielded item) is the very same object."""

    class Opaque:
        def __repr__(self) -> str:
            return "Opaque()"

    obj = Opaque()
    built = matrix.build(
        shape, matrix.deco_for(kind, **matrix.capture_on(kind)), lambda city, n, rest: obj
    )
    result = await matrix.invoke(kind, built, "Paris")

    if built.mode in ("gen", "agen"):
        assert result[0] == "Paris"
        assert result[1] is obj
    else:
        assert result is obj
    assert len(matrix.named(captured, "work")) == 1


# == @agent options =========================================================================


CONTEXT_KEYS: dict[str, str] = {
    sc.ROLLOUT_USER_ID: "u-1",
    sc.USER_ID: "u-1",
    sc.ROLLOUT_SESSION_ID: "s-1",
    sc.SESSION_ID: "s-1",
    sc.ROLLOUT_CONVERSATION_ID: "c-1",
    sc.GEN_AI_CONVERSATION_ID: "c-1",
}


@pytest.mark.parametrize("agent_name", ["support", None])
@pytest.mark.parametrize("shape", matrix.ALL_SHAPES)
async def test_agent_options_reach_agent_span_and_children(
    captured: CapturedSpans, shape: str, agent_name: str | None
) -> None:
    """user/session/conversation ids and the agent name land on the agent span and children."""

    @rollout.tool("lookup")
    def lookup(q: str) -> str:
        return q

    @rollout.task("step")
    def step() -> int:
        return 1

    def body(city: str, n: int, rest: tuple[Any, ...]) -> Any:
        step()
        return lookup(city)

    deco = rollout.agent(
        agent_name,
        user_id="u-1",
        session_id="s-1",
        conversation_id="c-1",
        attributes={"k": "v"},
        external_trace_id="ext-1",
    )
    built = matrix.build(shape, deco, body)
    await matrix.invoke("agent", built, "Paris")

    expected_name = agent_name or "work"
    agent_span = captured.by_name(expected_name)
    attrs = agent_span["attributes"]
    assert agent_span["name"] == f"invoke_agent {expected_name}"
    assert attrs[f"{sc.ROLLOUT_ATTRIBUTES}.k"] == "v"
    assert attrs[sc.ROLLOUT_TRACE_EXTERNAL_ID] == "ext-1"
    children = [captured.by_name("lookup"), captured.by_name("step")]
    for span in [agent_span, *children]:
        for key, value in CONTEXT_KEYS.items():
            assert span["attributes"][key] == value, (span["name"], key)
        assert span["attributes"][sc.ROLLOUT_AGENT_NAME] == expected_name
        assert span["attributes"][sc.GEN_AI_AGENT_NAME] == expected_name
    for child in children:
        assert child["parent_id"] == agent_span["span_id"]
        assert child["trace_id"] == agent_span["trace_id"]


async def test_agent_without_options_sets_no_context_ids(captured: CapturedSpans) -> None:
    """An @agent with no user/session/conversation records none of those keys."""

    @rollout.agent
    def work() -> str:
        return "ok"

    work()
    attrs = captured.by_name("work")["attributes"]
    for key in CONTEXT_KEYS:
        assert key not in attrs
    assert sc.ROLLOUT_TRACE_EXTERNAL_ID not in attrs


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_function_named_like_its_type_keeps_its_name_in_the_span_name(
    captured: CapturedSpans, mode: str
) -> None:
    """`invoke_agent agent`, `execute_tool tool`; an unnamed retrieval span stays `retrieval`."""

    @rollout.tool
    def tool(x: int) -> int:
        return x

    @rollout.agent
    def agent(x: int) -> int:
        with rollout.span("retrieval"):
            return tool(x)

    @rollout.tool("tool")
    async def atool(x: int) -> int:
        return x

    @rollout.agent("agent")
    async def aagent(x: int) -> int:
        async with rollout.span("retrieval"):
            return await atool(x)

    assert (await aagent(3) if mode == "async" else agent(3)) == 3
    names = sorted(s["name"] for s in captured.as_dicts())
    assert names == ["execute_tool tool", "invoke_agent agent", "retrieval"]

"""Each captured payload once per enabled convention (`semconv` / `ROLLOUT_SEMCONV`).

The keys come from the generated table `semconv.PAYLOAD_MIRRORS`: every key a span
carries is either a payload key of an enabled convention for that span's type (or the
`rollout.*` fallback where none has one), or another registered key.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.base._config import SEMCONV_NAMES, resolve_config
from mv37.rollout.testing import CapturedSpans, capture_spans

if TYPE_CHECKING:
    from tests.helpers import MODES, entered
else:
    from helpers import MODES, entered

SETTINGS = {"both": None, "genai": "genai", "openinference": "openinference"}
CHAT = [{"role": "user", "content": "Weather in Paris?"}]
PAYLOAD_KEYS = {key for *_, key, _spans in sc.PAYLOAD_MIRRORS}
TEMPLATES = {key for _c, _d, form, key, _s in sc.PAYLOAD_MIRRORS if form == "flattened_messages"}


def _payload_key(key: str) -> str | None:
    """The table key `key` belongs to (a flattened template's prefix), if any."""
    if key in PAYLOAD_KEYS:
        return key
    return next((t for t in TEMPLATES if key.startswith(t + ".")), None)


def _allowed(span_type: str, conventions: tuple[str, ...]) -> set[str]:
    """The payload keys of the table for `span_type` under `conventions` (with fallback)."""
    allowed: set[str] = set()
    for direction in ("input", "output"):
        rows = [
            (c, form, key)
            for c, d, form, key, spans in sc.PAYLOAD_MIRRORS
            if d == direction and (span_type in spans or "*" in spans)
        ]
        enabled = {(form, key) for c, form, key in rows if c in conventions}
        carriers = {"text", "messages", "flattened_messages"}
        if not any(form in carriers for form, _ in enabled):
            enabled |= {(form, key) for c, form, key in rows if c == "rollout"}
        allowed |= {key for _, key in enabled}
    return allowed


async def _run(mode: str) -> None:
    @rollout.tool
    def lookup(city: str) -> dict[str, Any]:
        return {"city": city, "temp": 21}

    @rollout.tool
    async def alookup(city: str) -> dict[str, Any]:
        return {"city": city, "temp": 21}

    @rollout.agent
    async def agent(question: str) -> str:
        trace = rollout.current_trace()
        assert trace is not None
        async with entered(trace.llm("answer", model="m1"), mode) as llm:
            llm.record_input(CHAT)
            llm.record_output("It is 21C.")
        if mode == "sync":
            lookup("Paris")
        else:
            await alookup("Paris")
        async with entered(trace.span("task", name="step"), mode) as step:
            step.record_input({"n": 1})
            step.record_output([1, 2])
        return "It is 21C."

    await agent("Weather in Paris?")


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("mode", MODES)
async def test_every_key_comes_from_the_table_or_the_registry(
    monkeypatch: pytest.MonkeyPatch, setting: str, mode: str
) -> None:
    if SETTINGS[setting] is not None:
        monkeypatch.setenv("ROLLOUT_SEMCONV", str(SETTINGS[setting]))
    conventions = SEMCONV_NAMES if SETTINGS[setting] is None else (setting,)
    with capture_spans() as captured:
        await _run(mode)
    spans = captured.as_dicts()
    assert {s["type"] for s in spans} == {"agent", "llm", "tool", "task"}
    for span in spans:
        allowed = _allowed(span["type"], conventions)
        carried = set()
        for key in span["attributes"]:
            assert sc.is_registered_attribute(key), key
            table_key = _payload_key(key)
            if table_key is not None:
                assert table_key in allowed, (span["type"], setting, key)
                carried.add(table_key)
        # Each direction recorded is there under every enabled convention's carrier key.
        carriers = {k for k in allowed if not k.endswith("mime_type")}
        carriers -= {sc.GEN_AI_SYSTEM_INSTRUCTIONS, sc.GEN_AI_TOOL_DEFINITIONS, "llm.tools"}
        assert carriers <= carried, (span["type"], setting, carriers - carried)


@pytest.mark.parametrize("mode", MODES)
async def test_genai_only_writes_each_tool_payload_once(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("ROLLOUT_SEMCONV", "genai")
    with capture_spans() as captured:
        await _run(mode)
    tool = captured.by_name("execute_tool " + ("lookup" if mode == "sync" else "alookup"))
    attrs = tool["attributes"]
    assert json.loads(attrs[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"city": "Paris"}
    assert json.loads(attrs[sc.GEN_AI_TOOL_CALL_RESULT]) == {"city": "Paris", "temp": 21}
    for key in (sc.INPUT_VALUE, sc.OUTPUT_VALUE, sc.ROLLOUT_INPUT, sc.ROLLOUT_OUTPUT):
        assert key not in attrs
    # A task has no GenAI payload key: it keeps ours.
    step = captured.by_name("step")["attributes"]
    assert json.loads(step[sc.ROLLOUT_INPUT]) == {"n": 1}
    assert step[sc.ROLLOUT_INPUT_MIME_TYPE] == "application/json"
    assert sc.INPUT_VALUE not in step
    # An agent span has no GenAI payload key either (GenAI messages are for LLM spans).
    agent = captured.by_name("invoke_agent agent")["attributes"]
    assert json.loads(agent[sc.ROLLOUT_INPUT]) == {"question": "Weather in Paris?"}
    assert agent[sc.ROLLOUT_OUTPUT] == "It is 21C."
    assert sc.GEN_AI_INPUT_MESSAGES not in agent
    assert sc.INPUT_VALUE not in agent


@pytest.mark.parametrize("mode", MODES)
async def test_openinference_only_writes_each_payload_once(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("ROLLOUT_SEMCONV", "openinference")
    with capture_spans() as captured:
        await _run(mode)
    for span in captured.as_dicts():
        attrs = span["attributes"]
        assert sc.INPUT_VALUE in attrs, span["name"]
        for key in (
            sc.GEN_AI_TOOL_CALL_ARGUMENTS,
            sc.GEN_AI_INPUT_MESSAGES,
            sc.GEN_AI_OUTPUT_MESSAGES,
            sc.ROLLOUT_INPUT,
            sc.ROLLOUT_OUTPUT,
        ):
            assert key not in attrs, (span["name"], key)
    llm = captured.by_name("chat m1")["attributes"]
    assert llm["llm.input_messages.0.message.content"] == "Weather in Paris?"
    assert llm["llm.output_messages.0.message.content"] == "It is 21C."


@pytest.mark.parametrize("mode", MODES)
async def test_default_writes_both_conventions_and_no_rollout_payload(mode: str) -> None:
    with capture_spans() as captured:
        await _run(mode)
    for span in captured.as_dicts():
        assert sc.ROLLOUT_INPUT not in span["attributes"], span["name"]
        assert sc.ROLLOUT_OUTPUT not in span["attributes"], span["name"]
    tool = captured.as_dicts()
    (tool_span,) = [s for s in tool if s["type"] == "tool"]
    attrs = tool_span["attributes"]
    assert attrs[sc.INPUT_VALUE] == attrs[sc.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"city": "Paris"}'


async def test_truncation_stays_marked_under_each_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in ("genai", "openinference"):
        monkeypatch.setenv("ROLLOUT_SEMCONV", setting)
        with capture_spans(max_payload_chars=100) as captured:
            trace = captured.client.trace("t")
            with trace, trace.tool("big", arguments={"x": "y" * 500}):
                pass
        attrs = captured.by_name("execute_tool big")["attributes"]
        assert attrs[sc.ROLLOUT_INPUT_TRUNCATED] is True
        assert attrs[sc.ROLLOUT_INPUT_ORIGINAL_LENGTH] > 500


async def test_a_truncated_llm_payload_is_still_valid_genai_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROLLOUT_SEMCONV", "genai")
    with capture_spans(max_payload_chars=100) as captured:
        trace = captured.client.trace("t")
        with trace, trace.llm("answer", model="m") as llm:
            llm.record_input({"x": "y" * 500})
    attrs = captured.by_name("chat m")["attributes"]
    (message,) = json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES])
    assert message["parts"][0]["type"] == "text"
    assert attrs[sc.ROLLOUT_INPUT_TRUNCATED] is True


def test_semconv_option_parsing() -> None:
    assert resolve_config({}).semconv == ("genai", "openinference")
    assert resolve_config({"ROLLOUT_SEMCONV": " GenAI "}).semconv == ("genai",)
    assert resolve_config({}, semconv=["openinference", "genai"]).semconv == (
        "openinference",
        "genai",
    )
    assert resolve_config({"ROLLOUT_SEMCONV": "genai"}, semconv="openinference").semconv == (
        "openinference",
    )
    with pytest.raises(ValueError, match=r"ROLLOUT_SEMCONV.*'otel'.*genai, openinference"):
        resolve_config({"ROLLOUT_SEMCONV": "genai,otel"})
    with pytest.raises(ValueError, match=r"argument semconv.*'phoenix'.*genai, openinference"):
        resolve_config({}, semconv=["phoenix"])


def test_the_option_names_the_generated_conventions() -> None:
    assert set(SEMCONV_NAMES) == set(sc.SEMCONV_CONVENTIONS)
    assert {c for c, *_ in sc.PAYLOAD_MIRRORS} == {*SEMCONV_NAMES, "rollout"}
    for _convention, _direction, _form, key, _spans in sc.PAYLOAD_MIRRORS:
        assert sc.is_registered_attribute(key) or sc.is_registered_attribute(key + ".0"), key
    # Every span type has a carrier key for each direction under each single setting.
    for span_type in ("agent", "trace", "llm", "tool", "task", "retrieval", "custom"):
        for conventions in (("genai",), ("openinference",), SEMCONV_NAMES, ()):
            allowed = _allowed(span_type, conventions)
            assert any(not k.endswith("mime_type") for k in allowed), (span_type, conventions)


def test_captured_fixture_default(captured: CapturedSpans) -> None:
    assert captured.client.config.semconv == SEMCONV_NAMES


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_wrapped_chat_completion_follows_the_setting(
    monkeypatch: pytest.MonkeyPatch, setting: str, is_async: bool
) -> None:
    """`wrap()` writes the conversation once per enabled convention, from the same table."""
    pytest.importorskip("openai")
    from mv37.rollout.integrations import wrap

    if TYPE_CHECKING:
        from tests import fake_providers as fp
    else:
        import fake_providers as fp

    if SETTINGS[setting] is not None:
        monkeypatch.setenv("ROLLOUT_SEMCONV", str(SETTINGS[setting]))
    conventions = SEMCONV_NAMES if SETTINGS[setting] is None else (setting,)
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    with capture_spans() as captured:
        client = wrap(fp.openai_client(api, is_async=is_async))
        await fp.resolve(client.chat.completions.create(model="gpt-4o", messages=CHAT))
    (llm,) = [s for s in captured.as_dicts() if s["type"] == "llm"]
    attrs = llm["attributes"]
    allowed = _allowed("llm", conventions)
    for key in attrs:
        assert sc.is_registered_attribute(key), key
        table_key = _payload_key(key)
        assert table_key is None or table_key in allowed, (setting, key)
    genai = "genai" in conventions
    openinference = "openinference" in conventions
    assert (sc.GEN_AI_INPUT_MESSAGES in attrs) is genai
    assert (sc.GEN_AI_OUTPUT_MESSAGES in attrs) is genai
    assert (sc.INPUT_VALUE in attrs) is openinference
    assert ("llm.input_messages.0.message.content" in attrs) is openinference
    assert ("llm.output_messages.0.message.role" in attrs) is openinference
    assert sc.ROLLOUT_INPUT not in attrs
    assert sc.ROLLOUT_OUTPUT not in attrs

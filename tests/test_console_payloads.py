"""The console tree shows inputs and outputs whichever conventions carry them, on their
own lines under the span, and leaves out what a function without arguments or return
value records (input `{}`, output `null`)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout

SETTINGS: list[list[str]] = [["genai", "openinference"], ["genai"], ["openinference"], []]


@pytest.fixture(autouse=True)
def _width(monkeypatch: pytest.MonkeyPatch) -> None:
    """stderr under capsys is not a terminal: 100 columns from COLUMNS, no colour."""
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


def _block(err: str, marker: str) -> list[str]:
    """The line containing `marker` and the payload lines right under it."""
    lines = err.splitlines()
    start = next(i for i, line in enumerate(lines) if marker in line)
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if line.lstrip("│ ").startswith(("in  ", "out ", "err ", "trace ")):
            block.append(line)
        else:
            break
    return block


@pytest.mark.parametrize("semconv", SETTINGS, ids=lambda s: "+".join(s) or "rollout-only")
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_tool_and_agent_lines_show_in_and_out(
    capsys: pytest.CaptureFixture[str], semconv: list[str], mode: str
) -> None:
    """Under every `semconv` setting, the tool and agent print their payloads under them."""
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
    tool = _block(err, "get_weather")
    assert tool[0].startswith("└─ execute_tool get_weather  [tool]  ")
    assert tool[0].endswith("  ok")
    assert tool[1:] == [
        '     in  {"city": "Paris"}',
        '     out {"city": "Paris", "temp": 21}',
    ]
    agent = _block(err, "rollout ▸ support")
    assert agent[0].endswith("  ok  trace " + agent[0][-32:])
    assert agent[1:] == ['│ in  {"text": "hi"}', "│ out 21"]


@pytest.mark.parametrize("semconv", SETTINGS, ids=lambda s: "+".join(s) or "rollout-only")
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_no_arguments_and_no_return_value_print_no_payload_lines(
    capsys: pytest.CaptureFixture[str], semconv: list[str], mode: str
) -> None:
    """`in {}` and `out null` are not printed; a returned string "null" still is."""
    rollout.init(
        console=True, sync_mode=True, semconv=semconv, span_exporters=[InMemorySpanExporter()]
    )

    @rollout.tool("ping")
    def ping() -> None:
        pass

    @rollout.tool("literal")
    def literal() -> str:
        return "null"

    @rollout.agent("bare")
    def bare() -> None:
        ping()
        literal()

    @rollout.agent("bare")
    async def abare() -> None:
        ping()
        literal()

    if mode == "sync":
        bare()
    else:
        await abare()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("rollout ▸ bare  [agent]  ")
    assert lines[0].endswith("  ok  trace " + lines[0][-32:])
    assert lines[1].startswith("├─ execute_tool ping  [tool]  ")
    assert lines[2].startswith("└─ execute_tool literal  [tool]  ")
    # Shown where a mime type says it is text (OpenInference's or our own fallback's).
    typed = "openinference" in semconv or not semconv
    expected_tail = ["     out null"] if typed else []
    assert lines[3:] == expected_tail
    assert not any("in  {}" in line for line in lines)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_secret_at_the_cut_is_scrubbed_not_half_shown(
    capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """Payloads are scrubbed before they are cut: a key across the edge shows no part."""
    key = "sk-proj-" + "abcdefghij" * 4
    rollout.init()

    @rollout.tool("call_api")
    def call_api(note: str, api_key: str) -> str:
        return "ok"

    @rollout.agent("caller")
    def caller() -> str:
        return call_api("x" * 60, key)

    @rollout.agent("caller")
    async def acaller() -> str:
        return call_api("x" * 60, key)

    assert (caller() if mode == "sync" else await acaller()) == "ok"
    err = capsys.readouterr().err
    tool_in = next(line for line in err.splitlines() if line.lstrip(" │").startswith("in  {"))
    assert tool_in == '     in  {"note": "' + "x" * 60 + '", "api_key": "[REDA…'
    assert "sk-" not in err

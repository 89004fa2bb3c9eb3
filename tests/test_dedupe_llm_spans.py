"""One usage-carrying span per LLM call, with other instrumentations of the same call.

Real instrumentors (OpenInference's and OpenLLMetry's `OpenAIInstrumentor`, the OTel
contrib `openai-v2` one) and the `anthropic` SDK's own tracing, over the fake transports
of `fake_providers`. With `dedupe_llm_spans` on (the default) a wrapped call exports
exactly one span carrying `gen_ai.usage.*`/`llm.token_count.*` (ours), HTTP client spans
still appear under it, and the trace totals count the call once; off, both spans are
exported and the totals still count it once. Without `wrap()`, the instrumentors' LLM
spans roll up into the trace's totals and show in the console tree as `[llm]`.
"""

from __future__ import annotations

import pytest

pytest.importorskip("openai", reason="needs the openai extra: pip install 'mv37-rollout[openai]'")
pytest.importorskip(
    "anthropic", reason="needs the anthropic extra: pip install 'mv37-rollout[anthropic]'"
)

import contextlib
import gc
import sys
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.integrations import wrap
from mv37.rollout.testing import CapturedSpans, capture_spans

if TYPE_CHECKING:
    from tests import fake_providers as fp
else:
    import fake_providers as fp

KINDS = pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
DEDUPE = pytest.mark.parametrize("dedupe", [True, False], ids=["dedupe", "both"])
CASES = pytest.mark.parametrize("case", ["message", "stream", "abandoned"])
OPENAI_USAGE = {"message": (1117, 46), "stream": (1117, 7), "abandoned": None}
# An abandoned Anthropic stream has read `message_start`, which carries usage.
ANTHROPIC_USAGE = {"message": (4225, 12), "stream": (3025, 12), "abandoned": (3025, 1)}
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
ANTHROPIC_SCOPE = "com.anthropic.sdk.python"


def _openinference() -> Any:
    return pytest.importorskip("openinference.instrumentation.openai").OpenAIInstrumentor()


def _openllmetry() -> Any:
    return pytest.importorskip("opentelemetry.instrumentation.openai").OpenAIInstrumentor()


def _contrib() -> Any:
    return pytest.importorskip("opentelemetry.instrumentation.openai_v2").OpenAIInstrumentor()


INSTRUMENTORS = {"openinference": _openinference, "openllmetry": _openllmetry, "contrib": _contrib}
FOREIGN_SCOPES = {
    "openinference": "openinference.instrumentation.openai",
    "openllmetry": "opentelemetry.instrumentation.openai.v1",
    "contrib": "opentelemetry.instrumentation.openai_v2",
}


@pytest.fixture(params=sorted(INSTRUMENTORS))
def instrumentor(request: pytest.FixtureRequest) -> str:
    """One real OpenAI instrumentor, on the global provider the test's client installs."""
    return str(request.param)


def instrumented(name: str) -> Any:
    # OpenLLMetry's modules use pydantic's class-based config, deprecated since pydantic 2.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        inst = INSTRUMENTORS[name]()
        inst.instrument(tracer_provider=rollout.get_client().tracer_provider)
    return inst


@contextlib.contextmanager
def instrumenting(*names: str) -> Iterator[None]:
    """The block runs with these instrumentors on (the current client's provider)."""
    instrumentors = [instrumented(name) for name in names]
    try:
        yield
    finally:
        for inst in reversed(instrumentors):
            uninstrument(inst)


def uninstrument(inst: Any) -> None:
    """`inst.uninstrument()`, and what OpenLLMetry's leaves behind: after its 0.62.4
    release's `uninstrument()` wrappers stay (`Completions.create`, `Responses.create`),
    so each test's `instrument()` would stack more, tracing into that test's (then shut
    down) provider and into later test modules."""
    inst.uninstrument()
    unwrapped_openai()


def unwrapped_openai() -> None:
    """Strip every wrapt wrapper left on the classes of the `openai` package."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("openai.") or module is None:
            continue
        for cls in list(vars(module).values()):
            if not isinstance(cls, type) or not cls.__module__.startswith("openai."):
                continue
            for attr, value in list(vars(cls).items()):
                original = value
                while hasattr(original, "_self_wrapper"):  # a wrapt wrapper
                    original = original.__wrapped__
                if original is not value:
                    setattr(cls, attr, original)


def has_usage(span: dict[str, Any]) -> bool:
    return any(k.startswith(("gen_ai.usage.", "llm.token_count.")) for k in span["attributes"])


def usage_spans(captured: CapturedSpans) -> list[dict[str, Any]]:
    return [s for s in captured.as_dicts() if has_usage(s)]


def totals(span: dict[str, Any]) -> tuple[Any, Any]:
    attrs = span["attributes"]
    return attrs.get(sc.ROLLOUT_USAGE_INPUT_TOKENS), attrs.get(sc.ROLLOUT_USAGE_OUTPUT_TOKENS)


def http_instrumented(client: Any) -> Any:
    """Instrument the client's own HTTP client (httpx for OpenAI, httpx2 for Anthropic)."""
    http = client._client
    if "httpx2" in type(http).__module__:
        HTTPX2ClientInstrumentor.instrument_client(http)
    else:
        HTTPXClientInstrumentor.instrument_client(http)
    return client


async def read(stream: Any, is_async: bool, limit: int | None) -> None:
    """Read a stream the way its method was called (another instrumentation's proxy of
    it may claim both `__iter__` and `__aiter__`)."""
    count = 0
    if is_async:
        async for _ in stream:
            count += 1
            if count == limit:
                break
    else:
        for _ in stream:
            count += 1
            if count == limit:
                break


async def openai_call(client: Any, case: str, is_async: bool) -> None:
    kwargs: dict[str, Any] = {"model": "gpt-4o", "messages": MESSAGES}
    if case == "message":
        await fp.resolve(client.chat.completions.create(**kwargs))
        return
    kwargs.update(stream=True, stream_options={"include_usage": True})
    stream = await fp.resolve(client.chat.completions.create(**kwargs))
    await read(stream, is_async, 2 if case == "abandoned" else None)
    del stream  # abandoned half-read: its span ends when it is collected
    gc.collect()


async def anthropic_call(client: Any, case: str, is_async: bool) -> None:
    kwargs: dict[str, Any] = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": MESSAGES}
    if case == "message":
        await fp.resolve(client.messages.create(**kwargs))
        return
    stream = await fp.resolve(client.messages.create(stream=True, **kwargs))
    await read(stream, is_async, 2 if case == "abandoned" else None)
    if case == "abandoned":
        await fp.close(stream)


# -- two instrumentors of one call -----------------------------------------------------


async def test_two_instrumentors_of_one_call_count_once() -> None:
    """OpenInference and the contrib instrumentor both tracing one unwrapped call: the
    innermost span with usage counts, its ancestor does not."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    unwrapped_openai()
    with capture_spans() as captured:
        with instrumenting("contrib", "openinference"):
            client = fp.openai_client(api, is_async=False)
            with rollout.trace("agent"):
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert len(usage_spans(captured)) == 2
        trace = captured.by_name("invoke_workflow agent")
    assert totals(trace) == (1117, 46)


# -- wrap() next to the OpenAI instrumentors ----------------------------------------------


@KINDS
@CASES
@DEDUPE
async def test_openai_one_usage_span_per_call(
    instrumentor: str, case: str, dedupe: bool, is_async: bool
) -> None:
    """Dedupe on: ours is the only span with usage; off: the instrumentor's too. The
    trace totals count the call once either way; HTTP client spans nest under ours."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json" if case == "message" else "openai_chat_stream.sse")
    with capture_spans(dedupe_llm_spans=dedupe) as captured:
        with instrumenting(instrumentor):
            client = wrap(http_instrumented(fp.openai_client(api, is_async=is_async)))
            with rollout.trace("agent"):
                await openai_call(client, case, is_async)
        spans = captured.as_dicts()
    ours = [s for s in spans if s["type"] == "llm"]
    assert len(ours) == 1
    llm = ours[0]
    foreign = [s for s in spans if s["scope"] == FOREIGN_SCOPES[instrumentor]]
    http = [s for s in spans if s["scope"] == "opentelemetry.instrumentation.httpx"]
    assert len(http) == 1
    if dedupe:
        assert foreign == []
        assert http[0]["parent_id"] == llm["span_id"]
    elif case != "abandoned":  # an abandoned stream's span may never end (contrib)
        assert len(foreign) == 1
        assert foreign[0]["parent_id"] == llm["span_id"]
    expected = OPENAI_USAGE[case]
    trace = captured.by_name("invoke_workflow agent")
    if expected is None:  # abandoned before the usage chunk: nobody has usage
        assert totals(trace) == (None, None)
        return
    assert totals(llm) == expected
    carrying = [s["scope"] for s in usage_spans(captured)]
    assert carrying.count("mv37.rollout") == 1
    assert len(carrying) == (1 if dedupe else 2)
    assert totals(trace) == expected


@KINDS
async def test_openai_unwrapped_client_keeps_its_instrumentor_span(
    instrumentor: str, is_async: bool
) -> None:
    """The user's own unwrapped client is untouched: the instrumentor still traces it,
    even with a wrapped client of the same class in use."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json", times=2)
    with capture_spans() as captured:
        with instrumenting(instrumentor):
            wrapped = wrap(fp.openai_client(api, is_async=is_async))
            plain = fp.openai_client(api, is_async=is_async)
            with rollout.trace("agent"):
                await fp.resolve(wrapped.chat.completions.create(model="m", messages=MESSAGES))
                await fp.resolve(plain.chat.completions.create(model="m", messages=MESSAGES))
        foreign = [s for s in captured.as_dicts() if s["scope"] == FOREIGN_SCOPES[instrumentor]]
        trace = captured.by_name("invoke_workflow agent")
    assert len(foreign) == 1
    assert totals(trace) == (2 * 1117, 2 * 46)


# -- anthropic's own tracing -------------------------------------------------------------


@KINDS
@CASES
@DEDUPE
async def test_anthropic_native_span_only_when_asked(
    case: str, dedupe: bool, is_async: bool
) -> None:
    """The SDK's own span is not exported for a wrapped call (dedupe on), yet the request
    still carries trace context, now naming our span; off, both spans are exported.
    HTTP client spans (httpx2 instrumented) still appear, and totals count the call once."""
    api = fp.FakeAPI()
    api.reply("anthropic_message.json" if case == "message" else "anthropic_stream.sse")
    with capture_spans(dedupe_llm_spans=dedupe) as captured:
        client = wrap(http_instrumented(fp.anthropic_client(api, is_async=is_async)))
        with rollout.trace("agent"):
            await anthropic_call(client, case, is_async)
        gc.collect()
        spans = captured.as_dicts()
        trace = captured.by_name("invoke_workflow agent")
    llm = next(s for s in spans if s["type"] == "llm")
    native = [s for s in spans if s["scope"] == ANTHROPIC_SCOPE]
    http = [s for s in spans if s["scope"] == "opentelemetry.instrumentation.httpx"]
    assert len(http) == 1
    # the HTTP instrumentation sends its own span's context, a child of the call's span
    assert api.requests[0].headers["traceparent"].split("-")[2] == http[0]["span_id"]
    if dedupe:
        assert native == []
        assert http[0]["parent_id"] == llm["span_id"]
    else:
        assert len(native) == 1
        assert native[0]["parent_id"] == llm["span_id"]
        assert http[0]["parent_id"] == native[0]["span_id"]
    expected = ANTHROPIC_USAGE[case]
    assert totals(llm) == expected
    carrying = [s["scope"] for s in usage_spans(captured)]
    assert carrying.count("mv37.rollout") == 1
    if dedupe or case != "abandoned":
        assert len(carrying) == (1 if dedupe else 2)
    assert totals(trace) == expected


@KINDS
async def test_anthropic_helper_stream_and_unwrapped_client(is_async: bool) -> None:
    """`messages.stream(...)` of a wrapped client has no native span; an unwrapped client
    of the same class keeps its own, and its propagation is its own."""
    api = fp.FakeAPI()
    api.reply("anthropic_stream.sse")
    api.reply("anthropic_message.json")
    with capture_spans() as captured:
        client = wrap(fp.anthropic_client(api, is_async=is_async))
        plain = fp.anthropic_client(api, is_async=is_async)
        kwargs: dict[str, Any] = {"model": "claude", "max_tokens": 64, "messages": MESSAGES}
        with rollout.trace("agent"):
            manager = client.messages.stream(**kwargs)
            if is_async:
                async with manager as stream:
                    await stream.get_final_message()
            else:
                with manager as stream:
                    stream.get_final_message()
            await fp.resolve(plain.messages.create(**kwargs))
        native = [s for s in captured.as_dicts() if s["scope"] == ANTHROPIC_SCOPE]
        llm = next(s for s in captured.as_dicts() if s["type"] == "llm")
        trace = captured.by_name("invoke_workflow agent")
    assert len(native) == 1
    # propagation stays on for the wrapped client: its request names our span
    assert api.requests[0].headers["traceparent"].split("-")[2] == llm["span_id"]
    assert api.requests[1].headers["traceparent"].split("-")[2] == native[0]["span_id"]
    # the helper stream through ours, the unwrapped call through the native span's usage
    assert totals(trace) == (3025 + 4225, 12 + 12)


async def test_anthropic_copies_of_a_wrapped_client_dedupe_too() -> None:
    """`with_options(...)` of a wrapped client is wrapped, its native tracer included."""
    api = fp.FakeAPI()
    api.reply("anthropic_message.json")
    with capture_spans() as captured:
        client = wrap(fp.anthropic_client(api, is_async=False)).with_options(timeout=5)
        client.messages.create(model="claude", max_tokens=64, messages=MESSAGES)
        scopes = [s["scope"] for s in captured.as_dicts()]
    assert ANTHROPIC_SCOPE not in scopes


# -- the other direction: no wrap(), the instrumentor's spans in our traces ---------------


@KINDS
async def test_foreign_llm_spans_roll_up_once(instrumentor: str, is_async: bool) -> None:
    """Without `wrap()`, the instrumentor's LLM span is in our trace and its usage is the
    trace's `rollout.usage.*`, counted once (message and stream)."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    api.reply("openai_chat_stream.sse")
    with capture_spans() as captured:
        with instrumenting(instrumentor):
            client = fp.openai_client(api, is_async=is_async)
            with rollout.trace("agent"):
                await openai_call(client, "message", is_async)
                await openai_call(client, "stream", is_async)
        trace = captured.by_name("invoke_workflow agent")
        foreign = [s for s in captured.as_dicts() if s["scope"] == FOREIGN_SCOPES[instrumentor]]
    assert len(foreign) == 2
    assert {s["trace_id"] for s in foreign} == {trace["trace_id"]}
    assert totals(trace) == (1117 + 1117, 46 + 7)


def test_console_shows_foreign_llm_spans(capsys: pytest.CaptureFixture[str]) -> None:
    """The console tree shows an instrumentor's LLM span as an `[llm]` line with tokens."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    rollout.init(console=True, sync_mode=True)
    with instrumenting("openllmetry"):
        client = fp.openai_client(api, is_async=False)
        with rollout.trace("agent"):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    text = capsys.readouterr().err
    line = next(line for line in text.splitlines() if "openai.chat" in line)
    assert "[llm]" in line
    assert "1117→46" in line


async def _our_llm_span(case: str, is_async: bool, *, native: bool) -> dict[str, Any]:
    """Our span for one wrapped Anthropic call, with the SDK's own tracing on or off."""
    api = fp.FakeAPI()
    api.reply(
        "anthropic_message.json" if case == "message" else "anthropic_stream.sse",
        headers={"request-id": "req_0123456789"},
    )
    with capture_spans() as captured:
        client = fp.anthropic_client(api, is_async=is_async)
        if not native:
            client = client.with_options(open_telemetry={"traces": False})
        client = wrap(client)
        with rollout.trace("agent"):
            await anthropic_call(client, case, is_async)
        spans = captured.as_dicts()
    assert [s for s in spans if s["scope"] == ANTHROPIC_SCOPE] == []
    return next(s for s in spans if s["type"] == "llm")


@KINDS
@pytest.mark.parametrize("case", ["message", "stream"])
async def test_anthropic_native_facts_land_on_our_span(case: str, is_async: bool) -> None:
    """Dedupe on: what the SDK's own span would have added (its request id, the HTTP
    status, the server) is on ours instead, for the keys ours lacks. Every value ours had
    without the SDK's tracing stays as it was, and nothing else comes along."""
    plain = await _our_llm_span(case, is_async, native=False)
    llm = await _our_llm_span(case, is_async, native=True)
    attrs = llm["attributes"]
    assert totals(llm) == ANTHROPIC_USAGE[case]
    ignored = {sc.ROLLOUT_LLM_TIME_TO_FIRST_CHUNK, sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK}
    for key, value in plain["attributes"].items():
        if key not in ignored:
            assert attrs[key] == value, key
    added = {k: v for k, v in attrs.items() if k not in plain["attributes"]}
    assert added == {
        sc.ANTHROPIC_REQUEST_ID: "req_0123456789",
        sc.HTTP_RESPONSE_STATUS_CODE: 200,
        sc.SERVER_ADDRESS: "fake.anthropic.test",
        sc.SERVER_PORT: 443,
    }

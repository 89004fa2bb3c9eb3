"""`wrap()` on OpenAI clients: provider errors, capture switches and options, which clients
and objects it accepts, what it touches, and that instrumentation never breaks the call.

Every test runs the real `openai` SDK against `fake_providers.FakeAPI` (or a duck-typed
gateway); assertions are on the exported spans and on what the caller gets back.
"""

from __future__ import annotations

import pytest

pytest.importorskip("openai", reason="needs the openai extra: pip install 'mv37-rollout[openai]'")

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import openai

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.base import _diagnostics
from mv37.rollout.integrations import MissingExtraError, UnsupportedIntegrationError, wrap
from mv37.rollout.integrations._openai import ChatCompletions
from mv37.rollout.testing import CapturedSpans, capture_spans

if TYPE_CHECKING:
    from tests import fake_providers as fp
    from tests.openai_helpers import CHAT_ID, CHAT_MESSAGES, KINDS, llm_spans, one_llm
else:
    import fake_providers as fp
    from openai_helpers import CHAT_ID, CHAT_MESSAGES, KINDS, llm_spans, one_llm


# -- errors ----------------------------------------------------------------------------------


@KINDS
@pytest.mark.parametrize("stream", [False, True], ids=["response", "stream"])
@pytest.mark.parametrize(
    ("status", "error_type", "fixture"),
    [
        (429, openai.RateLimitError, "openai_error_429.json"),
        (500, openai.InternalServerError, "openai_error_500.json"),
    ],
    ids=["429", "500"],
)
async def test_provider_errors_propagate_unchanged_and_mark_the_span(
    captured: CapturedSpans,
    is_async: bool,
    stream: bool,
    status: int,
    error_type: type[openai.APIStatusError],
    fixture: str,
) -> None:
    """A 429 or 500 raises the SDK's own exception; the llm span and its trace are ERROR."""
    api = fp.FakeAPI()
    api.reply(fixture, status=status)
    client = wrap(fp.openai_client(api, is_async=is_async))

    with pytest.raises(error_type) as caught:
        await fp.resolve(
            client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES, stream=stream)
        )

    assert type(caught.value) is error_type
    assert caught.value.status_code == status
    spans = [s for s in captured.as_dicts() if s["scope"] == "mv37.rollout"]
    assert [(s["type"], s["status"]) for s in spans] == [("llm", "ERROR"), ("trace", "ERROR")]
    llm = spans[0]
    assert llm["attributes"][sc.ERROR_TYPE] == error_type.__name__
    assert [e["name"] for e in llm["events"]] == ["exception"]
    assert sc.OUTPUT_VALUE not in llm["attributes"]


@KINDS
async def test_error_inside_a_trace_propagates_to_the_caller(
    captured: CapturedSpans, is_async: bool
) -> None:
    """The exception is the very object the SDK raised; the enclosing trace records it too."""
    api = fp.FakeAPI()
    api.reply("openai_error_429.json", status=429)
    client = wrap(fp.openai_client(api, is_async=is_async))

    with pytest.raises(openai.RateLimitError), rollout.trace("agent"):
        await fp.resolve(client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES))

    spans = [s for s in captured.as_dicts() if s["scope"] == "mv37.rollout"]
    assert [(s["type"], s["status"]) for s in spans] == [("llm", "ERROR"), ("trace", "ERROR")]


# -- capture switches, options, clients ------------------------------------------------------


@KINDS
async def test_no_message_content_when_content_capture_is_off(is_async: bool) -> None:
    """`capture_content=False`: no messages, input, output or preview; usage and ids stay."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    api.reply("openai_chat_stream.sse")
    with capture_spans(capture_content=False) as captured:
        client = wrap(fp.openai_client(api, is_async=is_async))
        await fp.resolve(
            client.chat.completions.create(
                model="gpt-4o",
                messages=CHAT_MESSAGES,
                tools=[{"type": "function", "function": {"name": "x"}}],
            )
        )
        stream = await fp.resolve(
            client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES, stream=True)
        )
        await fp.collect(stream)
        spans = llm_spans(captured)

    assert len(spans) == 2
    content_keys = {
        sc.GEN_AI_INPUT_MESSAGES,
        sc.GEN_AI_OUTPUT_MESSAGES,
        sc.GEN_AI_SYSTEM_INSTRUCTIONS,
        sc.GEN_AI_TOOL_DEFINITIONS,
        sc.INPUT_VALUE,
        sc.OUTPUT_VALUE,
        sc.INPUT_VALUE,
        sc.OUTPUT_VALUE,
    }
    for span in spans:
        attrs = span["attributes"]
        assert not content_keys & set(attrs)
        assert not [k for k in attrs if "messages." in k]
        assert not [v for v in attrs.values() if "Paris" in str(v) or "France" in str(v)]
        assert attrs[sc.GEN_AI_RESPONSE_ID] == CHAT_ID
        assert sc.ROLLOUT_USAGE_INPUT_TOKENS in attrs or sc.ROLLOUT_LLM_STREAM in attrs
    streamed = spans[1]["attributes"]
    assert streamed[sc.ROLLOUT_LLM_STREAM_PREVIEW] == ""
    assert streamed[sc.ROLLOUT_LLM_STREAM_CHUNK_COUNT] == 7
    assert sc.ROLLOUT_LLM_TIME_TO_FIRST_CHUNK in streamed


async def test_disabled_client_calls_straight_through() -> None:
    """With the kill switch on, nothing is recorded and streams are the SDK's own objects."""
    api = fp.FakeAPI()
    api.reply("openai_chat_stream.sse")
    with capture_spans(disabled=True) as captured:
        client = wrap(fp.openai_client(api, is_async=False))
        stream = client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES, stream=True)
        assert type(stream) is openai.Stream
        assert len(list(stream)) == len(fp.sse_data("openai_chat_stream.sse"))
        assert captured.as_dicts() == []


@KINDS
async def test_attributes_option_tags_every_span(captured: CapturedSpans, is_async: bool) -> None:
    """`wrap(client, attributes=...)` puts user attributes on the llm span and its trace."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = wrap(fp.openai_client(api, is_async=is_async), attributes={"team": "search", "n": 3})

    await fp.resolve(client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES))

    spans = [s for s in captured.as_dicts() if s["scope"] == "mv37.rollout"]
    assert len(spans) == 2
    for span in spans:
        assert span["attributes"]["rollout.attributes.team"] == "search"
        assert span["attributes"]["rollout.attributes.n"] == 3


async def test_client_option_records_with_that_client(captured: CapturedSpans) -> None:
    """`wrap(client, client=other)` records with `other`, not the global client."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    other = rollout.Rollout(
        sync_mode=True, console=False, span_exporters=[exporter], install_global_provider=False
    )
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = wrap(fp.openai_client(api, is_async=False), client=other)

    client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES)

    assert captured.as_dicts() == []
    assert [s.name for s in exporter.get_finished_spans()] == [
        "chat gpt-4o",
        "invoke_workflow openai chat.completions.create",
    ]
    other.shutdown()


async def test_wrap_before_init_records_once_initialised() -> None:
    """The global client is looked up at call time: wrap first, `init()` later."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json", times=2)
    client = wrap(fp.openai_client(api, is_async=False))
    client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES)  # no provider: no-op

    with capture_spans() as captured:
        client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES)
        assert len(llm_spans(captured)) == 1


@KINDS
async def test_azure_client_names_its_provider(captured: CapturedSpans, is_async: bool) -> None:
    """`AzureOpenAI` spans name the GenAI provider `azure.ai.openai` (OpenInference: `azure`)."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = wrap(fp.openai_client(api, is_async=is_async, azure=True))

    await fp.resolve(client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES))

    attrs = one_llm(captured)["attributes"]
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert attrs[sc.LLM_PROVIDER] == "azure"
    assert api.requests[0].path == "/openai/deployments/gpt-4o/chat/completions"


@KINDS
async def test_with_options_copies_stay_wrapped(captured: CapturedSpans, is_async: bool) -> None:
    """`client.with_options(...)` of a wrapped client is a wrapped client."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = wrap(fp.openai_client(api, is_async=is_async))

    copy = client.with_options(timeout=5.0)
    await fp.resolve(copy.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES))

    assert copy is not client
    assert len(llm_spans(captured)) == 1


# -- wrap() itself ---------------------------------------------------------------------------


async def test_wrap_twice_is_a_no_op(captured: CapturedSpans) -> None:
    """A second `wrap()` returns the object unchanged: still one span per call."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = fp.openai_client(api, is_async=False)

    assert wrap(client) is client
    method = client.chat.completions.create
    assert wrap(client, attributes={"x": 1}) is client
    assert client.chat.completions.create is method
    client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES)

    assert len(llm_spans(captured)) == 1
    assert "rollout.attributes.x" not in one_llm(captured)["attributes"]


async def test_wrap_touches_only_that_object(captured: CapturedSpans) -> None:
    """Other clients, the resource classes and the module stay as they were."""
    from openai.resources.chat.completions import Completions

    original = Completions.create
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    wrap(fp.openai_client(api, is_async=False))
    other = fp.openai_client(api, is_async=False)

    other.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES)

    assert Completions.create is original
    assert captured.as_dicts() == []


@KINDS
async def test_wrapped_methods_look_like_the_originals(is_async: bool) -> None:
    """`inspect` sees the same name, signature and coroutine-function-ness after wrapping."""
    import inspect

    api = fp.FakeAPI()
    client = wrap(fp.openai_client(api, is_async=is_async))
    plain = fp.openai_client(api, is_async=is_async)

    for wrapped, original in (
        (client.chat.completions.create, plain.chat.completions.create),
        (client.responses.create, plain.responses.create),
    ):
        assert wrapped.__name__ == original.__name__ == "create"
        assert wrapped.__doc__ == original.__doc__
        assert inspect.signature(wrapped) == inspect.signature(original)
        assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(original)
    assert inspect.iscoroutinefunction(client.responses.create) is is_async


@pytest.mark.parametrize(
    "obj",
    [object(), {"chat": None}, openai.OpenAI, openai, ChatCompletions()],
    ids=["object", "dict", "class", "module", "adapter"],
)
def test_unsupported_objects_raise(obj: object) -> None:
    """Anything but a client instance raises `UnsupportedIntegrationError` (a `TypeError`)."""
    with pytest.raises(UnsupportedIntegrationError) as caught:
        wrap(obj)

    assert isinstance(caught.value, TypeError)
    message = str(caught.value)
    assert type(obj).__qualname__ in message
    assert "openai.OpenAI" in message
    assert "anthropic.AsyncAnthropic" in message


def test_unknown_provider_and_option_raise() -> None:
    """A provider name that is not an integration, or an unknown option, fails at wrap time."""
    client = fp.openai_client(fp.FakeAPI(), is_async=False)
    with pytest.raises(ValueError, match="openai, anthropic"):
        wrap(client, provider="cohere")
    with pytest.raises(TypeError, match="colour"):
        wrap(client, colour="blue")


class _DuckCompletions:
    """An OpenAI-compatible gateway's chat resource: plain dicts, a generator for streams."""

    def create(self, **kwargs: Any) -> Any:
        if kwargs.get("stream"):
            return iter(fp.sse_data("openai_chat_stream.sse"))
        return fp.fixture_json("openai_chat_completion.json")


class _AsyncDuckCompletions:
    """The same gateway, async: a coroutine, and an async generator for streams."""

    async def create(self, **kwargs: Any) -> Any:
        if kwargs.get("stream"):
            return self._events()
        return fp.fixture_json("openai_chat_completion.json")

    async def _events(self) -> AsyncIterator[Any]:
        for event in fp.sse_data("openai_chat_stream.sse"):
            yield event


class _DuckChat:
    def __init__(self, is_async: bool) -> None:
        self.completions = _AsyncDuckCompletions() if is_async else _DuckCompletions()


class GatewayClient:
    """Not an `openai.OpenAI`, but shaped like one."""

    def __init__(self, is_async: bool = False) -> None:
        self.chat = _DuckChat(is_async)


@KINDS
async def test_provider_forcing_on_a_duck_typed_gateway(
    captured: CapturedSpans, is_async: bool
) -> None:
    """`provider="openai"` instruments a compatible client of another type (dict responses)."""
    gateway = GatewayClient(is_async)
    with pytest.raises(UnsupportedIntegrationError, match="GatewayClient"):
        wrap(gateway)

    assert wrap(gateway, provider="openai") is gateway
    result = await fp.resolve(gateway.chat.completions.create(model="gpt-4o", messages=[]))
    stream = await fp.resolve(
        gateway.chat.completions.create(model="gpt-4o", messages=[], stream=True)
    )
    chunks = await fp.collect(stream)

    assert result == fp.fixture_json("openai_chat_completion.json")
    assert chunks == fp.sse_data("openai_chat_stream.sse")
    first, second = llm_spans(captured)
    assert first["attributes"][sc.ROLLOUT_USAGE_INPUT_TOKENS] == 1117
    assert first["attributes"][sc.OUTPUT_VALUE] == "The capital of France is Paris."
    assert second["attributes"][sc.ROLLOUT_LLM_STREAM_PREVIEW] == "The capital of France is Paris."
    assert second["attributes"][sc.ROLLOUT_LLM_STREAM_END_REASON] == "exhausted"
    assert second["attributes"][sc.ROLLOUT_USAGE_TOTAL_TOKENS] == 1124


async def test_raw_response_calls_are_recorded_without_response_details(
    captured: CapturedSpans,
) -> None:
    """`with_raw_response` reached after `wrap()` still works; its span has the request only."""
    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    client = wrap(fp.openai_client(api, is_async=False))

    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=CHAT_MESSAGES)

    assert raw.parse().id == CHAT_ID
    llm = one_llm(captured)
    assert llm["status"] == "UNSET"
    assert llm["attributes"][sc.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert sc.GEN_AI_RESPONSE_ID not in llm["attributes"]


def test_provider_forcing_without_any_method_raises() -> None:
    """Forcing a provider on an object with none of its methods is unsupported."""
    with pytest.raises(UnsupportedIntegrationError, match="chat.completions.create"):
        wrap(object(), provider="openai")


def test_missing_provider_package_raises_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forcing an integration whose package cannot be imported names the extra to install."""
    monkeypatch.setitem(sys.modules, "openai", None)

    with pytest.raises(MissingExtraError) as caught:
        wrap(GatewayClient(), provider="openai")

    assert isinstance(caught.value, ImportError)
    assert "pip install 'mv37-rollout[openai]'" in str(caught.value)


def test_importing_never_imports_the_provider_packages() -> None:
    """`import mv37.rollout` / `.integrations` and a failed `wrap()` import no provider SDK."""
    code = (
        "import sys\n"
        "import mv37.rollout, mv37.rollout.integrations as integrations\n"
        "try:\n"
        "    integrations.wrap(object())\n"
        "except integrations.UnsupportedIntegrationError:\n"
        "    pass\n"
        "print(sorted(m for m in ('openai', 'anthropic', 'httpx2') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert out.stdout.strip() == "[]"


# -- instrumentation never breaks the call ---------------------------------------------------


@KINDS
async def test_internal_failures_never_break_the_call(
    captured: CapturedSpans, is_async: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in reading the request or a chunk is reported once; the user's call goes on."""
    monkeypatch.delenv("MV37_ROLLOUT_RAISE_INTERNAL")
    from mv37.rollout.integrations import _openai

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("adapter bug")

    api = fp.FakeAPI()
    api.reply("openai_chat_completion.json")
    api.reply("openai_chat_stream.sse")
    client = wrap(fp.openai_client(api, is_async=is_async))

    monkeypatch.setattr(_openai.ChatCompletions, "request", broken)
    result = await fp.resolve(
        client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES)
    )
    assert result.id == CHAT_ID
    monkeypatch.undo()
    monkeypatch.delenv("MV37_ROLLOUT_RAISE_INTERNAL")

    monkeypatch.setattr(_openai.ChatAccumulator, "add", broken)
    stream = await fp.resolve(
        client.chat.completions.create(model="gpt-4o", messages=CHAT_MESSAGES, stream=True)
    )
    chunk_count = len(fp.sse_data("openai_chat_stream.sse"))
    assert len(await fp.collect(stream)) == chunk_count

    counts = _diagnostics.internal_error_counts()
    assert counts["openai chat.completions.create: start span"] == 1
    assert counts["chat.completions.create: stream chunk"] == chunk_count
    attrs = one_llm(captured)["attributes"]  # the streamed call is still recorded
    assert attrs[sc.ROLLOUT_LLM_STREAM_END_REASON] == "exhausted"

"""A fake OpenAI / Anthropic API: real SDK clients over an in-memory transport.

`FakeAPI` answers each request with the next queued reply, read from
`tests/fixtures/providers/` (JSON bodies and SSE streams in the providers' real shapes),
and records every request. The clients are the real `openai` and `anthropic` classes
with `max_retries=0` and an `http_client` on `httpx.MockTransport` (OpenAI) or
`httpx2.MockTransport` (Anthropic, whose SDK accepts only httpx2): no network.

Example:
    >>> api = FakeAPI()
    >>> api.reply("openai_chat_completion.json")
    >>> client = openai_client(api, is_async=False)
    >>> client.chat.completions.create(model="gpt-4o", messages=[...])  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
API_KEY = "sk-test-not-a-real-key"


def fixture_text(name: str) -> str:
    """The text of a fixture file."""
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_json(name: str) -> Any:
    """A JSON fixture, parsed."""
    return json.loads(fixture_text(name))


def sse_data(name: str) -> list[Any]:
    """The parsed `data:` payloads of an SSE fixture, in order (`[DONE]` left out)."""
    return [
        json.loads(line[len("data: ") :])
        for line in fixture_text(name).splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def sse_body(events: Iterable[Any], *, done: bool = False, named: bool = False) -> bytes:
    """An SSE body from event dicts (`event:` lines when `named`, `[DONE]` when `done`)."""
    lines: list[str] = []
    for event in events:
        if named:
            lines.append(f"event: {event['type']}")
        lines += ["data: " + json.dumps(event, separators=(",", ":")), ""]
    if done:
        lines += ["data: [DONE]", ""]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Reply:
    """One canned HTTP response."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """One request the fake API received."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]


class FakeAPI:
    """Serves queued replies to whichever SDK client is pointed at it."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[Seen] = []
        self.on_request: Callable[[], None] | None = None

    def reply(
        self,
        fixture: str,
        *,
        status: int = 200,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue a fixture as the body of the next `times` responses."""
        content_type = "text/event-stream" if fixture.endswith(".sse") else "application/json"
        body = (FIXTURES / fixture).read_bytes()
        self.reply_body(body, content_type, status=status, times=times, headers=headers)

    def reply_body(
        self,
        body: bytes,
        content_type: str,
        *,
        status: int = 200,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue a raw body as the next `times` responses."""
        for _ in range(times):
            self.replies.append(Reply(status, body, content_type, dict(headers or {})))

    def _next(self, method: str, path: str, content: bytes, headers: dict[str, str]) -> Reply:
        body = json.loads(content) if content else None
        self.requests.append(Seen(method, path, body, headers))
        if self.on_request is not None:
            self.on_request()
        if not self.replies:
            raise AssertionError(f"FakeAPI: no reply queued for {method} {path}")
        return self.replies.popleft()

    def httpx_handler(self, request: httpx.Request) -> httpx.Response:
        """`httpx.MockTransport` handler."""
        reply = self._next(request.method, request.url.path, request.content, dict(request.headers))
        headers = {"content-type": reply.content_type, **reply.headers}
        return httpx.Response(reply.status, content=reply.body, headers=headers)

    def httpx2_handler(self, request: httpx2.Request) -> httpx2.Response:
        """`httpx2.MockTransport` handler."""
        reply = self._next(request.method, request.url.path, request.content, dict(request.headers))
        headers = {"content-type": reply.content_type, **reply.headers}
        return httpx2.Response(reply.status, content=reply.body, headers=headers)

    @property
    def last_body(self) -> Any:
        """The JSON body of the last request."""
        return self.requests[-1].body


def openai_client(api: FakeAPI, *, is_async: bool, azure: bool = False) -> Any:
    """A real `OpenAI` / `AsyncOpenAI` (or Azure) client talking to `api`.

    The transport is legacy `httpx`, which `openai` still accepts next to `httpx2`
    (its stubs name only `httpx2`, hence the `Any`).
    """
    transport = httpx.MockTransport(api.httpx_handler)
    http_client: Any = (
        httpx.AsyncClient(transport=transport) if is_async else httpx.Client(transport=transport)
    )
    options: dict[str, Any] = {"api_key": API_KEY, "http_client": http_client, "max_retries": 0}
    if azure:
        azure_cls: Any = openai.AsyncAzureOpenAI if is_async else openai.AzureOpenAI
        return azure_cls(
            api_version="2024-10-21", azure_endpoint="https://fake.openai.azure.com", **options
        )
    cls: Any = openai.AsyncOpenAI if is_async else openai.OpenAI
    return cls(base_url="https://fake.openai.test/v1", **options)


def anthropic_client(api: FakeAPI, *, is_async: bool) -> Any:
    """A real `Anthropic` / `AsyncAnthropic` client talking to `api`."""
    transport = httpx2.MockTransport(api.httpx2_handler)
    if is_async:
        return anthropic.AsyncAnthropic(
            api_key=API_KEY,
            base_url="https://fake.anthropic.test",
            http_client=httpx2.AsyncClient(transport=transport),
            max_retries=0,
        )
    return anthropic.Anthropic(
        api_key=API_KEY,
        base_url="https://fake.anthropic.test",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
    )


async def resolve(value: Any) -> Any:
    """`await value` for an awaitable (async clients), else `value`: one test, both shapes."""
    if hasattr(value, "__await__"):
        return await value
    return value


async def collect(stream: Any, limit: int | None = None) -> list[Any]:
    """Read a sync or async stream (at most `limit` items) into a list."""
    items: list[Any] = []
    if hasattr(stream, "__aiter__"):
        async for item in stream:
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
    else:
        for item in stream:
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
    return items


async def close(stream: Any) -> None:
    """`stream.close()`, awaited when async."""
    await resolve(stream.close())


def dumps(items: Iterable[Any]) -> list[Any]:
    """Pydantic items as plain dicts, for comparing two streams."""
    return [item.model_dump() if hasattr(item, "model_dump") else item for item in items]

"""Streams: proxies that watch the SDK's stream go by and end the span when it ends.

`wrap_stream` returns a `wrapt.ObjectProxy` of the SDK's stream: `isinstance` still
holds, every attribute is the SDK's, and the chunks are the same objects in the same
order. The proxy feeds each chunk to a `StreamRecorder` (the provider's accumulator,
`record_chunk` for the rolling preview and time to first chunk) and ends the span when
the stream is exhausted, raises, is closed (`close()`, leaving its `with` block), or is
garbage-collected half-read (`weakref.finalize`). The span then carries what was read
and `rollout.llm.stream.end_reason`.

Anthropic's `messages.stream(...)` returns a `MessageStreamManager`; its proxy starts the
call when the `with` block is entered and returns a proxy of the `MessageStream`, whose
`text_stream`, `until_done()`, `get_final_message()` and `get_final_text()` read
through the proxy, so the span sees every event however the stream is consumed.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import wrapt

from mv37.rollout.base._diagnostics import internal_error
from mv37.rollout.facade._span import is_error

if TYPE_CHECKING:
    from mv37.rollout.integrations._call import Accumulator, LLMCall

EXHAUSTED: Final = "exhausted"
CLOSED: Final = "closed"
GARBAGE_COLLECTED: Final = "garbage_collected"
ERROR: Final = "error"


class StreamRecorder:
    """What a stream proxy reports to: one accumulator, one span, ended once."""

    __slots__ = ("_acc", "_call", "_content", "_done")

    def __init__(self, call: LLMCall, acc: Accumulator) -> None:
        self._call = call
        self._acc = acc
        self._content = call.content_out
        self._done = False

    def observe(self, item: Any) -> None:
        """One chunk went by: accumulate it; record its text as a streamed chunk."""
        try:
            text = self._acc.add(item)
        except Exception as exc:
            internal_error(f"{self._call.adapter.method}: stream chunk", exc)
            return
        if text:
            # Without content capture the chunk is still counted (and timed), not kept.
            self._call.span.record_chunk(text if self._content else "")

    def end(self, reason: str, error: BaseException | None = None) -> None:
        """End the span with what was read: `exhausted`, `closed`, `garbage_collected`..."""
        if self._done:
            return
        self._done = True
        try:
            result = self._acc.result()
        except Exception as exc:
            internal_error(f"{self._call.adapter.method}: stream result", exc)
            result = None
        self._call.finish(result, error=error, stream_end=reason)

    def failed(self, exc: BaseException) -> None:
        """The stream raised while being read."""
        self.end(ERROR if is_error(exc) else CLOSED, exc)


class _StreamProxy(wrapt.ObjectProxy[Any]):
    """State shared by the sync and async stream proxies."""

    def __init__(self, wrapped: Any, recorder: StreamRecorder) -> None:
        super().__init__(wrapped)
        self._self_recorder = recorder
        self._self_iter: Any = None
        self._self_text_stream: Any = None
        # Ends the span if the stream is dropped half-read; holds no reference to self.
        finalizer = weakref.finalize(self, recorder.end, GARBAGE_COLLECTED)
        finalizer.atexit = False

    def __repr__(self) -> str:
        return repr(self.__wrapped__)


class SyncStreamProxy(_StreamProxy):
    """A sync SDK stream (`openai.Stream`, `anthropic.Stream`, ...), observed."""

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        it = self._self_iter
        if it is None:
            it = self._self_iter = iter(self.__wrapped__)
        try:
            item = next(it)
        except StopIteration:
            self._self_recorder.end(EXHAUSTED)
            raise
        except BaseException as exc:
            self._self_recorder.failed(exc)
            raise
        self._self_recorder.observe(item)
        return item

    def __enter__(self) -> Any:
        self.__wrapped__.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_recorder.end(CLOSED)

    def close(self) -> Any:
        """Close the SDK stream and end the span with what was read."""
        try:
            return self.__wrapped__.close()
        finally:
            self._self_recorder.end(CLOSED)


class AsyncStreamProxy(_StreamProxy):
    """An async SDK stream (`openai.AsyncStream`, `anthropic.AsyncStream`, ...), observed."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        it = self._self_iter
        if it is None:
            it = self._self_iter = self.__wrapped__.__aiter__()
        try:
            item = await it.__anext__()
        except StopAsyncIteration:
            self._self_recorder.end(EXHAUSTED)
            raise
        except BaseException as exc:
            self._self_recorder.failed(exc)
            raise
        self._self_recorder.observe(item)
        return item

    async def __aenter__(self) -> Any:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_recorder.end(CLOSED)

    async def close(self) -> Any:
        """Close the SDK stream and end the span with what was read."""
        try:
            return await self.__wrapped__.close()
        finally:
            self._self_recorder.end(CLOSED)


def _is_text_delta(event: Any) -> bool:
    return (
        getattr(event, "type", None) == "content_block_delta"
        and getattr(event.delta, "type", None) == "text_delta"
    )


class SyncMessageStreamProxy(SyncStreamProxy):
    """Anthropic's `MessageStream`: its helpers read through the proxy."""

    @property
    def text_stream(self) -> Iterator[str]:
        """The text deltas, as the SDK's `text_stream` yields them."""
        if self._self_text_stream is None:
            self._self_text_stream = self._self_text_deltas()
        return self._self_text_stream  # type: ignore[no-any-return]

    def _self_text_deltas(self) -> Iterator[str]:
        for event in self:
            if _is_text_delta(event):
                yield event.delta.text

    def until_done(self) -> None:
        """Read the stream to its end."""
        for _ in self:
            pass

    def get_final_message(self) -> Any:
        """The accumulated message, once the stream is read to its end."""
        self.until_done()
        return self.__wrapped__.get_final_message()

    def get_final_text(self) -> str:
        """The text blocks of the final message, joined."""
        self.until_done()
        return self.__wrapped__.get_final_text()  # type: ignore[no-any-return]


class AsyncMessageStreamProxy(AsyncStreamProxy):
    """Anthropic's `AsyncMessageStream`: its helpers read through the proxy."""

    @property
    def text_stream(self) -> AsyncIterator[str]:
        """The text deltas, as the SDK's `text_stream` yields them."""
        if self._self_text_stream is None:
            self._self_text_stream = self._self_text_deltas()
        return self._self_text_stream  # type: ignore[no-any-return]

    async def _self_text_deltas(self) -> AsyncIterator[str]:
        async for event in self:
            if _is_text_delta(event):
                yield event.delta.text

    async def until_done(self) -> None:
        """Read the stream to its end."""
        async for _ in self:
            pass

    async def get_final_message(self) -> Any:
        """The accumulated message, once the stream is read to its end."""
        await self.until_done()
        return await self.__wrapped__.get_final_message()

    async def get_final_text(self) -> str:
        """The text blocks of the final message, joined."""
        await self.until_done()
        return await self.__wrapped__.get_final_text()  # type: ignore[no-any-return]


def wrap_stream(stream: Any, call: LLMCall, *, is_async: bool = False) -> _StreamProxy | None:
    """A proxy of `stream` reporting to `call`; `None` when it is not a stream.

    `is_async`: the SDK method was async. It decides for a stream that is both (another
    instrumentation's proxy of the SDK's stream may offer `__iter__` and `__aiter__`).
    """
    helper = hasattr(stream, "get_final_message")
    sync = hasattr(stream, "__next__") or (
        hasattr(stream, "__iter__") and not hasattr(stream, "model_dump")
    )
    if hasattr(stream, "__aiter__") and (is_async or not sync):
        cls: type[_StreamProxy] = AsyncMessageStreamProxy if helper else AsyncStreamProxy
    elif sync:
        cls = SyncMessageStreamProxy if helper else SyncStreamProxy
    else:
        return None
    return cls(stream, StreamRecorder(call, call.adapter.accumulator()))


class SyncManagerProxy(wrapt.ObjectProxy[Any]):
    """A sync stream manager (`MessageStreamManager`): the call starts on `__enter__`."""

    def __init__(self, wrapped: Any, begin: Callable[[], LLMCall | None]) -> None:
        super().__init__(wrapped)
        self._self_begin = begin
        self._self_stream: Any = None

    def __enter__(self) -> Any:
        call = self._self_begin()
        if call is None:
            return self.__wrapped__.__enter__()
        self._self_stream = stream = call.run(self.__wrapped__.__enter__, (), {})
        return stream

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            _end_closed(self._self_stream)


class AsyncManagerProxy(wrapt.ObjectProxy[Any]):
    """An async stream manager (`AsyncMessageStreamManager`): the call starts on enter."""

    def __init__(self, wrapped: Any, begin: Callable[[], LLMCall | None]) -> None:
        super().__init__(wrapped)
        self._self_begin = begin
        self._self_stream: Any = None

    async def __aenter__(self) -> Any:
        call = self._self_begin()
        if call is None:
            return await self.__wrapped__.__aenter__()
        self._self_stream = stream = await call.run(self.__wrapped__.__aenter__, (), {})
        return stream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            _end_closed(self._self_stream)


def _end_closed(stream: Any) -> None:
    if isinstance(stream, _StreamProxy):
        stream._self_recorder.end(CLOSED)


def wrap_manager(manager: Any, begin: Callable[[], LLMCall | None]) -> Any:
    """A proxy of a stream manager that starts the call when entered."""
    if hasattr(manager, "__aenter__"):
        return AsyncManagerProxy(manager, begin)
    if hasattr(manager, "__enter__"):
        return SyncManagerProxy(manager, begin)
    return manager

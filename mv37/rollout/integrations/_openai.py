"""OpenAI: `chat.completions.create` and `responses.create`, read into `Request`/`Result`.

Everything is read with `field`, so pydantic objects from the `openai` package and
plain dicts from OpenAI-compatible gateways both work; nothing here imports `openai`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from mv37.rollout import semconv as sc
from mv37.rollout.integrations._call import Request, Result, invocation_parameters
from mv37.rollout.integrations._usage import openai_usage
from mv37.rollout.vocabulary._attributes import Attributes
from mv37.rollout.vocabulary._chat import ROLES, chat_message, content_parts
from mv37.rollout.vocabulary._fields import (
    as_float,
    as_int,
    as_str,
    field,
    given,
    sequence,
)
from mv37.rollout.vocabulary._messages import (
    Message,
    Part,
    message,
    reasoning_part,
    text_part,
    tool_call_part,
    tool_response_part,
)


def _common_request(
    kwargs: Mapping[str, Any], content: frozenset[str], max_tokens: object
) -> tuple[Attributes, dict[str, Any]]:
    attrs: Attributes = {}
    if (tokens := as_int(max_tokens)) is not None:
        attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = tokens
    for key, name in (
        (sc.GEN_AI_REQUEST_TOP_P, "top_p"),
        (sc.GEN_AI_REQUEST_FREQUENCY_PENALTY, "frequency_penalty"),
        (sc.GEN_AI_REQUEST_PRESENCE_PENALTY, "presence_penalty"),
    ):
        if (number := as_float(kwargs.get(name))) is not None:
            attrs[key] = number
    return attrs, invocation_parameters(kwargs, content)


class ChatCompletions:
    """`chat.completions.create`, streamed or not."""

    method = "chat.completions.create"
    _content: Final = frozenset({"messages"})

    def request(self, kwargs: Mapping[str, Any]) -> Request:
        """Model, options and the messages as the Rollout input."""
        max_tokens = kwargs.get("max_completion_tokens")
        if not given(max_tokens):
            max_tokens = kwargs.get("max_tokens")
        attrs, params = _common_request(kwargs, self._content, max_tokens)
        if (seed := as_int(kwargs.get("seed"))) is not None:
            attrs[sc.GEN_AI_REQUEST_SEED] = seed
        if (n := as_int(kwargs.get("n"))) is not None and n != 1:
            attrs[sc.GEN_AI_REQUEST_CHOICE_COUNT] = n
        stop = kwargs.get("stop")
        if isinstance(stop, str):
            attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = (stop,)
        elif (stops := sequence(stop)) and all(isinstance(s, str) for s in stops):
            attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(stops)
        return Request(
            model=as_str(kwargs.get("model")),
            stream=kwargs.get("stream") is True,
            temperature=as_float(kwargs.get("temperature")),
            reasoning=as_str(kwargs.get("reasoning_effort")),
            params=params,
            attributes=attrs,
            input_value=sequence(kwargs.get("messages")),
        )

    def input_messages(self, kwargs: Mapping[str, Any]) -> tuple[list[Part], list[Message]]:
        """The chat messages (system messages stay in the list, as sent)."""
        return [], [chat_message(m) for m in sequence(kwargs.get("messages")) or ()]

    def tools(self, kwargs: Mapping[str, Any]) -> Sequence[Any] | None:
        """The `tools` offered to the model."""
        return sequence(kwargs.get("tools"))

    def result(self, response: Any) -> Result | None:
        """A `ChatCompletion`: one output message per choice."""
        messages: list[Message] = []
        reasons: list[str] = []
        for choice in sequence(field(response, "choices")) or ():
            reason = as_str(field(choice, "finish_reason"))
            msg = chat_message(field(choice, "message") or {"role": "assistant"})
            if reason:
                msg["finish_reason"] = reason
                reasons.append(reason)
            messages.append(msg)
        usage, cache_write = openai_usage(field(response, "usage"))
        return Result(
            response_id=as_str(field(response, "id")),
            model=as_str(field(response, "model")),
            messages=messages,
            finish_reasons=reasons,
            usage=usage,
            cache_creation_tokens=cache_write,
        )

    def accumulator(self) -> ChatAccumulator:
        """A reader for one `Stream[ChatCompletionChunk]`."""
        return ChatAccumulator()


class _Choice:
    __slots__ = ("calls", "finish", "role", "texts")

    def __init__(self) -> None:
        self.role = "assistant"
        self.texts: list[str] = []
        self.calls: dict[int, list[Any]] = {}  # index -> [id, name, [argument pieces]]
        self.finish: str | None = None


class ChatAccumulator:
    """Chat completion chunks: text and tool-call deltas per choice, the usage chunk."""

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.model: str | None = None
        self.usage: object = None
        self.choices: dict[int, _Choice] = {}

    def add(self, chunk: Any) -> str | None:
        """One `ChatCompletionChunk`; returns its text (content, refusal, tool arguments)."""
        if self.response_id is None:
            self.response_id = as_str(field(chunk, "id"))
            self.model = as_str(field(chunk, "model"))
        usage = field(chunk, "usage")
        if usage is not None:
            self.usage = usage
        text: str | None = None
        for choice in field(chunk, "choices") or ():
            index = field(choice, "index") or 0
            state = self.choices.get(index)
            if state is None:
                state = self.choices[index] = _Choice()
            delta = field(choice, "delta")
            if delta is not None:
                piece = field(delta, "content") or field(delta, "refusal")
                if piece:
                    state.texts.append(piece)
                    text = piece if text is None else text + piece
                calls = field(delta, "tool_calls")
                if calls:
                    for call in calls:
                        arguments = _add_tool_call(state, call)
                        if arguments:
                            text = arguments if text is None else text + arguments
            reason = field(choice, "finish_reason")
            if reason:
                state.finish = str(reason)
        return text

    def result(self) -> Result:
        """The choices read so far, with the usage chunk's counts when it came."""
        messages: list[Message] = []
        reasons: list[str] = []
        for _, state in sorted(self.choices.items()):
            parts: list[Part] = [text_part("".join(state.texts))] if state.texts else []
            for _, (call_id, name, pieces) in sorted(state.calls.items()):
                parts.append(tool_call_part(call_id, name, "".join(pieces)))
            messages.append(message(state.role, parts, state.finish))
            if state.finish:
                reasons.append(state.finish)
        usage, cache_write = openai_usage(self.usage)
        return Result(
            response_id=self.response_id,
            model=self.model,
            messages=messages,
            finish_reasons=reasons,
            usage=usage,
            cache_creation_tokens=cache_write,
        )


def _add_tool_call(state: _Choice, call: Any) -> str | None:
    index = field(call, "index") or 0
    entry = state.calls.get(index)
    if entry is None:
        entry = state.calls[index] = [None, None, []]
    if field(call, "id"):
        entry[0] = field(call, "id")
    function = field(call, "function")
    if field(function, "name"):
        entry[1] = field(function, "name")
    arguments = field(function, "arguments")
    if arguments:
        entry[2].append(arguments)
        return str(arguments)
    return None


# -- Responses API --------------------------------------------------------------------


def _response_item(item: object) -> Message | None:
    """One Responses API input item as a GenAI message."""
    if isinstance(item, str):
        return message("user", [text_part(item)])
    kind = field(item, "type")
    role = field(item, "role")
    if role is not None and kind in (None, "message"):
        return message(ROLES.get(str(role), str(role)), content_parts(field(item, "content")))
    if kind in ("function_call", "custom_tool_call"):
        arguments = field(item, "arguments") if kind == "function_call" else field(item, "input")
        part = tool_call_part(field(item, "call_id"), field(item, "name"), arguments)
        return message("assistant", [part])
    if kind in ("function_call_output", "custom_tool_call_output"):
        return message("tool", [tool_response_part(field(item, "call_id"), field(item, "output"))])
    if kind == "reasoning":
        return message("assistant", [reasoning_part(_summary_text(item))])
    return None


def _summary_text(item: object) -> str:
    return "\n".join(str(field(s, "text") or "") for s in sequence(field(item, "summary")) or ())


def _output_parts(output: object) -> tuple[list[Part], bool]:
    """Parts of a Responses `output` list, and whether it calls tools."""
    parts: list[Part] = []
    calls = False
    for item in sequence(output) or ():
        kind = str(field(item, "type") or "")
        if kind == "message":
            parts.extend(content_parts(field(item, "content")))
        elif kind in ("function_call", "custom_tool_call"):
            key = "arguments" if kind == "function_call" else "input"
            parts.append(
                tool_call_part(field(item, "call_id"), field(item, "name"), field(item, key))
            )
            calls = True
        elif kind == "reasoning":
            summary = _summary_text(item)
            if summary:
                parts.append(reasoning_part(summary))
        elif kind.endswith("_call"):  # built-in tools: web_search_call, file_search_call, ...
            parts.append(tool_call_part(field(item, "id"), kind.removesuffix("_call"), None))
    return parts, calls


def _finish_reason(response: object, calls: bool) -> str | None:
    incomplete = field(field(response, "incomplete_details"), "reason")
    if incomplete == "max_output_tokens":
        return "length"
    if incomplete:
        return str(incomplete)
    if calls:
        return "tool_calls"
    status = field(response, "status")
    return "stop" if status in (None, "completed") else str(status)


def responses_result(response: Any) -> Result:
    """A Responses API `Response` (also the one in `response.completed`)."""
    parts, calls = _output_parts(field(response, "output"))
    reason = _finish_reason(response, calls)
    usage, cache_write = openai_usage(field(response, "usage"))
    error = field(response, "error")
    failure = None
    if field(response, "status") == "failed" or error is not None:
        code, text = field(error, "code"), field(error, "message")
        failure = f"response failed: {code}: {text}" if error is not None else "response failed"
    return Result(
        response_id=as_str(field(response, "id")),
        model=as_str(field(response, "model")),
        messages=[message("assistant", parts, reason)],
        finish_reasons=[reason] if reason else [],
        usage=usage,
        cache_creation_tokens=cache_write,
        error=failure,
    )


class Responses:
    """`responses.create`, streamed or not."""

    method = "responses.create"
    _content: Final = frozenset({"input", "instructions"})

    def request(self, kwargs: Mapping[str, Any]) -> Request:
        """Model, options, and `input` (with `instructions`) as the Rollout input."""
        attrs, params = _common_request(kwargs, self._content, kwargs.get("max_output_tokens"))
        raw_input = kwargs.get("input")
        value: object = raw_input if isinstance(raw_input, str) else sequence(raw_input)
        instructions = as_str(kwargs.get("instructions"))
        if instructions and value is not None:
            value = {"instructions": instructions, "input": value}
        return Request(
            model=as_str(kwargs.get("model")),
            stream=kwargs.get("stream") is True,
            temperature=as_float(kwargs.get("temperature")),
            reasoning=as_str(field(kwargs.get("reasoning"), "effort")),
            params=params,
            attributes=attrs,
            input_value=value,
        )

    def input_messages(self, kwargs: Mapping[str, Any]) -> tuple[list[Part], list[Message]]:
        """`instructions` as system instructions, `input` as messages."""
        instructions = as_str(kwargs.get("instructions"))
        system = [text_part(instructions)] if instructions else []
        raw_input = kwargs.get("input")
        items = [raw_input] if isinstance(raw_input, str) else sequence(raw_input) or ()
        messages = [m for m in (_response_item(item) for item in items) if m is not None]
        return system, messages

    def tools(self, kwargs: Mapping[str, Any]) -> Sequence[Any] | None:
        """The `tools` offered to the model."""
        return sequence(kwargs.get("tools"))

    def result(self, response: Any) -> Result | None:
        """A `Response`."""
        return responses_result(response)

    def accumulator(self) -> ResponsesAccumulator:
        """A reader for one `Stream[ResponseStreamEvent]`."""
        return ResponsesAccumulator()


class ResponsesAccumulator:
    """Responses API stream events; the final `response.completed` carries everything."""

    def __init__(self) -> None:
        self.final: object = None
        self.response_id: str | None = None
        self.model: str | None = None
        self.texts: dict[int, list[str]] = {}
        self.calls: dict[str, list[Any]] = {}  # item id -> [call id, name, [argument pieces]]

    def add(self, event: Any) -> str | None:
        """One stream event; returns the text of output text and tool-argument deltas."""
        kind = field(event, "type")
        if kind in ("response.output_text.delta", "response.refusal.delta"):
            delta = field(event, "delta")
            if delta:
                self.texts.setdefault(field(event, "output_index") or 0, []).append(delta)
            return delta  # type: ignore[no-any-return]
        if kind == "response.function_call_arguments.delta":
            delta = field(event, "delta")
            entry = self.calls.get(str(field(event, "item_id")))
            if entry is not None and delta:
                entry[2].append(delta)
            return delta  # type: ignore[no-any-return]
        if kind == "response.output_item.added":
            item = field(event, "item")
            if field(item, "type") == "function_call":
                self.calls[str(field(item, "id"))] = [
                    field(item, "call_id"),
                    field(item, "name"),
                    [],
                ]
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.final = field(event, "response")
        elif kind in ("response.created", "response.in_progress"):
            response = field(event, "response")
            self.response_id = as_str(field(response, "id")) or self.response_id
            self.model = as_str(field(response, "model")) or self.model
        return None

    def result(self) -> Result:
        """The final response when it came, else the text and calls read so far."""
        if self.final is not None:
            return responses_result(self.final)
        parts = [text_part("".join(texts)) for _, texts in sorted(self.texts.items())]
        for call_id, name, pieces in self.calls.values():
            parts.append(tool_call_part(call_id, name, "".join(pieces)))
        return Result(
            response_id=self.response_id,
            model=self.model,
            messages=[message("assistant", parts)] if parts else [],
        )

"""Message mirrors for LLM spans recorded by hand.

`trace.llm(...)` plus `record_input([{"role": "user", "content": ...}])` writes the
payload as `rollout.input`/`input.value`, and, as the mapping table in
SEMCONV-MAPPING.md asks, the same messages as `gen_ai.input.messages` and
OpenInference `llm.input_messages.*` (outputs likewise), so Phoenix and GenAI-aware
backends show a conversation instead of a JSON blob. Spans from `wrap()` and the
Agents bridge write their own, more exact messages first; those are left alone.
"""

from __future__ import annotations

from mv37.rollout import semconv as sc
from mv37.rollout.base._diagnostics import internal_error
from mv37.rollout.vocabulary._attributes import Attributes
from mv37.rollout.vocabulary._chat import recorded_messages
from mv37.rollout.vocabulary._messages import attribute_room, input_attributes, output_attributes

_KEYS = {"input": sc.GEN_AI_INPUT_MESSAGES, "output": sc.GEN_AI_OUTPUT_MESSAGES}


def message_attributes(otel_span: object, direction: str, value: object, limit: int) -> Attributes:
    """The message mirrors for `value` recorded as an LLM span's input or output.

    Empty when `value` holds no chat messages, or when the span already has them.

    Example:
        >>> attrs = message_attributes(None, "output", "Hello!", 1000)
        >>> attrs["gen_ai.output.messages"]
        '[{"role": "assistant", "parts": [{"type": "text", "content": "Hello!"}]}]'
    """
    try:
        present = getattr(otel_span, "attributes", None)
        if present and _KEYS[direction] in present:
            return {}
        messages = recorded_messages(direction, value)
        if not messages:
            return {}
        room = attribute_room(otel_span)
        if direction == "input":
            return input_attributes(None, messages, limit, room)
        return output_attributes(messages, limit, room)
    except Exception as exc:
        internal_error("llm message mirrors", exc)
        return {}

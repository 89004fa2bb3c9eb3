"""Payloads through every facade: models, dataclasses, enums, cycles, broken reprs, and
the cap on huge payloads. Asserted on exported spans, with `with` and `async with`.
"""

from __future__ import annotations

import datetime
import enum
import json
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import BaseModel

from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans, capture_spans

if TYPE_CHECKING:
    from tests.helpers import MODES, Point, entered
else:
    from helpers import MODES, Point, entered


FIVE_MB = 5 * 1024 * 1024


# == payloads =================================================================================


class Order(BaseModel):
    """A pydantic model."""

    id: int
    items: list[str]


class Color(enum.Enum):
    """An enum."""

    RED = "red"


class BrokenRepr:
    """An object whose repr raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _cyclic() -> dict[str, Any]:
    data: dict[str, Any] = {"a": 1}
    data["self"] = data
    return data


PAYLOADS: dict[str, tuple[object, object]] = {
    "pydantic": (Order(id=1, items=["a"]), {"id": 1, "items": ["a"]}),
    "dataclass": (Point(1, 2), {"x": 1, "y": 2}),
    "enum": (Color.RED, "red"),
    "datetime": (datetime.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
    "set": ({3, 1, 2}, [1, 2, 3]),
    "bytes": (b"hi", "hi"),
    "cycle": (_cyclic(), {"a": 1, "self": "<cycle>"}),
    "broken_repr": (BrokenRepr(), "<unrepresentable BrokenRepr>"),
    "mixed": (
        {"p": Point(0, 1), "c": Color.RED, "s": {"x"}},
        {"p": {"x": 0, "y": 1}, "c": "red", "s": ["x"]},
    ),
}


@pytest.mark.parametrize("kind", list(PAYLOADS))
@pytest.mark.parametrize("mode", MODES)
async def test_payloads_through_every_facade(captured: CapturedSpans, mode: str, kind: str) -> None:
    """record_input/record_output, tool arguments and agent input/output turn anything into JSON."""
    value, expected = PAYLOADS[kind]
    async with entered(captured.client.trace("payloads"), mode) as trace:
        trace.set_agent_input(value)
        async with entered(trace.span("task", name="work"), mode) as span:
            span.record_input(value)
            span.record_output(value)
        async with entered(trace.tool("use", arguments=value), mode) as call:
            call.record_output(value)
        trace.set_agent_output(value)

    root = captured.by_name("invoke_workflow payloads")["attributes"]
    work = captured.by_name("work")["attributes"]
    tool = captured.by_name("execute_tool use")["attributes"]
    recorded = [
        root[sc.INPUT_VALUE],
        root[sc.OUTPUT_VALUE],
        work[sc.INPUT_VALUE],
        work[sc.OUTPUT_VALUE],
        work[sc.INPUT_VALUE],
        work[sc.OUTPUT_VALUE],
        tool[sc.INPUT_VALUE],
        tool[sc.GEN_AI_TOOL_CALL_ARGUMENTS],
        tool[sc.OUTPUT_VALUE],
        tool[sc.GEN_AI_TOOL_CALL_RESULT],
    ]
    for text in recorded:
        assert isinstance(text, str)
        assert json.loads(text) == expected
    assert work[sc.INPUT_MIME_TYPE] == "application/json"
    assert work[sc.OUTPUT_MIME_TYPE] == "application/json"
    assert captured.by_name("work")["status"] == "UNSET"


@pytest.mark.parametrize("mode", MODES)
async def test_huge_payload_is_capped_and_marked(mode: str) -> None:
    """A 5 MB string is cut to max_payload_chars and marked truncated with its original length."""
    huge = "x" * FIVE_MB
    with capture_spans(max_payload_chars=1000) as captured:
        async with (
            entered(captured.client.trace("big"), mode) as trace,
            entered(trace.span("task", name="work"), mode) as span,
        ):
            span.record_input("short")
            span.record_output(huge)
        attrs = captured.by_name("work")["attributes"]

    output = attrs[sc.OUTPUT_VALUE]
    assert isinstance(output, str)
    assert len(output) <= 1000
    assert output.startswith("x" * 900)
    assert output != huge[: len(output)], "the cut is marked"
    assert len(attrs[sc.OUTPUT_VALUE]) <= 1000
    assert attrs[sc.ROLLOUT_OUTPUT_TRUNCATED] is True
    assert attrs[sc.ROLLOUT_OUTPUT_ORIGINAL_LENGTH] == FIVE_MB
    assert attrs[sc.INPUT_VALUE] == "short"
    assert sc.ROLLOUT_INPUT_TRUNCATED not in attrs
    assert sc.ROLLOUT_INPUT_ORIGINAL_LENGTH not in attrs

"""Helpers shared by the test_wrap_openai_* modules: the request, and reading the LLM span."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mv37.rollout.testing import CapturedSpans

KINDS = pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
CHAT_MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
CHAT_ID = "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"


def llm_spans(captured: CapturedSpans) -> list[dict[str, Any]]:
    return [s for s in captured.as_dicts() if s["type"] == "llm"]


def one_llm(captured: CapturedSpans) -> dict[str, Any]:
    spans = llm_spans(captured)
    assert len(spans) == 1, [s["name"] for s in spans]
    return spans[0]


def gen_ai_json(attrs: dict[str, Any], key: str) -> Any:
    return json.loads(attrs[key])

"""One LLM span per call in a real Phoenix, next to OpenInference's instrumentor (issue 16).

Teams add the SDK to a Phoenix setup that already runs `OpenAIInstrumentor`. A call made
through `rollout.wrap()` must then reach Phoenix as exactly one LLM span carrying the
call's token counts, so Phoenix's token sums (over the spans of a trace or a project)
count it once; with `dedupe_llm_spans=False` both spans arrive, each with the tokens: the
double count the option exists to prevent. The OpenAI call goes to an in-process fake
transport replaying a recorded response; the spans go to Phoenix for real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openinference.instrumentation.openai import OpenAIInstrumentor

from e2e.servers import Phoenix
from mv37 import rollout
from mv37.rollout.testing import reset_global_tracer_provider

RECORDED = (
    Path(__file__).parent.parent
    / "tests"
    / "fixtures"
    / "providers"
    / "openai_chat_completion.json"
)
PROMPT_TOKENS = json.loads(RECORDED.read_text())["usage"]["prompt_tokens"]


def _client() -> Any:
    """A real OpenAI client whose requests a fake transport answers (no network)."""

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=RECORDED.read_bytes(), headers={"content-type": "application/json"}
        )

    # Legacy httpx, which openai still accepts beside httpx2 (its stubs name only httpx2).
    http_client: Any = httpx.Client(transport=httpx.MockTransport(reply))
    return openai.OpenAI(
        api_key="sk-e2e-not-a-real-key",
        base_url="https://fake.openai.test/v1",
        http_client=http_client,
        max_retries=0,
    )


@pytest.fixture
def openinference_on() -> Iterator[None]:
    """OpenInference's OpenAI instrumentor, as a Phoenix user already runs it, with a
    fresh global tracer provider slot: OTel allows one per process, and this process
    runs one `init()` per test (each installs its own)."""
    reset_global_tracer_provider()
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument()
    try:
        yield
    finally:
        instrumentor.uninstrument()
        reset_global_tracer_provider()


def _token_spans(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in spans if "llm.token_count.prompt" in (s.get("attributes") or {})]


@pytest.mark.usefixtures("openinference_on")
@pytest.mark.parametrize("dedupe", [True, False], ids=["dedupe", "both"])
def test_phoenix_counts_a_wrapped_call_once(phoenix: Phoenix, project: str, dedupe: bool) -> None:
    rollout.init(
        base_url=phoenix.url,
        headers={"x-project-name": project},
        console=False,
        metrics=False,
        dedupe_llm_spans=dedupe,
    )
    try:
        client = rollout.wrap(_client())

        @rollout.agent
        def support_agent(question: str) -> str:
            response = client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": question}]
            )
            return str(response.choices[0].message.content)

        support_agent("What is the capital of France?")
        assert rollout.flush(10)
    finally:
        rollout.shutdown()

    # agent + our llm span (+ OpenInference's ChatCompletion when both are kept)
    spans = phoenix.wait_for_spans(project, 2 if dedupe else 3)
    llm = [s for s in spans if s["span_kind"] == "LLM"]
    counted = _token_spans(spans)
    if dedupe:
        assert [s["name"] for s in llm] == ["chat gpt-4o"]
        assert len(counted) == 1
        assert counted[0]["attributes"]["llm.token_count.prompt"] == PROMPT_TOKENS
    else:
        assert sorted(s["name"] for s in llm) == ["ChatCompletion", "chat gpt-4o"]
        assert len(counted) == 2  # Phoenix sums both: the double count
    # Phoenix's own trace summary sums the token counts of the trace's spans.
    (trace,) = phoenix.traces(project)
    assert trace["token_count_prompt"] == PROMPT_TOKENS * (1 if dedupe else 2)
    (agent,) = [s for s in spans if s["parent_id"] is None]
    assert agent["attributes"]["rollout.usage.input_tokens"] == PROMPT_TOKENS  # once, both ways

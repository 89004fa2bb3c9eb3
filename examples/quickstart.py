"""Quickstart: an agent with a tool, a task, an LLM call, messages, feedback and a signal.

Runs offline with nothing configured: the embedded default prints each finished trace
as a tree. Point it at a collector with `ROLLOUT_BASE_URL=http://localhost:4318`.

    python examples/quickstart.py
"""

from __future__ import annotations

from mv37 import rollout

rollout.init(agent_name="support_agent", environment="development")


@rollout.tool("get_weather")
def get_weather(city: str) -> dict[str, object]:
    """A tool: its arguments and result are recorded as one pair."""
    return {"city": city, "temp": 21, "conditions": "sunny"}


def fake_llm(prompt: str) -> tuple[str, dict[str, int]]:
    """Stands in for a model call, so the example needs no network and no API key."""
    return f"It's 21°C and sunny. ({len(prompt)} chars considered)", {
        "input_tokens": 42,
        "output_tokens": 12,
        "cached_tokens": 10,
    }


@rollout.task("compose_answer")
def compose_answer(question: str, weather: dict[str, object]) -> str:
    """A task: a multi-step unit of work with an LLM span inside."""
    trace = rollout.current_trace()
    assert trace is not None
    with trace.llm("answer", model="gpt-4o-mini", provider="openai", temperature=0.2) as llm:
        prompt = f"Question: {question}\nWeather: {weather}"
        llm.record_input([{"role": "user", "content": prompt}])
        text, usage = fake_llm(prompt)
        llm.record_output(text)
        llm.set_usage(**usage, cost_usd=0.00021)
    return text


def record_outcome(ok: bool) -> None:
    """Reach the active trace from a helper, without passing it around."""
    trace = rollout.current_trace()
    if trace is not None:
        trace.signal("resolved", ok)


@rollout.agent("support_agent", user_id="user-42", session_id="session-7")
def handle_request(text: str) -> str:
    """The agent entry point: a fresh trace per call, input and output captured."""
    trace = rollout.current_trace()
    assert trace is not None
    trace.message(role="user", content=text)
    with rollout.span("retrieval", name="faq_lookup") as span:
        span.record_input({"query": text})
        span.record_output(["Weather answers use Celsius."])
    weather = get_weather("Paris")
    answer = compose_answer(text, weather)
    trace.message(role="assistant", content=answer)
    rollout.feedback("thumbs_up", True)
    record_outcome(True)
    return answer


if __name__ == "__main__":
    print(handle_request("What's the weather in Paris?"))
    rollout.shutdown()

"""An async multi-agent run: a coordinator fans out to two specialists at once.

Each specialist retrieves documents, calls a tool and an LLM (a fake one, so this runs
offline with no API key), and the coordinator merges their answers, then records the
user's feedback and an outcome signal. All of it is one trace, across `asyncio.gather`.

    python examples/multi_agent.py
    ROLLOUT_BASE_URL=http://localhost:4318 python examples/multi_agent.py
"""

from __future__ import annotations

import asyncio

from mv37 import rollout

rollout.init(agent_name="travel_desk", environment="development")


async def fake_llm(prompt: str) -> tuple[str, dict[str, int]]:
    """Stands in for a model call: an answer and its token usage."""
    await asyncio.sleep(0.01)
    words = len(prompt.split())
    return f"Summary of {words} words of context.", {"input_tokens": words * 2, "output_tokens": 9}


@rollout.tool("search_flights")
async def search_flights(origin: str, destination: str) -> list[dict[str, object]]:
    await asyncio.sleep(0.005)
    return [{"flight": "AF123", "from": origin, "to": destination, "price": 189}]


@rollout.tool("search_hotels")
async def search_hotels(city: str, nights: int) -> list[dict[str, object]]:
    await asyncio.sleep(0.005)
    return [{"hotel": "Le Petit", "city": city, "nights": nights, "price": 120 * nights}]


async def specialist(topic: str, question: str) -> str:
    """One specialist: retrieval, a tool, an LLM call, its answer and an outcome signal."""
    trace = rollout.current_trace()  # this specialist's own agent span
    assert trace is not None
    with trace.span("retrieval", name=f"{topic}_docs") as retrieval:
        retrieval.record_input({"query": question, "topic": topic})
        retrieval.record_output([f"{topic} policy: refundable within 24h"])
    if topic == "flights":
        found: list[dict[str, object]] = await search_flights("PAR", "LIS")
    else:
        found = await search_hotels("Lisbon", 3)
    with trace.llm(f"{topic}_answer", model="gpt-4o-mini", provider="openai") as llm:
        prompt = f"{question}\nOptions: {found}"
        llm.record_input([{"role": "user", "content": prompt}])
        text, usage = await fake_llm(prompt)
        llm.record_output(text)
        llm.set_usage(**usage)
    trace.message(role="assistant", content=text, is_internal=True)
    trace.signal("options_found", len(found))
    return text


@rollout.agent("flights_agent")
async def flights_agent(question: str) -> str:
    return await specialist("flights", question)


@rollout.agent("hotels_agent")
async def hotels_agent(question: str) -> str:
    return await specialist("hotels", question)


@rollout.agent("travel_desk", user_id="user-7", session_id="trip-2026")
async def travel_desk(question: str) -> str:
    """The coordinator: both specialists at once, then one merged answer."""
    trace = rollout.current_trace()
    assert trace is not None
    trace.message(role="user", content=question)
    flights, hotels = await asyncio.gather(flights_agent(question), hotels_agent(question))
    answer = f"Flights: {flights} Hotels: {hotels}"
    trace.message(role="assistant", content=answer)
    rollout.feedback("helpful", 5)
    rollout.signal("booking_started", True)
    return answer


async def main() -> None:
    print(await travel_desk("Plan three nights in Lisbon from Paris next week."))
    await rollout.ashutdown()


if __name__ == "__main__":
    asyncio.run(main())

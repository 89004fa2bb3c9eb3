"""`rollout.user(...)` and `identify_user`: who each trace is for, per thread and task."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans


@rollout.tool("step")
def step(i: int) -> int:
    return i


@rollout.agent("helper_agent")
def agent(i: int) -> int:
    return step(i)


@rollout.tool("astep")
async def astep(i: int) -> int:
    await asyncio.sleep(0)
    return i


@rollout.agent("async_helper_agent")
async def aagent(i: int) -> int:
    return await astep(i)


async def run(mode: str, i: int) -> int:
    return await aagent(i) if mode == "async" else agent(i)


def _ids(captured: CapturedSpans) -> list[tuple[str, object, object, object]]:
    return [
        (
            s.name,
            (s.attributes or {}).get(sc.USER_ID),
            (s.attributes or {}).get(sc.SESSION_ID),
            (s.attributes or {}).get(sc.ROLLOUT_CONVERSATION_ID),
        )
        for s in captured.exporter.get_finished_spans()
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_traces_inside_a_user_block_carry_it_on_every_span(
    captured: CapturedSpans, mode: str
) -> None:
    block = rollout.user(user_id="u-1", session_id="s-1", conversation_id="c-1")
    if mode == "async":
        async with block:
            await run(mode, 1)
    else:
        with block:
            await run(mode, 1)
    spans = _ids(captured)
    assert len(spans) == 2
    assert {ids[1:] for ids in spans} == {("u-1", "s-1", "c-1")}


async def test_nested_blocks_override_field_by_field_and_end_with_the_block(
    captured: CapturedSpans,
) -> None:
    with rollout.user(user_id="outer", session_id="s-outer"):
        with rollout.user(session_id="s-inner"):
            agent(1)
        agent(2)
    agent(3)
    roots = [ids for ids in _ids(captured) if ids[0].startswith("invoke_agent")]
    assert roots == [
        ("invoke_agent helper_agent", "outer", "s-inner", None),
        ("invoke_agent helper_agent", "outer", "s-outer", None),
        ("invoke_agent helper_agent", None, None, None),
    ]


def test_explicit_arguments_win_over_the_user_block(captured: CapturedSpans) -> None:
    with (
        rollout.user(user_id="block", session_id="block-session"),
        rollout.trace("run", user_id="explicit"),
    ):
        pass
    assert _ids(captured) == [("invoke_workflow run", "explicit", "block-session", None)]


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_an_explicit_user_wins_over_a_block_with_traits(
    captured: CapturedSpans, mode: str
) -> None:
    """The block's traits describe the block's user: an explicit other user gets none."""

    @rollout.agent("helpdesk", user_id="explicit")
    def helpdesk() -> int:
        return step(1)

    @rollout.agent("ahelpdesk", user_id="explicit")
    async def ahelpdesk() -> int:
        return await astep(1)

    with rollout.user(user_id="block", traits={"plan": "pro"}, session_id="s-1"):
        assert (await ahelpdesk() if mode == "async" else helpdesk()) == 1
    spans = captured.as_dicts()
    assert {s["attributes"].get(sc.USER_ID) for s in spans} == {"explicit"}
    assert {s["attributes"].get(sc.SESSION_ID) for s in spans} == {"s-1"}
    events = [e for s in spans for e in s["events"] if e["name"] == sc.EVENT_ROLLOUT_IDENTIFY]
    assert events == []
    assert "block" not in json.dumps([s["attributes"] for s in spans])


def test_user_traits_are_recorded_as_an_identify_event(captured: CapturedSpans) -> None:
    with rollout.user(user_id="u-9", traits={"plan": "pro"}, account_id="acme"):
        agent(1)
    root = next(s for s in captured.exporter.get_finished_spans() if s.name.startswith("invoke"))
    event = next(e for e in root.events if e.name == sc.EVENT_ROLLOUT_IDENTIFY)
    attrs = event.attributes or {}
    assert attrs[sc.ROLLOUT_USER_ID] == "u-9"
    assert attrs[sc.ROLLOUT_ACCOUNT_ID] == "acme"
    assert json.loads(str(attrs[sc.ROLLOUT_USER_TRAITS])) == {"plan": "pro"}


def test_user_blocks_are_per_thread(captured: CapturedSpans) -> None:
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        with rollout.user(user_id=f"u-{n}", session_id=f"s-{n}"):
            barrier.wait(10)  # every thread is inside its block at once
            for i in range(5):
                agent(i)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    _assert_each_trace_has_one_user(captured, 8 * 5)


async def test_user_blocks_are_per_asyncio_task(captured: CapturedSpans) -> None:
    started = asyncio.Event()
    count = 0

    async def task(n: int) -> None:
        nonlocal count
        async with rollout.user(user_id=f"u-{n}", session_id=f"s-{n}"):
            count += 1
            if count == 50:
                started.set()
            await started.wait()  # all 50 blocks are open at the same time
            for i in range(3):
                await aagent(i)

    await asyncio.gather(*(task(n) for n in range(50)))
    _assert_each_trace_has_one_user(captured, 50 * 3)


def _assert_each_trace_has_one_user(captured: CapturedSpans, traces: int) -> None:
    per_trace: dict[int, set[tuple[object, object]]] = {}
    for span in captured.exporter.get_finished_spans():
        assert span.context is not None
        attrs = span.attributes or {}
        per_trace.setdefault(span.context.trace_id, set()).add(
            (attrs.get(sc.USER_ID), attrs.get(sc.SESSION_ID))
        )
    assert len(per_trace) == traces
    for users in per_trace.values():
        assert len(users) == 1
        ((user, session),) = users
        assert user is not None
        assert str(user)[2:] == str(session)[2:]


@pytest.mark.parametrize("level", ["module", "client", "trace"])
def test_identify_user_on_the_active_trace(captured: CapturedSpans, level: str) -> None:
    with rollout.trace("run") as trace:
        if level == "module":
            rollout.identify_user("u-5", traits={"plan": "free"})
        elif level == "client":
            rollout.get_client().identify_user("u-5", traits={"plan": "free"})
        else:
            trace.identify_user("u-5", traits={"plan": "free"})
        step(1)
    spans = {s.name: s for s in captured.exporter.get_finished_spans()}
    root = spans["invoke_workflow run"]
    assert any(e.name == sc.EVENT_ROLLOUT_IDENTIFY for e in root.events)
    assert (spans["execute_tool step"].attributes or {})[sc.USER_ID] == "u-5"


@pytest.mark.parametrize("by", ["trace_id", "external_trace_id", "trace_object"])
def test_identify_user_after_the_trace_ended_lands_in_that_trace(
    captured: CapturedSpans, by: str
) -> None:
    with rollout.trace("run", external_trace_id="ext-1") as trace:
        pass
    if by == "trace_id":
        rollout.identify_user("u-7", trace_id=trace.trace_id)
    elif by == "external_trace_id":
        rollout.identify_user("u-7", external_trace_id="ext-1")
    else:
        trace.identify_user("u-7")
    root, carrier = captured.exporter.get_finished_spans()
    assert carrier.name == "identify u-7"
    assert carrier.context is not None
    assert root.context is not None
    assert carrier.context.trace_id == root.context.trace_id
    assert carrier.parent is not None
    assert carrier.parent.span_id == root.context.span_id
    assert (carrier.attributes or {})[sc.USER_ID] == "u-7"
    assert any(e.name == sc.EVENT_ROLLOUT_IDENTIFY for e in carrier.events)


def test_identify_user_with_an_unknown_target_is_ignored(captured: CapturedSpans) -> None:
    rollout.identify_user("u-1", external_trace_id="never-seen")
    rollout.identify_user("u-1", trace_id="not-a-trace-id")
    rollout.identify_user("u-1")  # no active trace
    assert captured.exporter.get_finished_spans() == ()

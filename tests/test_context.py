"""Active trace tracking: `current_trace()`/`current_span()` follow OpenTelemetry's context.

Everything is asserted on what the in-memory exporter received. Each sync behaviour has
an async twin (the `mode` parameter: `with` vs `async with`, sync vs async functions).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.testing import CapturedSpans, capture_spans, span_as_dict

if TYPE_CHECKING:
    from tests.helpers import MODES, entered
else:
    from helpers import MODES, entered

FORCED_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def foreign_tracer(captured: CapturedSpans) -> Tracer:
    """A tracer of another instrumentation on the same provider."""
    provider = captured.client.tracer_provider
    assert provider is not None
    return provider.get_tracer("foreign.http")


def by_rollout_name(spans: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The one span whose Rollout name (or OTel name) is `name`."""
    found = [
        s for s in spans if s["name"] == name or s["attributes"].get(sc.ROLLOUT_SPAN_NAME) == name
    ]
    assert len(found) == 1, f"expected one span named {name!r}, found {len(found)}"
    return found[0]


def assert_child(child: dict[str, Any], parent: dict[str, Any]) -> None:
    """`child` is a direct child of `parent` in the same OTel trace."""
    assert child["trace_id"] == parent["trace_id"]
    assert child["parent_id"] == parent["span_id"]


# == current_trace / current_span in nested blocks ===========================================


@pytest.mark.parametrize("mode", MODES)
async def test_nested_blocks_set_and_restore_current(captured: CapturedSpans, mode: str) -> None:
    """trace -> span -> span: the innermost is current, each exit restores the outer one."""
    assert rollout.current_trace() is None
    assert rollout.current_span() is None
    async with entered(rollout.trace("outer"), mode) as trace:
        assert rollout.current_trace() is trace
        assert rollout.current_span() is None
        async with entered(trace.span("retrieval", name="first"), mode) as first:
            assert rollout.current_trace() is trace
            assert rollout.current_span() is first
            async with entered(rollout.span("task", name="second"), mode) as second:
                if mode == "async":
                    await asyncio.sleep(0)
                assert rollout.current_trace() is trace
                assert rollout.current_span() is second
            assert rollout.current_span() is first
        assert rollout.current_span() is None
        assert rollout.current_trace() is trace
    assert rollout.current_trace() is None
    assert rollout.current_span() is None

    spans = captured.as_dicts()
    root = by_rollout_name(spans, "outer")
    first_span = by_rollout_name(spans, "first")
    second_span = by_rollout_name(spans, "second")
    assert root["parent_id"] is None
    assert root["span_id"] == trace.span_id
    assert root["trace_id"] == trace.trace_id
    assert_child(first_span, root)
    assert_child(second_span, first_span)
    assert first_span["span_id"] == first.span_id
    assert second_span["span_id"] == second.span_id


@pytest.mark.parametrize("mode", MODES)
async def test_decorated_functions_see_their_scopes(captured: CapturedSpans, mode: str) -> None:
    """Inside a decorated @task the current span is the task's, the trace the caller's."""
    seen: dict[str, Any] = {}

    @rollout.task("sync_step")
    def sync_step() -> None:
        seen["trace"], seen["span"] = rollout.current_trace(), rollout.current_span()

    @rollout.task("async_step")
    async def async_step() -> None:
        await asyncio.sleep(0)
        seen["trace"], seen["span"] = rollout.current_trace(), rollout.current_span()

    @rollout.trace("sync_run")
    def sync_run() -> None:
        seen["outer"] = rollout.current_trace()
        sync_step()
        seen["after"] = (rollout.current_trace(), rollout.current_span())

    @rollout.trace("async_run")
    async def async_run() -> None:
        seen["outer"] = rollout.current_trace()
        await async_step()
        seen["after"] = (rollout.current_trace(), rollout.current_span())

    if mode == "sync":
        sync_run()
    else:
        await async_run()
    assert rollout.current_trace() is None
    assert rollout.current_span() is None

    spans = captured.as_dicts()
    root = by_rollout_name(spans, f"{mode}_run")
    step = by_rollout_name(spans, f"{mode}_step")
    assert_child(step, root)
    outer = seen["outer"]
    assert isinstance(outer, rollout.Trace)
    assert outer.span_id == root["span_id"]
    assert seen["trace"] is outer
    assert isinstance(seen["span"], rollout.Span)
    assert seen["span"].span_id == step["span_id"]
    assert seen["after"] == (outer, None)


async def test_async_trace_helpers_across_await(captured: CapturedSpans) -> None:
    """Helpers awaited (and called) from an async @trace see that trace after every await."""

    async def leaf() -> rollout.Trace | None:
        await asyncio.sleep(0)
        return rollout.current_trace()

    async def middle() -> list[rollout.Trace | None]:
        found = [rollout.current_trace()]
        await asyncio.sleep(0)
        found.append(await leaf())
        found.append(sync_helper())
        return found

    def sync_helper() -> rollout.Trace | None:
        return rollout.current_trace()

    @rollout.trace("across_await")
    async def run() -> tuple[rollout.Trace | None, list[rollout.Trace | None]]:
        mine = rollout.current_trace()
        found = await middle()
        await asyncio.sleep(0)
        found.append(await asyncio.create_task(leaf()))
        return mine, found

    mine, found = await run()
    assert isinstance(mine, rollout.Trace)
    assert found == [mine, mine, mine, mine]
    assert captured.by_name("across_await")["span_id"] == mine.span_id


# == asyncio tasks ============================================================================


async def test_fifty_concurrent_tasks_each_see_their_own_trace(captured: CapturedSpans) -> None:
    """50 gathered tasks, interleaved at every await, each see only their own trace."""
    results: dict[int, list[bool]] = {}

    @rollout.tool("lookup")
    async def lookup(i: int, step: int) -> int:
        await asyncio.sleep(0)
        return i * 10 + step

    async def run(i: int) -> str:
        checks: list[bool] = []
        async with rollout.trace(f"task-{i}") as trace:
            for step in range(3):
                checks.append(rollout.current_trace() is trace)
                await asyncio.sleep(0)
                async with rollout.task(f"step-{i}-{step}") as span:
                    await asyncio.sleep(0)
                    checks.append(rollout.current_trace() is trace)
                    checks.append(rollout.current_span() is span)
                    assert await lookup(i, step) == i * 10 + step
                    await asyncio.sleep(0)
                    checks.append(rollout.current_span() is span)
                checks.append(rollout.current_span() is None)
                await asyncio.sleep(0)
                checks.append(rollout.current_trace() is trace)
        checks.append(rollout.current_trace() is None)
        results[i] = checks
        return trace.trace_id

    trace_ids = await asyncio.gather(*(run(i) for i in range(50)))

    assert all(all(checks) for checks in results.values()), results
    assert len(results) == 50
    assert len(set(trace_ids)) == 50
    spans = captured.as_dicts()
    roots = [s for s in spans if s["type"] == "trace"]
    assert len(roots) == 50
    assert {s["trace_id"] for s in roots} == set(trace_ids)
    assert len(spans) == 50 + 150 + 150
    for i in range(50):
        root = by_rollout_name(spans, f"task-{i}")
        assert root["parent_id"] is None
        steps = [by_rollout_name(spans, f"step-{i}-{step}") for step in range(3)]
        for step in steps:
            assert_child(step, root)
        tools = [
            s
            for s in spans
            if s["type"] == "tool" and s["parent_id"] in {x["span_id"] for x in steps}
        ]
        assert len(tools) == 3
        assert {t["trace_id"] for t in tools} == {root["trace_id"]}


# == threads ==================================================================================


def _thread_body(i: int, barrier: threading.Barrier, checks: list[bool]) -> str:
    """One thread's sync trace, synchronised with the others at every step."""
    with rollout.trace(f"thread-{i}") as trace:
        barrier.wait()
        checks.append(rollout.current_trace() is trace)
        with trace.span("task", name=f"work-{i}") as span:
            barrier.wait()
            checks.append(rollout.current_trace() is trace)
            checks.append(rollout.current_span() is span)
        barrier.wait()
        checks.append(rollout.current_span() is None)
        checks.append(rollout.current_trace() is trace)
    checks.append(rollout.current_trace() is None)
    return trace.trace_id


async def _async_thread_body(i: int, barrier: threading.Barrier, checks: list[bool]) -> str:
    """One thread's async trace, on that thread's own event loop."""
    async with rollout.trace(f"thread-{i}") as trace:
        barrier.wait()
        await asyncio.sleep(0)
        checks.append(rollout.current_trace() is trace)
        async with trace.span("task", name=f"work-{i}") as span:
            barrier.wait()
            await asyncio.sleep(0)
            checks.append(rollout.current_trace() is trace)
            checks.append(rollout.current_span() is span)
        barrier.wait()
        checks.append(rollout.current_span() is None)
        checks.append(rollout.current_trace() is trace)
    checks.append(rollout.current_trace() is None)
    return trace.trace_id


@pytest.mark.parametrize("mode", MODES)
def test_eight_interleaved_threads_each_see_their_own_trace(
    captured: CapturedSpans, mode: str
) -> None:
    """8 real threads, held in step by a barrier, each see only their own trace."""
    count = 8
    barrier = threading.Barrier(count, timeout=10)
    checks: dict[int, list[bool]] = {i: [] for i in range(count)}
    trace_ids: dict[int, str] = {}
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            if mode == "sync":
                trace_ids[i] = _thread_body(i, barrier, checks[i])
            else:
                trace_ids[i] = asyncio.run(_async_thread_body(i, barrier, checks[i]))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert all(len(c) == 6 and all(c) for c in checks.values()), checks
    assert len(set(trace_ids.values())) == count

    spans = captured.as_dicts()
    assert len(spans) == 2 * count
    for i in range(count):
        root = by_rollout_name(spans, f"thread-{i}")
        assert root["trace_id"] == trace_ids[i]
        assert root["parent_id"] is None
        assert_child(by_rollout_name(spans, f"work-{i}"), root)


@pytest.mark.parametrize("mode", MODES)
async def test_plain_thread_does_not_inherit_the_trace(captured: CapturedSpans, mode: str) -> None:
    """A thread started inside a trace without carrying context sees no trace, records nothing."""
    seen: dict[str, Any] = {}

    @rollout.tool("untraced_tool")
    def untraced_tool() -> int:
        return 7

    def target() -> None:
        seen["trace"] = rollout.current_trace()
        seen["span"] = rollout.current_span()
        seen["result"] = untraced_tool()

    async with entered(rollout.trace("parent"), mode) as trace:
        assert rollout.current_trace() is trace
        thread = threading.Thread(target=target)
        thread.start()
        thread.join(timeout=10)

    assert seen == {"trace": None, "span": None, "result": 7}
    assert [s["name"] for s in captured.as_dicts()] == ["invoke_workflow parent"]


# == bind_context =============================================================================


@pytest.mark.parametrize("mode", MODES)
async def test_bind_context_carries_the_trace_into_a_pool_worker(
    captured: CapturedSpans, mode: str
) -> None:
    """A @tool run through bind_context in a pool worker is the trace's child; unbound, untraced."""
    seen: list[rollout.Trace | None] = []

    @rollout.tool("fetch")
    def fetch(url: str) -> str:
        seen.append(rollout.current_trace())
        return url.upper()

    with ThreadPoolExecutor(max_workers=1) as pool:
        async with entered(rollout.trace("pooled"), mode) as trace:
            if mode == "sync":
                bound = pool.submit(rollout.bind_context(fetch), "bound").result(timeout=10)
                unbound = pool.submit(fetch, "unbound").result(timeout=10)
            else:
                loop = asyncio.get_running_loop()
                bound = await loop.run_in_executor(pool, rollout.bind_context(fetch), "bound")
                unbound = await loop.run_in_executor(pool, fetch, "unbound")
        after = pool.submit(rollout.current_trace).result(timeout=10)

    assert (bound, unbound) == ("BOUND", "UNBOUND")
    assert seen == [trace, None]
    assert after is None, "the worker thread's context was restored after the bound call"
    spans = captured.as_dicts()
    assert len(spans) == 2
    tool = captured.by_name("execute_tool fetch")
    assert_child(tool, captured.by_name("pooled"))
    assert tool["attributes"][sc.INPUT_VALUE] == '{"url": "bound"}'


async def test_bind_context_carries_the_trace_into_an_async_callable(
    captured: CapturedSpans,
) -> None:
    """An async callable bound here and run on another thread's event loop is the child."""

    @rollout.tool("afetch")
    async def afetch(url: str) -> str:
        await asyncio.sleep(0)
        return url.upper()

    with ThreadPoolExecutor(max_workers=1) as pool, rollout.trace("pooled"):
        bound = rollout.bind_context(afetch)
        assert inspect.iscoroutinefunction(bound)
        result = pool.submit(asyncio.run, bound("x")).result(timeout=10)
        unbound = pool.submit(asyncio.run, afetch("y")).result(timeout=10)
    assert (result, unbound) == ("X", "Y")
    spans = captured.as_dicts()
    assert len(spans) == 2
    assert_child(captured.by_name("execute_tool afetch"), captured.by_name("pooled"))


# == foreign OpenTelemetry spans ==============================================================


@pytest.mark.parametrize("mode", MODES)
async def test_trace_inside_foreign_span_is_its_child(captured: CapturedSpans, mode: str) -> None:
    """A Rollout trace opened inside a foreign HTTP span is its child in the same OTel trace."""
    tracer = foreign_tracer(captured)
    with tracer.start_as_current_span("HTTP GET /chat", kind=otel_trace.SpanKind.SERVER) as http:
        async with entered(rollout.trace("chat"), mode) as trace:
            assert rollout.current_trace() is trace
            with trace.span("retrieval", name="docs"):
                pass
    http_ctx = http.get_span_context()

    spans = captured.as_dicts()
    server = by_rollout_name(spans, "HTTP GET /chat")
    root = by_rollout_name(spans, "chat")
    assert server["scope"] == "foreign.http"
    assert server["kind"] == "SERVER"
    assert root["scope"] == "mv37.rollout"
    assert root["trace_id"] == f"{http_ctx.trace_id:032x}" == trace.trace_id
    assert_child(root, server)
    assert_child(by_rollout_name(spans, "docs"), root)


@pytest.mark.parametrize("mode", MODES)
async def test_foreign_span_inside_rollout_span_is_its_child(
    captured: CapturedSpans, mode: str
) -> None:
    """A foreign span inside a Rollout span is its child and current_trace() stays ours."""
    tracer = foreign_tracer(captured)
    seen: dict[str, Any] = {}
    async with entered(rollout.trace("agent_run"), mode) as trace:
        async with entered(trace.span("retrieval", name="search"), mode):
            with tracer.start_as_current_span("SELECT docs"):
                if mode == "async":
                    await asyncio.sleep(0)
                seen["trace"] = rollout.current_trace()
                async with entered(rollout.task("rerank"), mode):
                    pass
        with tracer.start_as_current_span("POST /audit"):
            seen["direct"] = rollout.current_trace()

    assert seen == {"trace": trace, "direct": trace}
    spans = captured.as_dicts()
    root = by_rollout_name(spans, "agent_run")
    search = by_rollout_name(spans, "search")
    db = by_rollout_name(spans, "SELECT docs")
    assert db["scope"] == "foreign.http"
    assert_child(db, search)
    assert_child(by_rollout_name(spans, "rerank"), db)
    assert_child(by_rollout_name(spans, "POST /audit"), root)


@pytest.mark.parametrize("mode", MODES)
async def test_trace_context_is_copied_onto_foreign_spans(
    captured: CapturedSpans, mode: str
) -> None:
    """user/session/conversation ids of rollout.trace(...) are stamped on foreign spans."""
    tracer = foreign_tracer(captured)
    opened = rollout.trace("chat", user_id="u-1", session_id="s-9", conversation_id="c-3")
    async with entered(opened, mode) as trace:
        with tracer.start_as_current_span("HTTP POST /llm"):
            pass
        async with entered(trace.span("task", name="inner"), mode):
            with tracer.start_as_current_span("SELECT orders"):
                pass

    spans = captured.as_dicts()
    for name in ("HTTP POST /llm", "SELECT orders"):
        attrs = by_rollout_name(spans, name)["attributes"]
        assert attrs[sc.ROLLOUT_USER_ID] == "u-1"
        assert attrs[sc.USER_ID] == "u-1"
        assert attrs[sc.ROLLOUT_SESSION_ID] == "s-9"
        assert attrs[sc.SESSION_ID] == "s-9"
        assert attrs[sc.ROLLOUT_CONVERSATION_ID] == "c-3"
        assert attrs[sc.GEN_AI_CONVERSATION_ID] == "c-3"
    root = by_rollout_name(spans, "chat")["attributes"]
    assert root[sc.ROLLOUT_USER_ID] == "u-1"
    assert root[sc.SESSION_ID] == "s-9"


@pytest.mark.parametrize("mode", MODES)
async def test_agent_context_is_copied_onto_foreign_spans(
    captured: CapturedSpans, mode: str
) -> None:
    """@agent(user_id=...) stamps the user and the agent name on foreign spans inside it."""
    tracer = foreign_tracer(captured)

    @rollout.agent("support_agent", user_id="u-7", session_id="s-1")
    def sync_agent() -> None:
        with tracer.start_as_current_span("HTTP GET /kb"):
            pass

    @rollout.agent("support_agent", user_id="u-7", session_id="s-1")
    async def async_agent() -> None:
        await asyncio.sleep(0)
        with tracer.start_as_current_span("HTTP GET /kb"):
            await asyncio.sleep(0)

    if mode == "sync":
        sync_agent()
    else:
        await async_agent()

    foreign = captured.by_name("HTTP GET /kb")
    attrs = foreign["attributes"]
    assert attrs[sc.ROLLOUT_USER_ID] == "u-7"
    assert attrs[sc.USER_ID] == "u-7"
    assert attrs[sc.ROLLOUT_SESSION_ID] == "s-1"
    assert attrs[sc.SESSION_ID] == "s-1"
    assert attrs[sc.ROLLOUT_AGENT_NAME] == "support_agent"
    assert attrs[sc.GEN_AI_AGENT_NAME] == "support_agent"
    assert attrs[sc.AGENT_NAME] == "support_agent"
    assert_child(foreign, captured.by_name("invoke_agent support_agent"))


@pytest.mark.parametrize("mode", MODES)
async def test_identify_user_reaches_foreign_spans_started_afterwards(
    captured: CapturedSpans, mode: str
) -> None:
    """A user identified mid-trace is stamped on foreign spans started after it."""
    tracer = foreign_tracer(captured)
    async with entered(rollout.trace("late_user"), mode):
        with tracer.start_as_current_span("before"):
            pass
        rollout.identify_user("u-late", account_id="acct-1")
        with tracer.start_as_current_span("after"):
            pass

    assert sc.ROLLOUT_USER_ID not in captured.by_name("before")["attributes"]
    after = captured.by_name("after")["attributes"]
    assert after[sc.ROLLOUT_USER_ID] == "u-late"
    assert after[sc.USER_ID] == "u-late"
    assert after[sc.ROLLOUT_ACCOUNT_ID] == "acct-1"


@contextmanager
def user_provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A user's own SDK provider with its own in-memory exporter."""
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider, exporter
    finally:
        provider.shutdown()


@pytest.mark.parametrize("mode", MODES)
async def test_user_tracer_provider_gets_our_spans_and_nothing_global(mode: str) -> None:
    """With tracer_provider=, our and foreign spans land in the user's exporter; nothing global."""
    with (
        user_provider() as (provider, user_exporter),
        capture_spans(tracer_provider=provider) as captured,
    ):
        assert captured.client.tracer_provider is provider
        tracer = provider.get_tracer("foreign.http")
        async with (
            entered(rollout.trace("mine", user_id="u-2"), mode) as trace,
            entered(trace.llm("answer", model="gpt-4o"), mode),
        ):
            with tracer.start_as_current_span("HTTP POST /v1/chat"):
                pass
        assert not isinstance(otel_trace.get_tracer_provider(), TracerProvider)
        assert isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider)
        assert otel_trace.get_tracer_provider() is not provider

    spans = [span_as_dict(s) for s in user_exporter.get_finished_spans()]
    assert sorted(s["name"] for s in spans) == [
        "HTTP POST /v1/chat",
        "chat gpt-4o",
        "invoke_workflow mine",
    ]
    root = by_rollout_name(spans, "mine")
    llm = by_rollout_name(spans, "answer")
    foreign = by_rollout_name(spans, "HTTP POST /v1/chat")
    assert root["scope"] == "mv37.rollout"
    assert_child(llm, root)
    assert_child(foreign, llm)
    assert foreign["attributes"][sc.ROLLOUT_USER_ID] == "u-2"
    assert trace.trace_id == root["trace_id"]


# == nested traces ============================================================================


@pytest.mark.parametrize("mode", MODES)
async def test_nested_trace_is_a_child_and_inherits_context(
    captured: CapturedSpans, mode: str
) -> None:
    """A @trace inside a trace is its child span, inherits user/session, and restores the outer."""
    seen: dict[str, Any] = {}

    @rollout.trace("inner")
    def sync_inner() -> None:
        seen["inside"] = rollout.current_trace()

    @rollout.trace("inner")
    async def async_inner() -> None:
        await asyncio.sleep(0)
        seen["inside"] = rollout.current_trace()

    async with entered(rollout.trace("outer", user_id="u-1", session_id="s-1"), mode) as outer:
        if mode == "sync":
            sync_inner()
        else:
            await async_inner()
        seen["after"] = rollout.current_trace()
    assert rollout.current_trace() is None

    inner = seen["inside"]
    assert isinstance(inner, rollout.Trace)
    assert inner is not outer
    assert inner.name == "inner"
    assert seen["after"] is outer
    outer_span = captured.by_name("outer")
    inner_span = captured.by_name("inner")
    assert_child(inner_span, outer_span)
    assert inner_span["span_id"] == inner.span_id
    assert inner.trace_id == outer.trace_id
    attrs = inner_span["attributes"]
    assert attrs[sc.ROLLOUT_USER_ID] == "u-1"
    assert attrs[sc.USER_ID] == "u-1"
    assert attrs[sc.ROLLOUT_SESSION_ID] == "s-1"
    assert attrs[sc.SESSION_ID] == "s-1"
    assert attrs[sc.ROLLOUT_SPAN_TYPE] == "trace"


# == link_foreign_parent ======================================================================


@pytest.mark.parametrize("mode", MODES)
async def test_link_foreign_parent_starts_a_linked_root(mode: str) -> None:
    """With link_foreign_parent=True a trace inside a foreign span is a new, linked root."""
    with capture_spans(link_foreign_parent=True) as captured:
        tracer = foreign_tracer(captured)
        with tracer.start_as_current_span("HTTP GET /chat") as http:
            async with (
                entered(rollout.trace("linked"), mode) as trace,
                entered(rollout.trace("nested"), mode),
            ):
                pass
        raw = {s.name: s for s in captured.spans()}

    http_ctx = http.get_span_context()
    root: ReadableSpan = raw["invoke_workflow linked"]
    root_ctx = root.get_span_context()
    assert root_ctx is not None
    assert root.parent is None
    assert root_ctx.trace_id != http_ctx.trace_id
    assert f"{root_ctx.trace_id:032x}" == trace.trace_id
    assert len(root.links) == 1
    assert root.links[0].context.trace_id == http_ctx.trace_id
    assert root.links[0].context.span_id == http_ctx.span_id
    nested = span_as_dict(raw["invoke_workflow nested"])
    assert_child(nested, span_as_dict(root))
    assert nested["links"] == []


# == caller-chosen trace id ===================================================================


@pytest.mark.parametrize("mode", MODES)
async def test_trace_with_explicit_trace_id(captured: CapturedSpans, mode: str) -> None:
    """client.trace(..., trace_id=<32 hex>) produces a trace with exactly that id."""
    async with entered(captured.client.trace("pinned", trace_id=FORCED_TRACE_ID), mode) as trace:
        assert trace.trace_id == FORCED_TRACE_ID
        async with entered(trace.span("task", name="child"), mode):
            pass
    async with entered(captured.client.trace("free"), mode) as free:
        pass

    spans = captured.as_dicts()
    root = by_rollout_name(spans, "pinned")
    assert root["trace_id"] == FORCED_TRACE_ID
    assert root["parent_id"] is None
    assert_child(by_rollout_name(spans, "child"), root)
    assert by_rollout_name(spans, "free")["trace_id"] == free.trace_id != FORCED_TRACE_ID


# == one trace object entered by concurrent callers ============================================


async def test_shared_trace_factory_in_concurrent_tasks(captured: CapturedSpans) -> None:
    """One rollout.trace("x") object entered by concurrent tasks gives each its own trace."""
    shared = rollout.trace("shared")
    seen: dict[int, list[bool]] = {}

    async def run(i: int) -> str:
        async with shared as trace:
            checks = [rollout.current_trace() is trace]
            await asyncio.sleep(0)
            checks.append(rollout.current_trace() is trace)
            async with rollout.task(f"step-{i}"):
                await asyncio.sleep(0)
            checks.append(rollout.current_trace() is trace)
        checks.append(rollout.current_trace() is None)
        seen[i] = checks
        return trace.trace_id

    trace_ids = await asyncio.gather(*(run(i) for i in range(5)))
    assert all(all(c) for c in seen.values()), seen
    assert len(set(trace_ids)) == 5
    spans = captured.as_dicts()
    roots = {s["trace_id"]: s for s in spans if s["type"] == "trace"}
    assert set(roots) == set(trace_ids)
    for i in range(5):
        step = by_rollout_name(spans, f"step-{i}")
        assert_child(step, roots[step["trace_id"]])


def test_shared_trace_factory_in_concurrent_threads(captured: CapturedSpans) -> None:
    """One rollout.trace("x") object entered by interleaved threads gives each its own trace."""
    shared = rollout.trace("shared")
    count = 4
    barrier = threading.Barrier(count, timeout=10)
    seen: dict[int, list[bool]] = {}
    trace_ids: dict[int, str] = {}

    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            with shared as trace:
                barrier.wait()
                checks = [rollout.current_trace() is trace]
                with rollout.task(f"step-{i}"):
                    barrier.wait()
                checks.append(rollout.current_trace() is trace)
                barrier.wait()
            checks.append(rollout.current_trace() is None)
            seen[i] = checks
            trace_ids[i] = trace.trace_id
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(seen) == count
    assert all(all(c) for c in seen.values()), seen
    assert len(set(trace_ids.values())) == count
    spans = captured.as_dicts()
    roots = {s["trace_id"]: s for s in spans if s["type"] == "trace"}
    assert set(roots) == set(trace_ids.values())
    for i in range(count):
        step = by_rollout_name(spans, f"step-{i}")
        assert_child(step, roots[step["trace_id"]])

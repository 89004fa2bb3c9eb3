"""The privacy pipeline: default scrubbing, scrubber, before_send, PII, capture switches.

Assertions are on what the exporter receives (in-memory in sync mode, and the bytes a
real OTLP receiver decodes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.pipeline._scrub import REDACTED, Redactor
from mv37.rollout.testing import OTLPReceiver, capture_spans

SECRETS = {
    "openai": "sk-proj-" + "A1b2C3d4E5f6G7h8J9k0L1m2",
    "bearer": "Bearer " + "abcDEF123456ghiJKL",
    "aws": "AKIA" + "ABCDEFGHIJKLMNOP",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "github": "ghp_" + "a" * 36,
}
SECRET_KEYS = (
    "password",
    "api_key",
    "apiKey",
    "client_secret",
    "access_token",
    "Authorization",
    "session_token",
    "private_key",
    "cookie",
    "ssn",
    "credit_card",
    "card_number",
)


def _attrs(exporter: InMemorySpanExporter, name: str) -> dict[str, Any]:
    span = next(s for s in exporter.get_finished_spans() if s.name == name)
    return dict(span.attributes or {})


def _all_text(exporter: InMemorySpanExporter) -> str:
    parts: list[str] = []
    for span in exporter.get_finished_spans():
        parts.append(span.name)
        parts.extend(f"{k}={v!s}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            parts.extend(f"{k}={v!s}" for k, v in (event.attributes or {}).items())
    return "\n".join(parts)


# -- the redactor ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_looking_keys_are_secret(key: str) -> None:
    assert Redactor().secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "gen_ai.usage.input_tokens",
        "llm.token_count.prompt",
        "max_tokens",
        "author",
        "passenger_count",
        "keyboard",
        "input.value",
        "tool.name",
        "rollout.attributes.region",
    ],
)
def test_ordinary_keys_are_not_secret(key: str) -> None:
    assert not Redactor().secret_key(key)


def test_user_attribute_keys_under_our_prefix_are_checked() -> None:
    assert Redactor().secret_key("rollout.attributes.db_password")


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_credentials_are_masked_inside_text(name: str) -> None:
    text, count = Redactor().text(f"calling with {SECRETS[name]} now")
    assert SECRETS[name].split()[-1] not in text
    assert count == 1
    assert REDACTED in text


def test_json_payload_keys_are_masked_at_any_depth_and_json_stays_valid() -> None:
    payload = {"user": "ann", "auth": {"token": "t0k3n", "scopes": ["a"]}, "items": [{"pwd": 1}]}
    text, count = Redactor().text(json.dumps(payload))
    assert json.loads(text) == {"user": "ann", "auth": REDACTED, "items": [{"pwd": REDACTED}]}
    assert count == 2


def test_truncated_json_still_masks_scalar_secrets() -> None:
    text, count = Redactor().text('{"name": "x", "password": "hunter2", "rest": "…[trunc')
    assert "hunter2" not in text
    assert count == 1


def test_max_tokens_and_other_usage_keys_survive() -> None:
    payload = json.dumps({"max_tokens": 100, "input_tokens": 5, "author": "ann"})
    assert Redactor().text(payload) == (payload, 0)


def test_extra_keys_patterns_and_allow_list() -> None:
    redactor = Redactor(
        extra_keys=["tenant_pin"], extra_patterns=[r"ACME-\d{6}"], allow_keys=["Token"]
    )
    assert redactor.secret_key("tenant_pin")
    assert not redactor.secret_key("token")
    assert redactor.text("order ACME-123456 shipped") == (f"order {REDACTED} shipped", 1)


def test_disabled_default_rules_change_nothing_but_extras_still_apply() -> None:
    redactor = Redactor(enabled=False, extra_patterns=[r"ACME-\d{6}"], send_default_pii=True)
    assert redactor.text(SECRETS["openai"]) == (SECRETS["openai"], 0)
    assert not redactor.secret_key("password")
    assert redactor.text("ACME-000001")[1] == 1


# -- property: no planted secret survives ------------------------------------------------------

_plain = st.text(alphabet=string.ascii_letters + " .,-", max_size=20)
_safe_keys = st.sampled_from(["query", "items", "name", "id", "city", "notes", "data", "value"])


def _tree(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_safe_keys, children, max_size=4)
    )


_payloads = st.recursive(
    st.one_of(_plain, st.integers(), st.booleans(), st.none()), _tree, max_leaves=25
)


@st.composite
def _planted(draw: st.DrawFn) -> tuple[Any, list[str]]:
    """A random nested payload with 1-3 secrets planted at random depths."""
    tree = draw(_payloads)
    planted: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            secret = f"hunter{draw(st.integers(10_000, 99_999))}"
            leaf: Any = {draw(st.sampled_from(SECRET_KEYS)): secret}
        else:
            secret = SECRETS[draw(st.sampled_from(sorted(SECRETS)))]
            leaf = f"here: {secret} (do not log)"
        planted.append(secret.split()[-1])
        tree = _plant(tree, leaf, draw(st.integers(0, 5)), draw)
    return tree, planted


def _plant(tree: Any, leaf: Any, depth: int, draw: st.DrawFn) -> Any:
    if depth == 0 or not isinstance(tree, (dict, list)) or not tree:
        return {"data": tree, "nested": leaf} if depth else [tree, leaf]
    if isinstance(tree, dict):
        key = draw(st.sampled_from(sorted(tree)))
        return {**tree, key: _plant(tree[key], leaf, depth - 1, draw)}
    index = draw(st.integers(0, len(tree) - 1))
    return [*tree[:index], _plant(tree[index], leaf, depth - 1, draw), *tree[index + 1 :]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_planted())
def test_no_planted_secret_survives_in_any_exported_attribute(
    planted: tuple[Any, list[str]],
) -> None:
    tree, secrets = planted

    @rollout.tool("handle")
    def handle(payload: Any) -> Any:
        return payload

    with capture_spans() as captured:
        with rollout.trace("run", attributes={"note": "x"}) as trace:
            handle(tree)
            trace.message(role="user", content=tree)
        text = _all_text(captured.exporter)
    for secret in secrets:
        assert secret not in text


def test_no_secret_reaches_the_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    with OTLPReceiver() as receiver:
        rollout.init(base_url=receiver.url)

        @rollout.tool("login")
        def login(user: str, password: str, headers: dict[str, str]) -> dict[str, str]:
            return {"session_token": "s3ss10n-v4lue", "note": f"used {SECRETS['openai']}"}

        @rollout.agent("support")
        def agent() -> None:
            login("ann", "hunter2-pass", {"Authorization": SECRETS["bearer"]})

        agent()
        assert rollout.flush()
        spans = receiver.wait_for_spans(2)
        body = receiver.all_bytes()
    for secret in ("hunter2-pass", "s3ss10n-v4lue", SECRETS["openai"], "abcDEF123456ghiJKL"):
        assert secret.encode() not in body
    tool = next(s for s in spans if s.name == "execute_tool login")
    assert tool.attributes[sc.ROLLOUT_SCRUB_COUNT] == 4
    assert json.loads(str(tool.attributes[sc.INPUT_VALUE]))["password"] == REDACTED


def test_attribute_keys_of_foreign_spans_are_scrubbed() -> None:
    with capture_spans() as captured:
        tracer = otel_trace.get_tracer("http.client")
        with rollout.trace("run"), tracer.start_as_current_span("GET /x") as span:
            span.set_attribute("http.request.header.authorization", "Basic abc")
            span.set_attribute("url.full", f"https://api/x?key={SECRETS['aws']}")
        attrs = _attrs(captured.exporter, "GET /x")
    assert attrs["http.request.header.authorization"] == REDACTED
    assert SECRETS["aws"] not in str(attrs["url.full"])
    assert attrs[sc.ROLLOUT_SCRUB_COUNT] == 2


def test_default_scrubbing_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_DEFAULT_SCRUBBING", "false")
    with capture_spans() as captured:
        with rollout.trace("run", attributes={"password": "p4ss"}):
            pass
        attrs = _attrs(captured.exporter, "invoke_workflow run")
    assert attrs["rollout.attributes.password"] == "p4ss"
    assert sc.ROLLOUT_SCRUB_COUNT not in attrs


# -- PII traits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("send_pii", [False, True])
def test_user_traits_pii_is_masked_unless_opted_in(send_pii: bool) -> None:
    traits = {
        "email": "ann@example.com",
        "phone": "+1 555 0100",
        "name": "Ann",
        "plan": "pro",
        "ip_address": "10.0.0.1",
        "referrer": "mail from bob@example.org",
    }
    with capture_spans(send_default_pii=send_pii) as captured:
        with rollout.trace("run") as trace:
            trace.identify_user("u-1", traits=traits)
        span = captured.exporter.get_finished_spans()[0]
    event = next(e for e in span.events if e.name == sc.EVENT_ROLLOUT_IDENTIFY)
    recorded = json.loads(str((event.attributes or {})[sc.ROLLOUT_USER_TRAITS]))
    if send_pii:
        assert recorded == traits
    else:
        assert recorded == {
            "email": REDACTED,
            "phone": REDACTED,
            "name": REDACTED,
            "plan": "pro",
            "ip_address": REDACTED,
            "referrer": f"mail from {REDACTED}",
        }
    assert (event.attributes or {})[sc.ROLLOUT_USER_ID] == "u-1"


# -- scrubber and before_send --------------------------------------------------------------------


def _run_agent(mode: str) -> str:
    @rollout.tool("lookup")
    def lookup(order: int) -> dict[str, int]:
        return {"order": order}

    @rollout.tool("alookup")
    async def alookup(order: int) -> dict[str, int]:
        return {"order": order}

    @rollout.agent("support")
    def agent() -> str:
        lookup(1)
        return "done"

    @rollout.agent("support")
    async def aagent() -> str:
        await alookup(1)
        return "done"

    return asyncio.run(aagent()) if mode == "async" else agent()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_callbacks_see_a_plain_view_and_their_edits_reach_the_exporter(mode: str) -> None:
    seen: list[dict[str, Any]] = []

    def scrubber(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(json.loads(json.dumps(event, default=str)))
        event["attributes"]["team"] = "search"
        event["attributes"].pop(sc.INPUT_VALUE, None)
        return event

    def before_send(event: dict[str, Any]) -> dict[str, Any] | None:
        if event["type"] == "tool":
            return None
        event["name"] = event["name"] + " (edited)"
        event["events"] = []
        return event

    with capture_spans(scrubber=scrubber, before_send=before_send) as captured:
        assert _run_agent(mode) == "done"
        names = [span.name for span in captured.exporter.get_finished_spans()]
        agent = captured.exporter.get_finished_spans()[0]
        stats = rollout.stats()
    assert names == ["invoke_agent support (edited)"]
    assert (agent.attributes or {})["team"] == "search"
    assert sc.INPUT_VALUE not in (agent.attributes or {})
    assert stats.dropped["scrubbed"] == 1
    assert {view["type"] for view in seen} == {"agent", "tool"}
    view = seen[0]
    assert set(view) >= {
        "name",
        "trace_id",
        "span_id",
        "parent_span_id",
        "type",
        "attributes",
        "events",
    }
    assert len(view["trace_id"]) == 32
    assert len(view["span_id"]) == 16


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_raising_scrubber_drops_the_span_and_never_reaches_user_code(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    def scrubber(event: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError(f"boom {SECRETS['openai']}")

    with (
        caplog.at_level(logging.WARNING, logger="mv37.rollout"),
        capture_spans(scrubber=scrubber) as captured,
    ):
        assert _run_agent(mode) == "done"
        assert _run_agent(mode) == "done"
        assert captured.exporter.get_finished_spans() == ()
        assert rollout.stats().dropped["scrubbed"] == 4
    warnings = [r for r in caplog.records if "scrubber" in r.getMessage()]
    assert len(warnings) == 1
    assert SECRETS["openai"] not in caplog.text


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_raising_before_send_lets_the_scrubbed_span_through(mode: str) -> None:
    def before_send(event: dict[str, Any]) -> dict[str, Any] | None:
        raise ValueError("nope")

    with capture_spans(before_send=before_send) as captured:
        with rollout.trace("run", attributes={"password": "p4ss"}):
            pass
        assert _run_agent(mode) == "done"
        attrs = _attrs(captured.exporter, "invoke_workflow run")
    assert attrs["rollout.attributes.password"] == REDACTED


def test_before_send_runs_after_the_scrubber_and_sees_scrubbed_data() -> None:
    order: list[str] = []

    def scrubber(event: dict[str, Any]) -> dict[str, Any]:
        order.append("scrubber")
        assert event["attributes"]["rollout.attributes.password"] == REDACTED
        event["attributes"]["rollout.attributes.email"] = "[EMAIL]"
        return event

    def before_send(event: dict[str, Any]) -> dict[str, Any]:
        order.append("before_send")
        assert event["attributes"]["rollout.attributes.email"] == "[EMAIL]"
        return event

    with (
        capture_spans(scrubber=scrubber, before_send=before_send),
        rollout.trace("run", attributes={"password": "x", "email": "a@b.c"}),
    ):
        pass
    assert order == ["scrubber", "before_send"]


def test_callbacks_apply_to_foreign_spans_too() -> None:
    def before_send(event: dict[str, Any]) -> dict[str, Any] | None:
        return None if event["scope"] == "health" else event

    with capture_spans(before_send=before_send) as captured:
        with (
            rollout.trace("run"),
            otel_trace.get_tracer("health").start_as_current_span("GET /health"),
        ):
            pass
        names = [s.name for s in captured.exporter.get_finished_spans()]
    assert names == ["invoke_workflow run"]


@pytest.mark.parametrize(
    ("option", "value"), [("scrubber", "not callable"), ("scrub_patterns", ["(unclosed"])]
)
def test_bad_privacy_options_are_value_errors(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        rollout.init(**{option: value})


# -- capture switches ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "env", "has_input", "has_output"),
    [
        ({}, {}, True, True),
        ({"capture_inputs": False}, {}, False, True),
        ({"capture_outputs": False}, {}, True, False),
        ({}, {"ROLLOUT_CAPTURE_INPUTS": "0", "ROLLOUT_CAPTURE_OUTPUTS": "off"}, False, False),
    ],
)
def test_global_capture_switches(
    monkeypatch: pytest.MonkeyPatch,
    config: dict[str, Any],
    env: dict[str, str],
    has_input: bool,
    has_output: bool,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with capture_spans(**config) as captured:
        assert _run_agent("sync") == "done"
        spans = captured.exporter.get_finished_spans()
    for span in spans:
        attrs = span.attributes or {}
        assert (sc.INPUT_VALUE in attrs) is has_input, span.name
        assert (sc.OUTPUT_VALUE in attrs) is has_output, span.name


@pytest.mark.parametrize(
    ("config", "env", "content"),
    [
        ({}, {}, True),
        ({}, {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"}, False),
        (
            {"capture_content": True},
            {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"},
            True,
        ),
        ({}, {"ROLLOUT_CAPTURE_CONTENT": "no"}, False),
    ],
)
def test_llm_content_follows_the_content_switch(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, Any], env: dict[str, str], content: bool
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with capture_spans(**config) as captured:
        with rollout.trace("run") as trace, trace.llm("chat", model="m") as llm:
            llm.record_input([{"role": "user", "content": "hi"}])
            llm.record_output("hello")
        attrs = _attrs(captured.exporter, "chat m")
    assert (sc.INPUT_VALUE in attrs) is content
    assert (sc.OUTPUT_VALUE in attrs) is content


def test_the_console_tree_is_scrubbed_too(capsys: pytest.CaptureFixture[str]) -> None:
    rollout.init(console=True)

    @rollout.tool("login")
    def login(user: str, password: str) -> str:
        return f"ok {SECRETS['openai']}"

    with rollout.trace("run"):
        login("ann", "hunter2-secret")
    err = capsys.readouterr().err
    assert "login" in err
    assert "hunter2-secret" not in err
    assert SECRETS["openai"] not in err


def test_stream_chunks_keep_no_text_when_content_is_off() -> None:
    with capture_spans(capture_content=False, capture_stream_chunks=True) as captured:
        with rollout.trace("run") as trace, trace.llm("chat", model="m", stream=True) as llm:
            llm.record_chunk("secret ")
            llm.record_chunk("words")
        attrs = _attrs(captured.exporter, "chat m")
        span = next(s for s in captured.exporter.get_finished_spans() if s.name == "chat m")
    assert attrs[sc.ROLLOUT_LLM_STREAM_CHUNK_COUNT] == 2
    assert "secret" not in str(attrs.get(sc.ROLLOUT_LLM_STREAM_PREVIEW, ""))
    assert not [e for e in span.events if e.name == sc.EVENT_ROLLOUT_LLM_CHUNK]


def test_short_traits_are_still_masked() -> None:
    with capture_spans() as captured:
        with rollout.trace("run") as trace:
            trace.identify_user("u-1", traits={"name": "A"}, account_traits={"ip": "1"})
        span = captured.exporter.get_finished_spans()[0]
    event = next(e for e in span.events if e.name == sc.EVENT_ROLLOUT_IDENTIFY)
    attrs = event.attributes or {}
    assert json.loads(str(attrs[sc.ROLLOUT_USER_TRAITS])) == {"name": REDACTED}
    assert json.loads(str(attrs[sc.ROLLOUT_ACCOUNT_TRAITS])) == {"ip": REDACTED}

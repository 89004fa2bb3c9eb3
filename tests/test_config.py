"""Configuration: arguments, `ROLLOUT_*` variables, precedence, validation, secrecy.

Every argument of API.md's `Rollout(...)` table (plus the OTel-native options of the
README) exists on `RolloutConfig` and is accepted by `resolve_config`, `Rollout` and
`rollout.init`; argument > environment variable > default; empty strings are unset.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout
from mv37.rollout import Rollout, RolloutConfig, resolve_config
from mv37.rollout import semconv as sc

SECRET = "sk-live-7f3c9a1e5b2d4c6e8a0b"

# API.md's `Rollout(...)` table, one row per argument, and the env var it reads.
API_ARGUMENTS: dict[str, str | None] = {
    "api_key": "ROLLOUT_API_KEY",
    "base_url": "ROLLOUT_BASE_URL",
    "environment": "ROLLOUT_ENVIRONMENT",
    "release": "ROLLOUT_RELEASE",
    "service_name": "ROLLOUT_SERVICE_NAME",
    "agent_name": "ROLLOUT_AGENT_NAME",
    "agent_id": "ROLLOUT_AGENT_ID",
    "agent_version": "ROLLOUT_AGENT_VERSION",
    "deployment": "ROLLOUT_DEPLOYMENT",
    "sample_rate": "ROLLOUT_SAMPLE_RATE",
    "debug": "ROLLOUT_DEBUG",
    "disabled": "ROLLOUT_DISABLED",
    "max_queue_events": None,
    "max_queue_bytes": None,
    "max_batch_events": None,
    "max_batch_bytes": None,
    "flush_interval": None,
    "shutdown_timeout": None,
    "sync_mode": None,
    "before_send": None,
    "scrubber": None,
    "send_default_pii": None,
    "capture_stream_chunks": None,
    "stream_preview_chars": None,
    "auto_instrument": "ROLLOUT_AUTO_INSTRUMENT",
}

# The OTel-native options and extra env vars the README documents.
README_ARGUMENTS: dict[str, str | None] = {
    "console": "ROLLOUT_CONSOLE",
    "default_scrubbing": "ROLLOUT_DEFAULT_SCRUBBING",
    "capture_inputs": "ROLLOUT_CAPTURE_INPUTS",
    "capture_outputs": "ROLLOUT_CAPTURE_OUTPUTS",
    "capture_content": "ROLLOUT_CAPTURE_CONTENT",
    "scrub_keys": None,
    "scrub_patterns": None,
    "scrub_allow_keys": None,
    "max_payload_chars": "ROLLOUT_MAX_PAYLOAD_CHARS",
    "tracer_provider": None,
    "span_processors": None,
    "span_exporters": None,
    "install_global_provider": None,
    "export_all_spans": None,
    "link_foreign_parent": None,
    "agent_flush": "ROLLOUT_AGENT_FLUSH",
    "dedupe_llm_spans": "ROLLOUT_DEDUPE_LLM_SPANS",
}

ALL_ARGUMENTS = {**API_ARGUMENTS, **README_ARGUMENTS}

TRUE_SPELLINGS = ["true", "True", "TRUE", "1", "yes", "YES", "Yes", "on", "ON", "On"]
FALSE_SPELLINGS = ["false", "False", "FALSE", "0", "no", "NO", "No", "off", "OFF", "Off"]


def _keep(event: dict[str, Any]) -> dict[str, Any]:
    return event


def _valid_value(name: str) -> tuple[Any, object]:
    """A valid non-default value for `name` and what the config should hold for it."""
    provider = TracerProvider()
    processor = SimpleSpanProcessor(InMemorySpanExporter())
    exporter = InMemorySpanExporter()
    values: dict[str, tuple[object, object]] = {
        "api_key": (SECRET, SECRET),
        "base_url": ("http://127.0.0.1:4318", "http://127.0.0.1:4318"),
        "environment": ("staging", "staging"),
        "release": ("1.2.3", "1.2.3"),
        "service_name": ("support-svc", "support-svc"),
        "agent_name": ("support_agent", "support_agent"),
        "agent_id": ("agent-42", "agent-42"),
        "agent_version": ("v7", "v7"),
        "deployment": ("eu-west-1", "eu-west-1"),
        "sample_rate": (0.5, 0.5),
        "debug": (True, True),
        "disabled": (True, True),
        "max_queue_events": (10, 10),
        "max_queue_bytes": (2048, 2048),
        "max_batch_events": (5, 5),
        "max_batch_bytes": (1024, 1024),
        "flush_interval": (0.5, 0.5),
        "shutdown_timeout": (1.5, 1.5),
        "sync_mode": (True, True),
        "dedupe_llm_spans": (False, False),
        "before_send": (_keep, _keep),
        "scrubber": (_keep, _keep),
        "send_default_pii": (True, True),
        "capture_stream_chunks": (True, True),
        "stream_preview_chars": (128, 128),
        "auto_instrument": ("openai", ("openai",)),
        "default_scrubbing": (False, False),
        "capture_inputs": (False, False),
        "capture_outputs": (False, False),
        "capture_content": (False, False),
        "scrub_keys": (["tenant_pin"], ("tenant_pin",)),
        "scrub_patterns": ([r"ACME-\d+"], (r"ACME-\d+",)),
        "scrub_allow_keys": (["token_type"], ("token_type",)),
        "console": (False, False),
        "max_payload_chars": (1000, 1000),
        "tracer_provider": (provider, provider),
        "span_processors": ([processor], (processor,)),
        "span_exporters": ([exporter], (exporter,)),
        "install_global_provider": (False, False),
        "export_all_spans": (True, True),
        "link_foreign_parent": (True, True),
        "agent_flush": ("wait", "wait"),
    }
    return values[name]


class RecordingExporter(SpanExporter):
    """Records every call, in order, so tests can check export-before-shutdown."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls.append("export")
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.calls.append("shutdown")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def names(self) -> list[str]:
        return [span.name for span in self.spans]


# -- every argument exists and is accepted ----------------------------------------------


def test_every_documented_argument_is_a_config_field() -> None:
    fields = set(RolloutConfig.__dataclass_fields__)
    missing = sorted(set(ALL_ARGUMENTS) - fields)
    assert missing == []


@pytest.mark.parametrize("name", sorted(ALL_ARGUMENTS))
def test_argument_accepted_by_resolve_config(name: str) -> None:
    value, expected = _valid_value(name)
    config = resolve_config(**{name: value})
    assert getattr(config, name) == expected


@pytest.mark.parametrize("name", sorted(ALL_ARGUMENTS))
def test_argument_accepted_by_rollout(name: str) -> None:
    value, expected = _valid_value(name)
    client = Rollout(**{name: value})
    try:
        assert getattr(client.config, name) == expected
    finally:
        client.shutdown()


@pytest.mark.parametrize("name", sorted(ALL_ARGUMENTS))
def test_argument_accepted_by_init(name: str) -> None:
    value, expected = _valid_value(name)
    client = rollout.init(**{name: value})
    assert rollout.get_client() is client
    assert getattr(client.config, name) == expected


def test_defaults() -> None:
    config = resolve_config()
    assert config.api_key is None
    assert config.base_url is None
    assert config.sample_rate == 1.0
    assert config.debug is False
    assert config.disabled is False
    assert config.max_queue_events == 65_536
    assert config.max_queue_bytes == 32 * 1024 * 1024
    assert config.max_batch_events == 512
    assert config.max_batch_bytes == 2 * 1024 * 1024
    assert config.flush_interval == 2.0
    assert config.shutdown_timeout == 5.0
    assert config.sync_mode is False
    assert config.send_default_pii is False
    assert config.capture_stream_chunks is False
    assert config.stream_preview_chars == 4096
    assert config.auto_instrument == ()
    assert config.max_payload_chars == 32768
    assert config.install_global_provider is True
    assert config.agent_flush == "background"
    assert config.console_enabled is True  # no destination configured


def test_config_is_frozen() -> None:
    config = resolve_config()
    with pytest.raises(AttributeError):
        config.sample_rate = 0.5  # type: ignore[misc]


# -- environment variables ---------------------------------------------------------------

ENV_CASES: list[tuple[str, str, str, object]] = [
    ("api_key", "ROLLOUT_API_KEY", SECRET, SECRET),
    (
        "base_url",
        "ROLLOUT_BASE_URL",
        "https://collector.example.com",
        "https://collector.example.com",
    ),
    ("environment", "ROLLOUT_ENVIRONMENT", "production", "production"),
    ("release", "ROLLOUT_RELEASE", "abc123", "abc123"),
    ("service_name", "ROLLOUT_SERVICE_NAME", "svc-env", "svc-env"),
    ("agent_name", "ROLLOUT_AGENT_NAME", "env_agent", "env_agent"),
    ("agent_id", "ROLLOUT_AGENT_ID", "agent-env", "agent-env"),
    ("agent_version", "ROLLOUT_AGENT_VERSION", "v9", "v9"),
    ("deployment", "ROLLOUT_DEPLOYMENT", "us-east", "us-east"),
    ("sample_rate", "ROLLOUT_SAMPLE_RATE", "0.25", 0.25),
    ("debug", "ROLLOUT_DEBUG", "true", True),
    ("disabled", "ROLLOUT_DISABLED", "1", True),
    ("console", "ROLLOUT_CONSOLE", "off", False),
    ("max_payload_chars", "ROLLOUT_MAX_PAYLOAD_CHARS", "2048", 2048),
    ("auto_instrument", "ROLLOUT_AUTO_INSTRUMENT", "openai, anthropic", ("openai", "anthropic")),
    ("default_scrubbing", "ROLLOUT_DEFAULT_SCRUBBING", "false", False),
    ("capture_inputs", "ROLLOUT_CAPTURE_INPUTS", "no", False),
    ("capture_outputs", "ROLLOUT_CAPTURE_OUTPUTS", "0", False),
    ("capture_content", "ROLLOUT_CAPTURE_CONTENT", "off", False),
    ("agent_flush", "ROLLOUT_AGENT_FLUSH", "wait", "wait"),
    ("dedupe_llm_spans", "ROLLOUT_DEDUPE_LLM_SPANS", "off", False),
]


def test_every_documented_env_var_has_a_case() -> None:
    documented = {env for env in ALL_ARGUMENTS.values() if env is not None}
    assert documented == {env for _, env, _, _ in ENV_CASES}


@pytest.mark.parametrize(("name", "env", "raw", "expected"), ENV_CASES)
def test_env_var_is_read(
    monkeypatch: pytest.MonkeyPatch, name: str, env: str, raw: str, expected: object
) -> None:
    monkeypatch.setenv(env, raw)
    assert getattr(resolve_config(), name) == expected
    client = Rollout()
    try:
        assert getattr(client.config, name) == expected
    finally:
        client.shutdown()
    assert getattr(rollout.init().config, name) == expected


def test_resolve_config_accepts_an_explicit_environment_mapping() -> None:
    config = resolve_config({"ROLLOUT_AGENT_NAME": "from_mapping", "ROLLOUT_SAMPLE_RATE": "0.1"})
    assert config.agent_name == "from_mapping"
    assert config.sample_rate == 0.1


STRING_FIELDS = [
    (name, env)
    for name, env in API_ARGUMENTS.items()
    if env is not None
    and name not in ("sample_rate", "debug", "disabled", "base_url", "auto_instrument")
]


@pytest.mark.parametrize(("name", "env"), STRING_FIELDS)
def test_precedence_for_string_fields(monkeypatch: pytest.MonkeyPatch, name: str, env: str) -> None:
    assert getattr(resolve_config(), name) is None  # default
    monkeypatch.setenv(env, "from-env")
    assert getattr(resolve_config(), name) == "from-env"  # env beats default
    assert getattr(resolve_config(**{name: "from-arg"}), name) == "from-arg"  # arg beats env
    assert getattr(resolve_config(**{name: ""}), name) == "from-env"  # "" argument is unset
    assert getattr(resolve_config(**{name: None}), name) == "from-env"  # None is unset
    monkeypatch.setenv(env, "")
    assert getattr(resolve_config(), name) is None  # "" env var is unset


def test_precedence_for_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_BASE_URL", "http://env.example.com:4318")
    assert resolve_config().base_url == "http://env.example.com:4318"
    assert resolve_config(base_url="https://arg.example.com").base_url == "https://arg.example.com"
    assert resolve_config(base_url="").base_url == "http://env.example.com:4318"
    monkeypatch.setenv("ROLLOUT_BASE_URL", "")
    assert resolve_config().base_url is None


def test_precedence_for_sample_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_config().sample_rate == 1.0
    monkeypatch.setenv("ROLLOUT_SAMPLE_RATE", "0.5")
    assert resolve_config().sample_rate == 0.5
    assert resolve_config(sample_rate=0.25).sample_rate == 0.25
    assert resolve_config(sample_rate="").sample_rate == 0.5
    monkeypatch.setenv("ROLLOUT_SAMPLE_RATE", "")
    assert resolve_config().sample_rate == 1.0


def test_sample_rate_zero_is_kept_not_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_config(sample_rate=0.0).sample_rate == 0.0
    assert resolve_config(sample_rate=0).sample_rate == 0.0
    monkeypatch.setenv("ROLLOUT_SAMPLE_RATE", "0.5")
    assert resolve_config(sample_rate=0.0).sample_rate == 0.0  # beats the env var
    monkeypatch.setenv("ROLLOUT_SAMPLE_RATE", "0")
    assert resolve_config().sample_rate == 0.0
    assert rollout.init(sample_rate=0.0, console=False).config.sample_rate == 0.0


@pytest.mark.parametrize(
    ("name", "env"), [("debug", "ROLLOUT_DEBUG"), ("disabled", "ROLLOUT_DISABLED")]
)
def test_precedence_for_booleans(monkeypatch: pytest.MonkeyPatch, name: str, env: str) -> None:
    assert getattr(resolve_config(), name) is False
    monkeypatch.setenv(env, "true")
    assert getattr(resolve_config(), name) is True
    assert getattr(resolve_config(**{name: False}), name) is False  # False is not "unset"
    assert getattr(resolve_config(**{name: ""}), name) is True
    monkeypatch.setenv(env, "")
    assert getattr(resolve_config(), name) is False


def test_precedence_for_console(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_config().console is None
    monkeypatch.setenv("ROLLOUT_CONSOLE", "false")
    assert resolve_config().console is False
    assert resolve_config().console_enabled is False
    assert resolve_config(console=True).console is True
    assert resolve_config(console="").console is False


def test_precedence_for_max_payload_chars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_MAX_PAYLOAD_CHARS", "2048")
    assert resolve_config().max_payload_chars == 2048
    assert resolve_config(max_payload_chars=100).max_payload_chars == 100
    assert resolve_config(max_payload_chars="").max_payload_chars == 2048


BOOL_ENV = [
    ("debug", "ROLLOUT_DEBUG"),
    ("disabled", "ROLLOUT_DISABLED"),
    ("console", "ROLLOUT_CONSOLE"),
]


@pytest.mark.parametrize(("name", "env"), BOOL_ENV)
@pytest.mark.parametrize("raw", TRUE_SPELLINGS)
def test_boolean_true_spellings(
    monkeypatch: pytest.MonkeyPatch, name: str, env: str, raw: str
) -> None:
    assert getattr(resolve_config(**{name: raw}), name) is True
    monkeypatch.setenv(env, raw)
    assert getattr(resolve_config(), name) is True


@pytest.mark.parametrize(("name", "env"), BOOL_ENV)
@pytest.mark.parametrize("raw", FALSE_SPELLINGS)
def test_boolean_false_spellings(
    monkeypatch: pytest.MonkeyPatch, name: str, env: str, raw: str
) -> None:
    assert getattr(resolve_config(**{name: raw}), name) is False
    monkeypatch.setenv(env, raw)
    assert getattr(resolve_config(), name) is False


@pytest.mark.parametrize("name", ["sync_mode", "send_default_pii", "export_all_spans"])
@pytest.mark.parametrize(("raw", "expected"), [("YES", True), ("Off", False), ("1", True)])
def test_boolean_only_arguments_accept_spellings(name: str, raw: str, expected: bool) -> None:
    assert getattr(resolve_config(**{name: raw}), name) is expected


def test_debug_enables_verbose_logging() -> None:
    """API.md: `debug` means verbose logging; the SDK's logger must emit debug records."""
    logger = logging.getLogger("mv37.rollout")
    level = logger.level
    try:
        assert not logger.isEnabledFor(logging.DEBUG)  # root default: WARNING
        rollout.init(debug=True, console=False)
        assert logger.isEnabledFor(logging.DEBUG)
    finally:
        logger.setLevel(level)


# -- validation ----------------------------------------------------------------------------

ARG_ERRORS: list[tuple[dict[str, object], str]] = [
    ({"sample_rate": 2}, "sample_rate"),
    ({"sample_rate": -0.1}, "sample_rate"),
    ({"base_url": "not a url"}, "base_url"),
    ({"max_queue_events": 0}, "max_queue_events"),
    ({"flush_interval": -1}, "flush_interval"),
    ({"agent_flush": "soon"}, "agent_flush"),
]

ENV_ERRORS: list[tuple[str, str]] = [
    ("ROLLOUT_SAMPLE_RATE", "abc"),
    ("ROLLOUT_SAMPLE_RATE", "1.5"),
    ("ROLLOUT_DEBUG", "maybe"),
    ("ROLLOUT_DISABLED", "2"),
    ("ROLLOUT_BASE_URL", "ftp://x"),
    ("ROLLOUT_MAX_PAYLOAD_CHARS", "lots"),
    ("ROLLOUT_AGENT_FLUSH", "soon"),
]

BUILDERS: list[Callable[..., object]] = [resolve_config, Rollout, rollout.init]


@pytest.mark.parametrize("build", BUILDERS, ids=["resolve_config", "Rollout", "init"])
@pytest.mark.parametrize(("arguments", "named"), ARG_ERRORS)
def test_invalid_argument_raises_naming_it(
    build: Callable[..., object], arguments: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        build(**arguments)


@pytest.mark.parametrize("build", BUILDERS, ids=["resolve_config", "Rollout", "init"])
@pytest.mark.parametrize(("env", "raw"), ENV_ERRORS)
def test_invalid_env_var_raises_naming_it(
    monkeypatch: pytest.MonkeyPatch, build: Callable[..., object], env: str, raw: str
) -> None:
    monkeypatch.setenv(env, raw)
    with pytest.raises(ValueError, match=env):
        build()


def test_argument_error_names_the_argument_not_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_SAMPLE_RATE", "0.5")
    with pytest.raises(ValueError, match="sample_rate") as info:
        resolve_config(sample_rate=3)
    assert "ROLLOUT_SAMPLE_RATE" not in str(info.value)


def test_valid_argument_overrides_invalid_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_SAMPLE_RATE", "abc")
    assert resolve_config(sample_rate=0.3).sample_rate == 0.3


@pytest.mark.parametrize("build", BUILDERS, ids=["resolve_config", "Rollout", "init"])
def test_unknown_argument_raises_type_error(build: Callable[..., object]) -> None:
    with pytest.raises(TypeError, match="sample_rat"):
        build(sample_rat=0.5)


def test_failed_init_keeps_the_previous_client() -> None:
    first = rollout.init(console=False, agent_name="first")
    with pytest.raises(ValueError, match="sample_rate"):
        rollout.init(sample_rate=5)
    assert rollout.get_client() is first


# -- the api key stays secret ----------------------------------------------------------------


def test_api_key_not_in_repr_or_str_of_config_or_client(monkeypatch: pytest.MonkeyPatch) -> None:
    config = resolve_config(api_key=SECRET, agent_name="a")
    client = Rollout(api_key=SECRET, console=False)
    try:
        for text in (repr(config), str(config), repr(client), str(client)):
            assert SECRET not in text
        assert client.config.api_key == SECRET  # kept, just not shown
    finally:
        client.shutdown()
    monkeypatch.setenv("ROLLOUT_API_KEY", SECRET)
    from_env = resolve_config()
    assert from_env.api_key == SECRET
    assert SECRET not in repr(from_env)
    assert SECRET not in str(from_env)


@pytest.mark.parametrize("build", BUILDERS, ids=["resolve_config", "Rollout", "init"])
@pytest.mark.parametrize(
    "arguments",
    [
        {"sample_rate": 2},
        {"base_url": "not a url"},
        {"flush_interval": -1},
        {"max_queue_events": 0},
        {"debug": "maybe"},
    ],
)
def test_api_key_not_in_value_error(
    build: Callable[..., object], arguments: dict[str, object]
) -> None:
    with pytest.raises(ValueError) as info:
        build(api_key=SECRET, **arguments)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


@pytest.mark.parametrize(("env", "raw"), ENV_ERRORS)
def test_api_key_from_env_not_in_value_error(
    monkeypatch: pytest.MonkeyPatch, env: str, raw: str
) -> None:
    monkeypatch.setenv("ROLLOUT_API_KEY", SECRET)
    monkeypatch.setenv(env, raw)
    with pytest.raises(ValueError) as info:
        Rollout()
    assert SECRET not in str(info.value)


def test_api_key_not_in_type_error() -> None:
    with pytest.raises(TypeError) as info:
        resolve_config(api_key=SECRET, bogus=1)
    assert SECRET not in str(info.value)


def test_api_key_never_exported_as_data() -> None:
    exporter = InMemorySpanExporter()
    rollout.init(api_key=SECRET, span_exporters=[exporter], sync_mode=True, console=False)

    @rollout.tool
    def lookup(order_id: int) -> dict[str, int]:
        return {"order_id": order_id}

    @rollout.agent("secret_agent")
    def run() -> str:
        lookup(1)
        return "ok"

    assert run() == "ok"
    rollout.flush()
    spans = exporter.get_finished_spans()
    assert spans
    for span in spans:
        assert SECRET not in repr(dict(span.attributes or {}))
        assert SECRET not in repr(dict(span.resource.attributes))
        for event in span.events:
            assert SECRET not in repr(dict(event.attributes or {}))


# -- OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT --------------------------------------------------------


def test_otel_attribute_limit_lowers_default_max_payload_chars(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "500")
    assert resolve_config().max_payload_chars == 500
    assert resolve_config(max_payload_chars=1000).max_payload_chars == 1000  # explicit wins
    assert resolve_config(max_payload_chars=100).max_payload_chars == 100
    assert rollout.init(console=False).config.max_payload_chars == 500


def test_otel_attribute_limit_above_default_does_not_raise_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100000")
    assert resolve_config().max_payload_chars == 32768


def test_otel_attribute_limit_caps_captured_payloads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "500")
    exporter = InMemorySpanExporter()
    rollout.init(span_exporters=[exporter], sync_mode=True, console=False)

    @rollout.tool
    def echo(text: str) -> str:
        return text

    with rollout.trace("limit"):
        echo("x" * 5000)
    rollout.flush()
    (tool,) = [s for s in exporter.get_finished_spans() if s.name == "execute_tool echo"]
    attrs = dict(tool.attributes or {})
    assert len(str(attrs[sc.INPUT_VALUE])) <= 500
    assert len(str(attrs[sc.OUTPUT_VALUE])) <= 500


# -- init twice ---------------------------------------------------------------------------------


def test_second_init_shuts_down_the_first_cleanly() -> None:
    first_exporter = RecordingExporter()
    second_exporter = RecordingExporter()
    first = rollout.init(span_exporters=[first_exporter], console=False, flush_interval=60.0)
    with rollout.trace("before_second_init"):
        pass

    second = rollout.init(span_exporters=[second_exporter], console=False, flush_interval=60.0)

    assert rollout.get_client() is second
    assert second is not first
    # The first client's spans were exported, then its exporter shut down exactly once.
    assert "invoke_workflow before_second_init" in first_exporter.names()
    assert first_exporter.calls.count("shutdown") == 1
    assert first_exporter.calls[-1] == "shutdown"
    assert "export" in first_exporter.calls[: first_exporter.calls.index("shutdown")]
    exported_by_first = len(first_exporter.spans)

    with rollout.trace("after_second_init"):
        pass
    assert rollout.flush()

    assert "invoke_workflow after_second_init" in second_exporter.names()
    assert "invoke_workflow before_second_init" not in second_exporter.names()
    assert len(first_exporter.spans) == exported_by_first
    assert "invoke_workflow after_second_init" not in first_exporter.names()
    assert otel_trace.get_tracer_provider() is second.tracer_provider


# -- get_client() before init() --------------------------------------------------------------


def test_get_client_before_init_ignores_invalid_env_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ROLLOUT_SAMPLE_RATE", "abc")
    with caplog.at_level(logging.WARNING, logger="mv37.rollout"):
        client = rollout.get_client()
    assert isinstance(client, Rollout)
    assert any("ROLLOUT_SAMPLE_RATE" in r.getMessage() for r in caplog.records)
    assert all(r.levelno >= logging.WARNING for r in caplog.records if "abc" in r.getMessage())

    calls: list[str] = []

    @rollout.tool
    def fetch(city: str) -> dict[str, str]:
        calls.append("tool")
        return {"city": city}

    @rollout.task
    def plan() -> str:
        calls.append("task")
        return "planned"

    @rollout.agent
    def run(city: str) -> str:
        calls.append("agent")
        return f"{plan()} {fetch(city)['city']}"

    assert run("Paris") == "planned Paris"
    assert fetch("Rome") == {"city": "Rome"}
    assert calls == ["agent", "task", "tool", "tool"]

    with rollout.trace("manual") as trace:
        assert trace is not None
    # init() itself is strict.
    with pytest.raises(ValueError, match="ROLLOUT_SAMPLE_RATE"):
        rollout.init()


# -- auto_instrument --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("openai, anthropic", ("openai", "anthropic")),
        ("openai,anthropic", ("openai", "anthropic")),
        (" openai ,Anthropic, ", ("openai", "anthropic")),
        (["openai", "openai-agents"], ("openai", "openai_agents")),
        (("openai", "anthropic"), ("openai", "anthropic")),
        ("openai", ("openai",)),
    ],
)
def test_auto_instrument_parsing(raw: object, expected: tuple[str, ...]) -> None:
    assert resolve_config(auto_instrument=raw).auto_instrument == expected


def test_bad_dedupe_llm_spans_variable_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ROLLOUT_DEDUPE_LLM_SPANS=maybe` is a ValueError naming the variable."""
    monkeypatch.setenv("ROLLOUT_DEDUPE_LLM_SPANS", "maybe")
    with pytest.raises(ValueError, match="environment variable ROLLOUT_DEDUPE_LLM_SPANS"):
        resolve_config()

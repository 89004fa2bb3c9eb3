"""Messages that say what is wrong and what to do: each asserted as the exact text the user
reads (log records on `mv37.rollout`, `check()` lines, the command line's output).

- an export failure names the HTTP status and reason or the connection error, a hint, and
  says "retries" only when the exporter retries; never the API key;
- `check()`, `acheck()` and `python -m mv37.rollout check` say the same;
- an API key with no destination, the console off with nowhere else for spans to go, an
  unknown `ROLLOUT_*` variable, feedback or a signal with no trace: one warning each.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from http import HTTPStatus
from typing import Any

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mv37.rollout as rollout
from mv37.rollout.base._config import resolve_config
from mv37.rollout.base._version import __version__
from mv37.rollout.testing import OTLPReceiver

KEY = "sk-test-SECRET-messages-9d8c7b6a5f4e"
EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
MODES = ["sync", "async"]

AUTH_HINT = (
    "Check the API key (api_key or ROLLOUT_API_KEY; it is sent as `Authorization: Bearer <key>`)."
)
NO_KEY_HINT = (
    "No API key was sent: set api_key or ROLLOUT_API_KEY (sent as `Authorization: Bearer <key>`)."
)
NOT_RETRIED = (
    "Not retried: the batch is dropped and counted in stats() (export_failures, spans_failed)."
)
RETRIED = (
    "Retried until the export timeout (OTEL_EXPORTER_OTLP_TIMEOUT, 10 s by default); spans still "
    "undelivered then are dropped and counted in stats() (export_failures, spans_failed)."
)
TAIL = (
    f"Logged once for this client; later failures go to debug level (logger {EXPORTER_LOGGER}); "
    "rollout.check() or `python -m mv37.rollout check` tests the destination."
)
SET_A_DESTINATION = (
    "set base_url= or ROLLOUT_BASE_URL to your collector's OTLP/HTTP address (such as "
    "http://localhost:4318), or OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
)


@rollout.agent("ask")
def ask(question: str) -> str:
    return question.upper()


@rollout.agent("aask")
async def aask(question: str) -> str:
    return question.upper()


async def run(mode: str) -> None:
    """One traced run and a flush (False: something was not delivered)."""
    if mode == "async":
        assert await aask("hi") == "HI"
        assert await rollout.aflush(timeout=5.0) is False
    else:
        assert ask("hi") == "HI"
        assert rollout.flush(timeout=5.0) is False


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The WARNING-or-worse messages of `mv37.rollout`, in order."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "mv37.rollout" and r.levelno >= logging.WARNING
    ]


def assert_no_key(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    """The key is in no record (message, arguments, traceback) and none of `texts`."""
    for record in caplog.records:
        assert KEY not in record.getMessage(), record.name
        assert KEY not in repr(record.args), record.name
        assert KEY not in (record.exc_text or ""), record.name
    for text in texts:
        assert KEY not in text


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports give up after 0.5 s (the exporter's first backoff is about 1 s)."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "500")


# -- the export failure warning ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("status", "key", "said"),
    [
        (401, KEY, f"HTTP 401 Unauthorized. {AUTH_HINT}"),
        (403, KEY, f"HTTP 403 Forbidden. {AUTH_HINT}"),
        (401, None, f"HTTP 401 Unauthorized. {NO_KEY_HINT}"),
        (
            404,
            KEY,
            "HTTP 404 Not Found. Check the base URL: /v1/traces is added to it, so it must be "
            "the collector's OTLP/HTTP base address (such as http://localhost:4318).",
        ),
        (
            400,
            KEY,
            "HTTP 400 Bad Request. Check that the URL is an OTLP/HTTP traces endpoint "
            "(port 4318, not gRPC's 4317).",
        ),
        (
            413,
            KEY,
            # The reason is the receiver's: Python 3.13 renamed 413 "Content Too Large".
            f"HTTP 413 {HTTPStatus(413).phrase}. The collector refused the batch as too large: "
            "lower max_batch_bytes.",
        ),
        (
            500,
            KEY,
            "HTTP 500 Internal Server Error. The collector failed to take the batch; its own "
            "logs say why.",
        ),
    ],
)
async def test_a_refused_export_warns_once_with_status_hint_and_not_retried(
    receiver: OTLPReceiver,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    mode: str,
    status: int,
    key: str | None,
    said: str,
) -> None:
    client = rollout.init(base_url=receiver.url, api_key=key, console=False, flush_interval=60.0)
    receiver.respond_with(status, status, body=b"denied " + KEY.encode())
    await run(mode)
    await run(mode)  # a second failure: not warned again
    assert len(receiver.requests) == 2  # not retried
    said = said.format(url=receiver.url)
    assert warnings_of(caplog) == [
        f"mv37.rollout: exporting spans to {receiver.endpoint} failed, {said} {NOT_RETRIED} {TAIL}"
    ]
    assert client.stats().export_failures == 2
    out, err = capsys.readouterr()
    assert_no_key(caplog, out, err, repr(client), repr(client.stats()))


@pytest.mark.parametrize("mode", MODES)
async def test_a_retried_status_says_it_is_retried(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture, short_timeout: None, mode: str
) -> None:
    rollout.init(base_url=receiver.url, api_key=KEY, console=False, flush_interval=60.0)
    receiver.respond_with(*[503] * 6, retry_after="0")
    await run(mode)
    assert len(receiver.requests) == 6  # retried until the exporter gave up
    assert warnings_of(caplog) == [
        f"mv37.rollout: exporting spans to {receiver.endpoint} failed, HTTP 503 Service "
        "Unavailable. The collector (or a proxy in front of it) is unavailable or overloaded. "
        f"{RETRIED} {TAIL}"
    ]
    assert_no_key(caplog)


@pytest.mark.parametrize("mode", MODES)
async def test_nothing_listening_asks_if_a_collector_listens_there(
    dead_url: str, caplog: pytest.LogCaptureFixture, short_timeout: None, mode: str
) -> None:
    rollout.init(base_url=dead_url, api_key=KEY, console=False, flush_interval=60.0)
    await run(mode)
    await run(mode)
    assert warnings_of(caplog) == [
        f"mv37.rollout: exporting spans to {dead_url}/v1/traces failed, cannot connect: "
        f"Connection refused. Is a collector listening at {dead_url}? {RETRIED} {TAIL}"
    ]
    assert_no_key(caplog)


# -- check(), acheck() and the command line say the same ----------------------------------------


async def checked(mode: str) -> rollout.CheckResult:
    return await rollout.acheck() if mode == "async" else rollout.check()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("status", "said"),
    [
        (401, f"HTTP 401 Unauthorized ({{endpoint}}). {AUTH_HINT}"),
        (
            404,
            "HTTP 404 Not Found ({endpoint}). Check the base URL: /v1/traces is added to it, "
            "so it must be the collector's OTLP/HTTP base address (such as "
            "http://localhost:4318).",
        ),
    ],
)
async def test_check_names_status_and_hint(
    receiver: OTLPReceiver,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    mode: str,
    status: int,
    said: str,
) -> None:
    rollout.init(base_url=receiver.url, api_key=KEY)
    receiver.respond_with(status)
    result = await checked(mode)
    expected = "mv37.rollout check: FAILED, " + said.format(
        endpoint=receiver.endpoint, url=receiver.url
    )
    assert result.message == expected
    out, err = capsys.readouterr()
    assert out == expected + "\n"
    assert_no_key(caplog, out, err, repr(result))


@pytest.mark.parametrize("mode", MODES)
async def test_check_quotes_what_the_server_said_without_the_key(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    rollout.init(base_url=receiver.url, api_key=KEY)
    receiver.respond_with(403, body=b"key " + KEY.encode() + b" is revoked")
    result = await checked(mode)
    assert result.message == (
        f"mv37.rollout check: FAILED, HTTP 403 Forbidden: key *** is revoked "
        f"({receiver.endpoint}). {AUTH_HINT}"
    )
    assert result.errors == ("HTTP 403 Forbidden: key *** is revoked",)
    assert_no_key(caplog, repr(result))


@pytest.mark.parametrize("mode", MODES)
async def test_check_with_nothing_listening_asks_for_a_collector(
    dead_url: str, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    rollout.init(base_url=dead_url)
    result = await checked(mode)
    assert result.message == (
        f"mv37.rollout check: FAILED, cannot connect: Connection refused ({dead_url}/v1/traces). "
        f"Is a collector listening at {dead_url}?"
    )
    assert capsys.readouterr().out == result.message + "\n"


@pytest.mark.parametrize("mode", MODES)
async def test_check_with_no_answer_says_so(receiver: OTLPReceiver, mode: str) -> None:
    rollout.init(base_url=receiver.url)
    latch = receiver.stall()
    try:
        if mode == "async":
            result = await rollout.acheck(verbose=False, timeout=0.5)
        else:
            result = rollout.check(verbose=False, timeout=0.5)
    finally:
        latch.release()
    assert result.message == (
        f"mv37.rollout check: FAILED, no answer within the timeout ({receiver.endpoint}). "
        f"Is the collector at {receiver.url} up, and not overloaded?"
    )


@pytest.mark.parametrize("mode", MODES)
async def test_check_without_destination_says_where_spans_go(
    mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout.init()
    assert (await checked(mode)).message == (
        "mv37.rollout check: FAILED, no destination configured (set base_url, ROLLOUT_BASE_URL "
        "or OTEL_EXPORTER_OTLP_ENDPOINT); traces only print to the console"
    )
    rollout.init(console=False, span_exporters=[InMemorySpanExporter()])
    assert (await checked(mode)).message == (
        "mv37.rollout check: FAILED, no destination configured (set base_url, ROLLOUT_BASE_URL "
        "or OTEL_EXPORTER_OTLP_ENDPOINT); traces are neither printed (console is off) nor sent"
    )


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mv37.rollout", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_version() -> None:
    done = cli("--version", env={})
    assert (done.returncode, done.stdout, done.stderr) == (0, f"mv37.rollout {__version__}\n", "")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ("--base-url", "localhost:4318"),
            "--base-url must be an http(s) URL such as http://localhost:4318",
        ),
        (("--base-url", "http://h:port"), "--base-url has an invalid port"),
        (("--timeout", "0"), "--timeout must be greater than 0, got 0.0"),
    ],
)
def test_cli_names_the_flag_that_is_wrong(args: tuple[str, ...], said: str) -> None:
    done = cli("check", *args, env={})
    assert done.returncode == 1
    assert done.stdout == f"mv37.rollout check: FAILED, invalid configuration: {said}\n"


def test_cli_names_the_variable_that_is_wrong() -> None:
    done = cli("check", env={"ROLLOUT_BASE_URL": "localhost:4318"})
    assert done.returncode == 1
    assert done.stdout == (
        "mv37.rollout check: FAILED, invalid configuration: environment variable "
        "ROLLOUT_BASE_URL must be an http(s) URL such as http://localhost:4318\n"
    )


def test_cli_check_gives_status_reason_and_hint(receiver: OTLPReceiver, dead_url: str) -> None:
    env = {"ROLLOUT_BASE_URL": receiver.url, "ROLLOUT_API_KEY": KEY}
    receiver.respond_with(401)
    denied = cli("check", env=env)
    assert (denied.returncode, denied.stderr) == (1, "")
    assert denied.stdout == (
        f"mv37.rollout check: FAILED, HTTP 401 Unauthorized ({receiver.endpoint}). {AUTH_HINT}\n"
    )
    refused = cli("check", "--base-url", dead_url, env={})
    assert refused.stdout == (
        f"mv37.rollout check: FAILED, cannot connect: Connection refused ({dead_url}/v1/traces). "
        f"Is a collector listening at {dead_url}?\n"
    )
    nowhere = cli("check", env={})
    assert nowhere.stdout == (
        "mv37.rollout check: FAILED, no destination configured (pass --base-url, or set "
        "ROLLOUT_BASE_URL or OTEL_EXPORTER_OTLP_ENDPOINT)\n"
    )
    for done in (denied, refused, nowhere):
        assert KEY not in done.stdout + done.stderr


def test_cli_warns_about_an_unknown_variable_on_stderr(receiver: OTLPReceiver) -> None:
    done = cli("check", env={"ROLLOUT_BASE_URL": receiver.url, "ROLLOUT_APIKEY": KEY})
    assert done.returncode == 0
    assert done.stderr == (
        "mv37.rollout: environment variable ROLLOUT_APIKEY is not a Rollout setting and is "
        "ignored; did you mean ROLLOUT_API_KEY?\n"
    )


# -- settings that can do nothing --------------------------------------------------------------


def test_an_api_key_argument_without_destination_warns_once_without_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = rollout.init(api_key=KEY)
    rollout.init(api_key=KEY)
    assert warnings_of(caplog) == [
        "mv37.rollout: an API key is set (the api_key argument) but no destination, so the key "
        "is unused and no traces are sent (they only print to the console). To send them, "
        f"{SET_A_DESTINATION}."
    ]
    assert_no_key(caplog, repr(client), repr(client.config), str(client.config))


def test_an_api_key_is_in_no_exception_either(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for arguments in ({"api_key": KEY, "sample_rate": 2}, {"api_key": KEY, "base_url": "h:1"}):
        with pytest.raises(ValueError) as caught:
            rollout.init(**arguments)
        assert_no_key(caplog, str(caught.value), repr(caught.value))
    monkeypatch.setenv("ROLLOUT_API_KEY", KEY)
    monkeypatch.setenv("ROLLOUT_SAMPLE_RATE", "lots")
    with pytest.raises(ValueError) as caught:
        rollout.init()
    assert_no_key(caplog, str(caught.value), repr(caught.value))


def test_an_api_key_variable_without_destination_warns_naming_it(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROLLOUT_API_KEY", KEY)
    rollout.init(console=False, span_exporters=[InMemorySpanExporter()])
    assert warnings_of(caplog) == [
        "mv37.rollout: an API key is set (ROLLOUT_API_KEY) but no destination, so the key is "
        f"unused and no traces are sent. To send them, {SET_A_DESTINATION}."
    ]
    assert_no_key(caplog)


@pytest.mark.parametrize(
    "where",
    [
        {"base_url": "http://127.0.0.1:9"},
        {"env": ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")},
        {"env": ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/v1/traces")},
        {"disabled": True},
    ],
)
def test_an_api_key_with_a_destination_or_disabled_is_not_warned(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, where: dict[str, Any]
) -> None:
    arguments = dict(where)
    env = arguments.pop("env", None)
    if isinstance(env, tuple):
        monkeypatch.setenv(*env)
    rollout.init(api_key=KEY, console=False, **arguments)
    assert warnings_of(caplog) == []


def test_console_off_with_nowhere_to_send_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    rollout.init(console=False)
    rollout.init(console=False)
    assert ask("hi") == "HI"
    assert warnings_of(caplog) == [
        "mv37.rollout: the console is off (console=False or ROLLOUT_CONSOLE) and there is no "
        "destination or exporter, so spans are recorded but go nowhere. To send them, "
        f"{SET_A_DESTINATION}; or pass span_exporters=[...]; or leave the console on to "
        "print them."
    ]


def test_console_off_by_variable_warns_too(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROLLOUT_CONSOLE", "false")
    rollout.init()
    [message] = warnings_of(caplog)
    assert message.startswith("mv37.rollout: the console is off (console=False or ROLLOUT_CONSOLE)")


def user_provider() -> TracerProvider:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    return provider


@pytest.mark.parametrize(
    "elsewhere",
    ["span_exporters", "span_processors", "tracer_provider", "global provider", "base_url"],
)
def test_console_off_with_somewhere_else_to_go_is_not_warned(
    caplog: pytest.LogCaptureFixture, elsewhere: str
) -> None:
    choices: dict[str, dict[str, Any]] = {
        "span_exporters": {"span_exporters": [InMemorySpanExporter()]},
        "span_processors": {"span_processors": [SimpleSpanProcessor(InMemorySpanExporter())]},
        "tracer_provider": {"tracer_provider": user_provider()},
        "global provider": {},
        "base_url": {"base_url": "http://127.0.0.1:9", "flush_interval": 60.0},
    }
    arguments = choices[elsewhere]
    if elsewhere == "global provider":
        otel_trace.set_tracer_provider(user_provider())
    rollout.init(console=False, **arguments)
    assert ask("hi") == "HI"
    assert warnings_of(caplog) == []


# -- unknown ROLLOUT_* variables ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("ROLLOUT_BASEURL", "ROLLOUT_BASE_URL"),
        ("ROLLOUT_SAMPLERATE", "ROLLOUT_SAMPLE_RATE"),
        ("ROLLOUT_APIKEY", "ROLLOUT_API_KEY"),
        ("ROLLOUT_URL", "ROLLOUT_BASE_URL"),
        ("rollout_console", "ROLLOUT_CONSOLE"),
    ],
)
def test_an_unknown_variable_warns_once_naming_the_closest(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, name: str, closest: str
) -> None:
    monkeypatch.setenv(name, "http://127.0.0.1:9")
    rollout.init()
    rollout.init()
    assert warnings_of(caplog) == [
        f"mv37.rollout: environment variable {name} is not a Rollout setting and is ignored; "
        f"did you mean {closest}?"
    ]


def test_an_unknown_variable_with_nothing_close_lists_the_known_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    resolve_config({"ROLLOUT_ZZZ": "1"})
    [message] = warnings_of(caplog)
    head = (
        "mv37.rollout: environment variable ROLLOUT_ZZZ is not a Rollout setting and is "
        "ignored; the variables Rollout reads are "
    )
    assert message.startswith(head)
    listed = message.removeprefix(head).split(", ")
    assert {"ROLLOUT_API_KEY", "ROLLOUT_BASE_URL", "ROLLOUT_SAMPLE_RATE"} <= set(listed)


def test_every_variable_rollout_reads_or_documents_is_known(
    caplog: pytest.LogCaptureFixture,
) -> None:
    known = {
        # Read by resolve_config (each field names its variable) ...
        "ROLLOUT_API_KEY": "k",
        "ROLLOUT_BASE_URL": "http://127.0.0.1:9",
        "ROLLOUT_ENVIRONMENT": "dev",
        "ROLLOUT_RELEASE": "1",
        "ROLLOUT_SERVICE_NAME": "svc",
        "ROLLOUT_AGENT_NAME": "a",
        "ROLLOUT_AGENT_ID": "a1",
        "ROLLOUT_AGENT_VERSION": "1",
        "ROLLOUT_DEPLOYMENT": "eu",
        "ROLLOUT_SAMPLE_RATE": "1",
        "ROLLOUT_DEBUG": "false",
        "ROLLOUT_DISABLED": "false",
        "ROLLOUT_DEFAULT_SCRUBBING": "true",
        "ROLLOUT_CAPTURE_INPUTS": "true",
        "ROLLOUT_CAPTURE_OUTPUTS": "true",
        "ROLLOUT_CAPTURE_CONTENT": "true",
        "ROLLOUT_AUTO_INSTRUMENT": "",
        "ROLLOUT_CONSOLE": "true",
        "ROLLOUT_MAX_PAYLOAD_CHARS": "100",
        "ROLLOUT_AGENT_FLUSH": "wait",
        "ROLLOUT_SEMCONV": "genai",
        # ... and the planned ones API.md documents.
        "ROLLOUT_METRICS": "true",
        "ROLLOUT_FEEDBACK_SINKS": "phoenix",
        "ROLLOUT_DEDUPE_LLM_SPANS": "true",
    }
    resolve_config(known)
    assert warnings_of(caplog) == []


# -- feedback and signals with nothing to land on ------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["feedback", "signal"])
async def test_feedback_with_no_trace_warns_once_and_never_raises(
    caplog: pytest.LogCaptureFixture, mode: str, kind: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="mv37.rollout")
    client = rollout.init(console=False, span_exporters=[InMemorySpanExporter()])
    caplog.clear()

    async def send(name: str) -> None:
        if mode == "async":
            await _async_send(kind, name)
        else:
            getattr(rollout, kind)(name, 1)
            getattr(client, kind)(name, 1)

    await send("thumbs")
    await send("again")
    records = [r for r in caplog.records if r.name == "mv37.rollout"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (
            logging.WARNING,
            f"mv37.rollout: {kind}('thumbs', ...) was called with no active trace and no "
            "trace_id, so it was not recorded. Call it inside an @agent or @trace function "
            "(or a `with rollout.trace(...)` block), or pass trace_id= (keep "
            "rollout.current_trace().trace_id from the run; it works after the trace ended) "
            "or external_trace_id=. Logged once.",
        )
    ]


async def _async_send(kind: str, name: str) -> None:
    getattr(rollout, kind)(name, 1)


def test_feedback_inside_a_trace_or_with_its_id_is_not_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rollout.init(console=False, span_exporters=[InMemorySpanExporter()])
    with rollout.trace("run") as trace:
        rollout.feedback("thumbs", 1)
        rollout.signal("ordered", True)
    rollout.feedback("late", 1, trace_id=trace.trace_id)
    assert warnings_of(caplog) == []

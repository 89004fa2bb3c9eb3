"""Configuration: a frozen dataclass whose fields name their environment variables.

Precedence is argument > environment variable > default, and empty strings count as
unset. Bad values raise `ValueError` naming the argument or the variable; a `ROLLOUT_*`
variable Rollout does not read is a warning naming the closest one it does.

Example:
    >>> cfg = resolve_config(agent_name="support_agent", sample_rate=0.5)
    >>> cfg.sample_rate
    0.5
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from mv37.rollout.base._diagnostics import debug_once, log_once
from mv37.rollout.base._integration_names import validate

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import TracerProvider

EventDict = dict[str, Any]
"""The plain-dict view of a span handed to `scrubber` and `before_send`."""

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_DEFAULT_PAYLOAD_CHARS = 32_768
_OTEL_CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

AgentFlush = Literal["background", "wait"]
"""When the end of a root trace (`@agent`) is delivered: by the worker, or before returning."""
AGENT_FLUSH_VALUES: tuple[AgentFlush, ...] = ("background", "wait")
SEMCONV_NAMES: tuple[str, ...] = ("genai", "openinference")
"""Conventions a payload can be written under (`semconv`): OTel GenAI and OpenInference."""
FEEDBACK_SINK_NAMES: tuple[str, ...] = ("phoenix", "langfuse", "mlflow")
"""Where `feedback_sinks` can send feedback and signals natively ("none": nowhere)."""
SERVERLESS_VARIABLES = ("AWS_LAMBDA_FUNCTION_NAME", "FUNCTION_TARGET", "FUNCTIONS_WORKER_RUNTIME")
"""Set by AWS Lambda, Google Cloud Functions (and Cloud Run functions), Azure Functions."""


def _env(name: str) -> dict[str, str]:
    return {"env": name}


@dataclass(frozen=True)
class RolloutConfig:
    """Everything a `Rollout` client is built from. Build it with `resolve_config`."""

    api_key: str | None = field(default=None, repr=False, metadata=_env("ROLLOUT_API_KEY"))
    base_url: str | None = field(default=None, metadata=_env("ROLLOUT_BASE_URL"))
    environment: str | None = field(default=None, metadata=_env("ROLLOUT_ENVIRONMENT"))
    release: str | None = field(default=None, metadata=_env("ROLLOUT_RELEASE"))
    service_name: str | None = field(default=None, metadata=_env("ROLLOUT_SERVICE_NAME"))
    agent_name: str | None = field(default=None, metadata=_env("ROLLOUT_AGENT_NAME"))
    agent_id: str | None = field(default=None, metadata=_env("ROLLOUT_AGENT_ID"))
    agent_version: str | None = field(default=None, metadata=_env("ROLLOUT_AGENT_VERSION"))
    deployment: str | None = field(default=None, metadata=_env("ROLLOUT_DEPLOYMENT"))
    sample_rate: float = field(default=1.0, metadata=_env("ROLLOUT_SAMPLE_RATE"))
    debug: bool = field(default=False, metadata=_env("ROLLOUT_DEBUG"))
    disabled: bool = field(default=False, metadata=_env("ROLLOUT_DISABLED"))
    max_queue_events: int = 65_536
    max_queue_bytes: int = 32 * 1024 * 1024
    max_batch_events: int = 512
    max_batch_bytes: int = 2 * 1024 * 1024
    flush_interval: float = 2.0
    shutdown_timeout: float = 5.0
    sync_mode: bool = False
    before_send: Callable[[EventDict], EventDict | None] | None = None
    scrubber: Callable[[EventDict], EventDict] | None = None
    send_default_pii: bool = False
    default_scrubbing: bool = field(default=True, metadata=_env("ROLLOUT_DEFAULT_SCRUBBING"))
    scrub_keys: tuple[str, ...] = ()
    scrub_patterns: tuple[str, ...] = ()
    scrub_allow_keys: tuple[str, ...] = ()
    capture_inputs: bool = field(default=True, metadata=_env("ROLLOUT_CAPTURE_INPUTS"))
    capture_outputs: bool = field(default=True, metadata=_env("ROLLOUT_CAPTURE_OUTPUTS"))
    capture_content: bool | None = field(default=None, metadata=_env("ROLLOUT_CAPTURE_CONTENT"))
    capture_stream_chunks: bool = False
    stream_preview_chars: int = 4096
    auto_instrument: tuple[str, ...] = field(default=(), metadata=_env("ROLLOUT_AUTO_INSTRUMENT"))
    # OpenTelemetry-native options (DESIGN.md).
    tracer_provider: TracerProvider | None = None
    span_processors: tuple[SpanProcessor, ...] = ()
    span_exporters: tuple[SpanExporter, ...] = ()
    console: bool | None = field(default=None, metadata=_env("ROLLOUT_CONSOLE"))
    install_global_provider: bool = True
    export_all_spans: bool = False
    link_foreign_parent: bool = False
    max_payload_chars: int = field(
        default=_DEFAULT_PAYLOAD_CHARS, metadata=_env("ROLLOUT_MAX_PAYLOAD_CHARS")
    )
    # "wait": the end of a root trace waits for its delivery (bounded by shutdown_timeout);
    # the default on a detected serverless runtime (`SERVERLESS_VARIABLES`).
    agent_flush: AgentFlush = field(default="background", metadata=_env("ROLLOUT_AGENT_FLUSH"))
    # Each captured payload is written once under each of these conventions' keys
    # (`rollout.input`/`rollout.output` only where none of them has a key for the span).
    semconv: tuple[str, ...] = field(default=SEMCONV_NAMES, metadata=_env("ROLLOUT_SEMCONV"))
    # GenAI metrics (token usage, operation durations, cost), recorded where operations
    # end whatever the sampling; delivered through `meter_provider`, else an SDK
    # MeterProvider installed globally, else to the destination's /v1/metrics.
    metrics: bool = field(default=True, metadata=_env("ROLLOUT_METRICS"))
    # One usage-carrying span per LLM call made through `wrap()`: the provider SDK's own
    # span and other instrumentors' LLM spans of that call are suppressed (README
    # "Running next to other instrumentations"); False keeps them beside ours.
    dedupe_llm_spans: bool = field(default=True, metadata=_env("ROLLOUT_DEDUPE_LLM_SPANS"))
    meter_provider: MeterProvider | None = None
    # Where feedback and signals also go as native annotations/scores/assessments
    # (`pipeline/_sinks.py`); None: the defaults the destination implies.
    feedback_sinks: tuple[str, ...] | None = field(
        default=None, metadata=_env("ROLLOUT_FEEDBACK_SINKS")
    )
    # Headers added to every request Rollout makes (export, metrics, sinks, check), as
    # (lower-case name, value) pairs; never logged.
    headers: tuple[tuple[str, str], ...] = field(
        default=(), repr=False, metadata=_env("ROLLOUT_HEADERS")
    )

    @property
    def console_enabled(self) -> bool:
        """The console tree is on when asked for, or by default with no destination."""
        if self.console is not None:
            return self.console
        return not self.has_destination

    @property
    def content_enabled(self) -> bool:
        """Message content is captured: `capture_content`, else the OTel GenAI switch, else on."""
        return self.capture_content is not False

    @property
    def has_destination(self) -> bool:
        """A Rollout or standard OTLP destination is configured."""
        return bool(
            self.base_url
            or _nonempty(os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
            or _nonempty(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
        )


_FIELDS = {f.name: f for f in dataclasses.fields(RolloutConfig)}


def _nonempty(value: str | None) -> str | None:
    return value if value is not None and value.strip() != "" else None


def _parse_bool(raw: object, source: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{source} must be a boolean (true/false/1/0/yes/no/on/off), got {raw!r}")


def _parse_float(raw: object, source: str) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"{source} must be a number, got {raw!r}")
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{source} must be a number, got {raw!r}") from None


def _parse_int(raw: object, source: str) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"{source} must be an integer, got {raw!r}")
    try:
        value = int(str(raw).strip()) if isinstance(raw, str) else int(raw)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ValueError(f"{source} must be an integer, got {raw!r}") from None
    return value


def _parse_choice(raw: object, source: str, choices: tuple[str, ...]) -> str:
    text = raw.strip().lower() if isinstance(raw, str) else None
    if text in choices:
        return text
    raise ValueError(f"{source} must be one of {', '.join(choices)}, got {raw!r}")


def serverless_runtime(env: Mapping[str, str]) -> str | None:
    """The variable that shows a serverless runtime (Lambda, Cloud/Azure Functions), if any."""
    for name in SERVERLESS_VARIABLES:
        if _nonempty(env.get(name)) is not None:
            return name
    return None


def _parse_names(raw: object, source: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(raw, Iterable):
        return tuple(str(part).strip() for part in raw if str(part).strip())
    raise ValueError(f"{source} must be a comma-separated string or a list of names")


def _parse_semconv(raw: object, source: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.lower() for name in _parse_names(raw, source)))
    unknown = [name for name in names if name not in SEMCONV_NAMES]
    if unknown:
        raise ValueError(
            f"{source}: unknown convention(s) {', '.join(map(repr, unknown))}; "
            f"valid names: {', '.join(SEMCONV_NAMES)}"
        )
    return names


def _parse_sinks(raw: object, source: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.lower() for name in _parse_names(raw, source)))
    if names == ("none",):
        return ()
    unknown = [name for name in names if name not in FEEDBACK_SINK_NAMES]
    if unknown:
        raise ValueError(
            f"{source}: unknown feedback sink(s) {', '.join(map(repr, unknown))}; "
            f"valid names: {', '.join(FEEDBACK_SINK_NAMES)} (or none)"
        )
    return names


def parse_headers(raw: object, source: str) -> tuple[tuple[str, str], ...]:
    """`key=value,key=value` (values percent-decoded, as the OTel header variables) or a
    mapping, as (lower-case name, value) pairs. A malformed entry is a ValueError naming
    `source` and the entry's position, never its text (it may hold a secret)."""
    from urllib.parse import unquote

    if isinstance(raw, Mapping):
        pairs = [(str(key), str(value)) for key, value in raw.items()]
    elif isinstance(raw, str):
        pairs = []
        for position, entry in enumerate(raw.split(","), 1):
            if not entry.strip():
                continue
            key, equals, value = entry.partition("=")
            if not equals or not key.strip():
                raise ValueError(
                    f"{source} must be key=value pairs separated by commas; entry {position} "
                    "has no key=value"
                )
            pairs.append((unquote(key.strip()), unquote(value.strip())))
    else:
        raise ValueError(f"{source} must be a mapping or a 'key=value,key=value' string")
    for position, (key, _) in enumerate(pairs, 1):
        if not _HEADER_NAME.fullmatch(key):
            raise ValueError(f"{source}: header {position} has an invalid name")
    return tuple((key.lower(), value) for key, value in pairs)


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def check_url(url: str, source: str) -> str:
    """`url` without a trailing slash; ValueError naming `source` when malformed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{source} must be an http(s) URL such as http://localhost:4318")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError(f"{source} has an invalid port") from None
    return url.rstrip("/")


def _coerce(name: str, raw: object, source: str) -> object:
    """Parse and validate one field's raw value; `source` names where it came from."""
    default = _FIELDS[name].default
    if name in ("span_processors", "span_exporters"):
        return tuple(raw) if isinstance(raw, Iterable) else (raw,)
    if name == "auto_instrument":
        try:
            return validate(_parse_names(raw, source))
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
    if name == "semconv":
        return _parse_semconv(raw, source)
    if name == "feedback_sinks":
        return _parse_sinks(raw, source)
    if name == "headers":
        return parse_headers(raw, source)
    if name in ("scrub_keys", "scrub_allow_keys"):
        return _parse_names(raw, source)
    if name == "scrub_patterns":
        patterns = (
            (raw,) if isinstance(raw, str) else tuple(raw) if isinstance(raw, Iterable) else ()
        )
        for pattern in patterns:
            try:
                re.compile(str(pattern))
            except re.error as exc:
                raise ValueError(
                    f"{source}: invalid regular expression {pattern!r}: {exc}"
                ) from None
        return tuple(str(pattern) for pattern in patterns)
    if name in ("before_send", "scrubber"):
        if not callable(raw):
            raise ValueError(f"{source} must be callable")
        return raw
    if name in ("tracer_provider", "meter_provider"):
        return raw
    if name == "agent_flush":
        return _parse_choice(raw, source, AGENT_FLUSH_VALUES)
    if isinstance(default, bool) or name in ("console", "capture_content"):
        return _parse_bool(raw, source)
    if isinstance(default, float):
        value = _parse_float(raw, source)
        if name == "sample_rate" and not 0.0 <= value <= 1.0:
            raise ValueError(f"{source} must be between 0.0 and 1.0, got {raw!r}")
        if name != "sample_rate" and value <= 0:
            raise ValueError(f"{source} must be greater than 0, got {raw!r}")
        return value
    if isinstance(default, int):
        value_i = _parse_int(raw, source)
        if value_i <= 0:
            raise ValueError(f"{source} must be greater than 0, got {raw!r}")
        return value_i
    text = str(raw)
    if name == "base_url":
        return check_url(text, source)
    return text


PLANNED_VARIABLES = ("ROLLOUT_DEDUPE_LLM_SPANS",)
"""Variables API.md documents for options still being built: known, never called unknown."""


def known_variables() -> tuple[str, ...]:
    """Every `ROLLOUT_*` variable Rollout knows: each field's, and the planned ones."""
    named = (spec.metadata.get("env") for spec in _FIELDS.values())
    return tuple(sorted({name for name in named if name} | set(PLANNED_VARIABLES)))


def warn_unknown_variables(environ: Mapping[str, str]) -> None:
    """Warn once per name about a `ROLLOUT_*` variable Rollout does not read.

    Names the closest known variable (a typo such as `ROLLOUT_BASEURL`, or lower case).
    """
    known = known_variables()
    for name in list(environ):
        if not name.upper().startswith("ROLLOUT_") or name in known:
            continue
        import difflib  # only for a name to correct: kept off the import path

        # Compared without the shared prefix, which would make every name look close.
        suffixes = [known_name.removeprefix("ROLLOUT_") for known_name in known]
        given = name.upper()[len("ROLLOUT_") :]
        close = (
            difflib.get_close_matches(given, suffixes, n=1, cutoff=0.6)
            or [suffix for suffix in suffixes if given and given in suffix][:1]
        )
        advice = (
            f"did you mean ROLLOUT_{close[0]}?"
            if close
            else f"the variables Rollout reads are {', '.join(known)}"
        )
        log_once(
            f"unknown-variable-{name}",
            logging.WARNING,
            "mv37.rollout: environment variable %s is not a Rollout setting and is ignored; %s",
            name,
            advice,
        )


def resolve_config(env: Mapping[str, str] | None = None, /, **arguments: object) -> RolloutConfig:
    """Build a `RolloutConfig` from keyword arguments and `ROLLOUT_*` variables.

    Args:
        env: The environment to read (defaults to `os.environ`).
        **arguments: Any `RolloutConfig` field; `None` and `""` count as unset.

    Raises:
        TypeError: For an unknown argument.
        ValueError: For an invalid value, naming the argument or variable.
    """
    environ = os.environ if env is None else env
    unknown = sorted(set(arguments) - set(_FIELDS))
    if unknown:
        raise TypeError(f"unknown Rollout argument(s): {', '.join(unknown)}")
    warn_unknown_variables(environ)
    values: dict[str, object] = {}
    for name, spec in _FIELDS.items():
        raw = arguments.get(name)
        if isinstance(raw, str) and raw.strip() == "":
            raw = None
        if raw is not None:
            values[name] = _coerce(name, raw, f"argument {name}")
            continue
        env_name = spec.metadata.get("env")
        env_raw = _nonempty(environ.get(env_name)) if env_name else None
        if env_raw is not None and env_name is not None:
            values[name] = _coerce(name, env_raw.strip(), f"environment variable {env_name}")
    if "capture_content" not in values:
        otel_content = _nonempty(environ.get(_OTEL_CAPTURE_CONTENT))
        if otel_content is not None:
            values["capture_content"] = _parse_bool(
                otel_content.strip(), f"environment variable {_OTEL_CAPTURE_CONTENT}"
            )
    if "agent_flush" not in values:
        runtime = serverless_runtime(environ)
        if runtime is not None:
            values["agent_flush"] = "wait"
            debug_once(
                "serverless-agent-flush",
                "mv37.rollout: serverless runtime detected (%s is set): agent_flush defaults "
                "to 'wait'; set agent_flush or ROLLOUT_AGENT_FLUSH to choose",
                runtime,
            )
    config = RolloutConfig(**values)  # type: ignore[arg-type]
    if "max_payload_chars" not in values:
        otel_limit = _nonempty(environ.get("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"))
        if otel_limit is not None:
            limit = _parse_int(otel_limit, "environment variable OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")
            if 0 < limit < config.max_payload_chars:
                config = dataclasses.replace(config, max_payload_chars=limit)
    return config

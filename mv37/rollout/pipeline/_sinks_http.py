"""The feedback sinks' HTTP APIs: Phoenix annotations, Langfuse scores, MLflow assessments.

Each sink turns an `Outcome` into its backend's request and the answer into a `Reply`
(`ok`, `retry`, `fail`, with the cause). Every request carries the export's headers
(`request_headers`: the OTel header variables, `headers` / `ROLLOUT_HEADERS`, the API
key), and the sink's own auth where it has one (Langfuse: Basic from its key pair).

- **phoenix**: `POST {phoenix}/v1/trace_annotations?sync=true` for the trace and
  `/v1/span_annotations?sync=true` for the span it is about (`identifier` = the outcome's
  key: a retry upserts). `sync=true` makes Phoenix answer 404 while it has not ingested
  the trace or span yet, so we retry until it sticks (without it, Phoenix answers 200
  at once and keeps the annotation in memory, retrying every 10 s for up to 10 minutes:
  whether it ever landed is unknown, and a restart loses it).
  `{phoenix}`: `PHOENIX_COLLECTOR_ENDPOINT`, else the destination's base.
- **langfuse**: `POST {host}/api/public/scores`, Basic auth from `LANGFUSE_PUBLIC_KEY` /
  `LANGFUSE_SECRET_KEY`; `id` = the outcome's key (Langfuse upserts on it); traceId and
  observationId are the OTel ids (what Langfuse uses for OTLP-ingested traces). `{host}`:
  `LANGFUSE_BASE_URL` / `LANGFUSE_HOST`, else the destination up to `/api/public/otel`.
- **mlflow**: `POST {server}/api/3.0/mlflow/traces/tr-{trace id}/assessments` (what
  `mlflow.log_feedback` sends); 404 until the trace is ingested, so retried. No upsert:
  a retry after a timeout or 5xx first looks for the key in the trace's assessments.
  `{server}`: the destination's base.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mv37.rollout.base._config import check_url
from mv37.rollout.base._diagnostics import debug_once
from mv37.rollout.pipeline._destination import TRACES_PATH, redact_url, request_headers
from mv37.rollout.pipeline._sinks import Outcome, Reply, Sink, SinkWorker, Verdict, split_value

if TYPE_CHECKING:
    from mv37.rollout.base._config import RolloutConfig
    from mv37.rollout.pipeline._destination import Destination
    from mv37.rollout.pipeline._stats import Counters

LANGFUSE_OTEL_PATH = "/api/public/otel"
MLFLOW_EXPERIMENT_HEADER = "x-mlflow-experiment-id"
DEFAULT_TIMEOUT_S = 10.0
_ANNOTATOR = {"feedback": "HUMAN", "signal": "CODE"}
_SOURCE = "mv37.rollout"
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_NOT_SENT = ("content-type", "content-encoding", "content-length")


class _Http:
    """One sink's endpoint base, headers (secrets kept out of messages) and timeout."""

    def __init__(self, base: str, headers: Mapping[str, str], timeout: float) -> None:
        self.base = base.rstrip("/")
        self.headers = {k: v for k, v in headers.items() if k not in _NOT_SENT}
        self.headers["content-type"] = "application/json"
        self.timeout = timeout
        self.where = redact_url(self.base)
        self._secrets = [v for k, v in self.headers.items() if k != "content-type" and len(v) > 3]

    def scrub(self, text: str) -> str:
        """`text` without any header value (credentials) in it."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def call(
        self, session: Any, method: str, path: str, body: object = None
    ) -> tuple[int | None, str, Reply | None]:
        """(status, body text, None), or (None, "", the Reply for a network error)."""
        import requests

        try:
            response = session.request(
                method,
                self.base + path,
                data=None if body is None else json.dumps(body, default=str),
                headers=self.headers,
                timeout=self.timeout,
            )
        except requests.exceptions.Timeout:
            return None, "", Reply("retry", f"no answer within {self.timeout:g} s", True)
        except requests.exceptions.ConnectionError:
            return None, "", Reply("retry", "cannot connect (is the server running there?)")
        except requests.exceptions.RequestException as exc:
            return None, "", Reply("fail", self.scrub(f"{type(exc).__name__}: {exc}"))
        return response.status_code, response.text or "", None

    def judge(self, status: int, text: str, *, not_yet: bool, hint: Mapping[int, str]) -> Reply:
        """A non-2xx answer as a Reply: 404 retried when `not_yet` (not ingested yet)."""
        said = " ".join(self.scrub(text).split())[:200]
        cause = f"HTTP {status}" + (f": {said}" if said else "")
        if status in hint:
            cause = f"{cause}. {hint[status]}"
        if status in _RETRY_STATUSES:
            return Reply("retry", cause, status >= 500)
        if status == 404 and not_yet:
            return Reply("retry", cause)
        return Reply("fail", cause)


def _metadata(outcome: Outcome, verdict: Verdict) -> dict[str, Any]:
    meta: dict[str, Any] = {**verdict.rest, **outcome.attributes}
    meta["rollout.kind"] = outcome.kind
    if outcome.user_id:
        meta["user.id"] = outcome.user_id
    return meta


class PhoenixSink:
    """Phoenix trace and span annotations."""

    name = "phoenix"
    title = "Phoenix"

    def __init__(self, http: _Http) -> None:
        self.http = http
        self.where = http.where

    def send(self, session: Any, outcome: Outcome, attempt: int, ambiguous: bool) -> Reply:
        verdict = split_value(outcome.value)
        result = {
            key: value
            for key, value in (
                ("label", verdict.label),
                ("score", verdict.score),
                ("explanation", verdict.explanation),
            )
            if value is not None
        }
        item: dict[str, Any] = {
            "name": outcome.name,
            "annotator_kind": _ANNOTATOR.get(outcome.kind, "CODE"),
            "result": result or None,
            "metadata": _metadata(outcome, verdict),
            "identifier": f"rollout-{outcome.key}",
        }
        targets = [("/v1/trace_annotations?sync=true", {**item, "trace_id": outcome.trace_id})]
        if outcome.span_id:
            targets.append(("/v1/span_annotations?sync=true", {**item, "span_id": outcome.span_id}))
        for path, data in targets:
            status, text, failed = self.http.call(session, "POST", path, {"data": [data]})
            if failed is not None:
                return failed
            assert status is not None
            if not 200 <= status < 300:
                return self.http.judge(
                    status,
                    text,
                    not_yet=True,
                    hint={
                        401: "Check the API key (sent as the export's Authorization header)",
                        403: "Check the API key (sent as the export's Authorization header)",
                        404: "Phoenix does not have the trace: were its spans sent there?",
                    },
                )
        return Reply("ok")


class LangfuseSink:
    """Langfuse scores."""

    name = "langfuse"
    title = "Langfuse"

    def __init__(self, http: _Http) -> None:
        self.http = http
        self.where = http.where

    def send(self, session: Any, outcome: Outcome, attempt: int, ambiguous: bool) -> Reply:
        verdict = split_value(outcome.value)
        meta = _metadata(outcome, verdict)
        body: dict[str, Any] = {"id": f"rollout-{outcome.key}", "traceId": outcome.trace_id}
        if outcome.span_id:
            body["observationId"] = outcome.span_id
        body["name"] = outcome.name
        if verdict.boolean is not None:
            body["value"], body["dataType"] = (1 if verdict.boolean else 0), "BOOLEAN"
        elif verdict.score is not None:
            body["value"], body["dataType"] = verdict.score, "NUMERIC"
            if verdict.label is not None:
                meta["label"] = verdict.label
        elif verdict.label is not None:
            body["value"], body["dataType"] = verdict.label, "CATEGORICAL"
        else:
            return Reply("fail", f"{outcome.name!r} has no score or label to send as a score")
        if verdict.explanation is not None:
            body["comment"] = verdict.explanation
        body["metadata"] = meta
        status, text, failed = self.http.call(session, "POST", "/api/public/scores", body)
        if failed is not None:
            return failed
        assert status is not None
        if 200 <= status < 300:
            return Reply("ok")
        keys = "Check LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (sent as Basic auth)"
        return self.http.judge(status, text, not_yet=False, hint={401: keys, 403: keys})


def _rfc3339(time_ns: int) -> str:
    moment = datetime.fromtimestamp(time_ns / 1e9, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


class MLflowSink:
    """MLflow assessments (feedback)."""

    name = "mlflow"
    title = "MLflow"

    def __init__(self, http: _Http) -> None:
        self.http = http
        self.where = http.where

    def send(self, session: Any, outcome: Outcome, attempt: int, ambiguous: bool) -> Reply:
        trace = f"tr-{outcome.trace_id}"
        path = f"/api/3.0/mlflow/traces/{trace}/assessments"
        if ambiguous and self._landed(session, trace, outcome.key):
            return Reply("ok")
        verdict = split_value(outcome.value)
        value: object
        if isinstance(outcome.value, (bool, int, float, str)):
            value = outcome.value
        elif verdict.boolean is not None:
            value = verdict.boolean
        elif verdict.score is not None:
            value = verdict.score
        elif verdict.label is not None:
            value = verdict.label
        else:
            value = outcome.value
        meta = {key: _text(item) for key, item in _metadata(outcome, verdict).items()}
        meta["rollout.outcome_id"] = outcome.key
        if verdict.label is not None and value != verdict.label and verdict.boolean is None:
            meta["label"] = verdict.label
        when = _rfc3339(outcome.time_ns)
        assessment: dict[str, Any] = {
            "assessment_name": outcome.name,
            "trace_id": trace,
            "source": {
                "source_type": _ANNOTATOR.get(outcome.kind, "CODE"),
                "source_id": (outcome.user_id if outcome.kind == "feedback" else None) or _SOURCE,
            },
            "create_time": when,
            "last_update_time": when,
            "feedback": {"value": value},
            "metadata": meta,
        }
        if outcome.span_id:
            assessment["span_id"] = outcome.span_id
        if verdict.explanation is not None:
            assessment["rationale"] = verdict.explanation
        status, text, failed = self.http.call(session, "POST", path, {"assessment": assessment})
        if failed is not None:
            return failed
        assert status is not None
        if 200 <= status < 300:
            return Reply("ok")
        return self.http.judge(
            status,
            text,
            not_yet=True,
            hint={404: "MLflow does not have the trace: were its spans sent there?"},
        )

    def _landed(self, session: Any, trace: str, key: str) -> bool:
        """The assessment with `key` is on the trace already (an earlier try landed)."""
        status, text, failed = self.http.call(session, "GET", f"/api/3.0/mlflow/traces/{trace}")
        if failed is not None or status != 200:
            return False
        try:
            info = json.loads(text)["trace"]["trace_info"]
        except (ValueError, KeyError, TypeError):
            return False
        return any(
            (item.get("metadata") or {}).get("rollout.outcome_id") == key
            for item in info.get("assessments") or []
        )


# -- which sinks ----------------------------------------------------------------------------

_SOURCE_NAME = "feedback_sinks / ROLLOUT_FEEDBACK_SINKS"


def _destination_base(destination: Destination | None) -> str | None:
    """The destination's endpoint without `/v1/traces`."""
    if destination is None:
        return None
    endpoint = destination.endpoint.rstrip("/")
    return endpoint[: -len(TRACES_PATH)] if endpoint.endswith(TRACES_PATH) else endpoint


def _env_url(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = (env.get(name) or "").strip()
        if value:
            url = check_url(value, f"environment variable {name}")
            return url[: -len(TRACES_PATH)] if url.endswith(TRACES_PATH) else url
    return None


def _langfuse_base(destination: Destination | None) -> str | None:
    if destination is None:
        return None
    path = urlsplit(destination.endpoint).path
    where = path.find(LANGFUSE_OTEL_PATH)
    if where < 0:
        return None
    cut = destination.endpoint.index(path) + where
    return destination.endpoint[:cut]


def _langfuse_keys(env: Mapping[str, str]) -> tuple[str, str] | None:
    public = (env.get("LANGFUSE_PUBLIC_KEY") or "").strip()
    secret = (env.get("LANGFUSE_SECRET_KEY") or "").strip()
    return (public, secret) if public and secret else None


def default_sinks(destination: Destination | None, env: Mapping[str, str]) -> tuple[str, ...]:
    """The sinks on without `feedback_sinks`: langfuse when the destination is Langfuse's
    OTLP endpoint and its keys are set; mlflow when the export headers name an MLflow
    experiment (`x-mlflow-experiment-id`)."""
    names: list[str] = []
    if _langfuse_base(destination) is not None and _langfuse_keys(env) is not None:
        names.append("langfuse")
    if destination is not None and MLFLOW_EXPERIMENT_HEADER in destination.headers:
        names.append("mlflow")
    return tuple(names)


def choose(
    config: RolloutConfig, destination: Destination | None, env: Mapping[str, str]
) -> list[Sink]:
    """The sinks `config.feedback_sinks` names (None: `default_sinks`), built.

    Raises:
        ValueError: A named sink with nowhere to send to, or Langfuse without keys.
    """
    names = config.feedback_sinks
    if names is None:
        names = default_sinks(destination, env)
        for name in names:
            debug_once(
                f"default-sink-{name}",
                "mv37.rollout: feedback also goes to %s (the destination implies it); "
                "feedback_sinks=none turns that off",
                name,
            )
    headers = dict(destination.headers) if destination else request_headers(config, env)
    timeout = min(destination.timeout, DEFAULT_TIMEOUT_S) if destination else DEFAULT_TIMEOUT_S
    base = _destination_base(destination)
    sinks: list[Sink] = []
    for name in names:
        if name == "phoenix":
            url = _env_url(env, "PHOENIX_COLLECTOR_ENDPOINT") or base
            if url is None:
                raise ValueError(
                    f"{_SOURCE_NAME} names phoenix, but there is no Phoenix to send to: set "
                    "PHOENIX_COLLECTOR_ENDPOINT or a destination (base_url / ROLLOUT_BASE_URL)"
                )
            sinks.append(PhoenixSink(_Http(url, headers, timeout)))
        elif name == "langfuse":
            url = _env_url(env, "LANGFUSE_BASE_URL", "LANGFUSE_HOST") or _langfuse_base(destination)
            if url is None:
                raise ValueError(
                    f"{_SOURCE_NAME} names langfuse, but there is no Langfuse to send to: set "
                    "LANGFUSE_BASE_URL (or LANGFUSE_HOST), or a destination ending in "
                    f"{LANGFUSE_OTEL_PATH}"
                )
            own = dict(headers)
            keys = _langfuse_keys(env)
            if keys is not None:
                token = base64.b64encode(f"{keys[0]}:{keys[1]}".encode()).decode("ascii")
                own["authorization"] = f"Basic {token}"
            elif not re.match(r"(?i)basic ", own.get("authorization", "")):
                raise ValueError(
                    f"{_SOURCE_NAME} names langfuse, but LANGFUSE_PUBLIC_KEY and "
                    "LANGFUSE_SECRET_KEY are not set (its scores API needs them)"
                )
            sinks.append(LangfuseSink(_Http(url, own, timeout)))
        elif name == "mlflow":
            if base is None:
                raise ValueError(
                    f"{_SOURCE_NAME} names mlflow, but there is no destination: set base_url / "
                    "ROLLOUT_BASE_URL to the MLflow server"
                )
            sinks.append(MLflowSink(_Http(base, headers, timeout)))
    if sinks:
        logging.getLogger("mv37.rollout").debug(
            "mv37.rollout: feedback sinks: %s", ", ".join(f"{s.name} {s.where}" for s in sinks)
        )
    return sinks


def sink_worker(
    config: RolloutConfig, destination: Destination | None, counters: Counters
) -> SinkWorker | None:
    """The worker for the sinks `config` names, or implies (see `_sinks_http.choose`).

    Raises:
        ValueError: A named sink has nowhere to send to or no credentials (named).
    """
    sinks = choose(config, destination, os.environ)
    if not sinks:
        return None
    return SinkWorker(sinks, counters, config.max_queue_events)

"""Feedback where people look (issue 15), against a real Phoenix and a real MLflow.

An agent runs in this process with live feedback and a signal; then a second process
that knows only the trace id sends a late feedback, as a support tool or a webhook
would. Both go to the backend's own feedback API through the feedback sinks (Phoenix
trace and span annotations, MLflow assessments), read back over its REST API. The late
feedback's carrier span lands under the trace's one root, and the trace keeps its time
range and duration as the backend reports them.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.servers import MLflow, Phoenix, clean_environ
from mv37 import rollout
from mv37.rollout.testing import reset_global_tracer_provider

# A second process that knows only the trace id: it sends one feedback, flushes, and
# reports what its sinks counted.
LATE_FEEDBACK = """
import json, sys
from mv37 import rollout
client = rollout.init()
rollout.feedback("csat", 4, trace_id=sys.argv[1])
flushed = rollout.flush()
stats = client.stats()
print(json.dumps({"flushed": flushed, "sent": stats.feedback_sent,
                  "failed": stats.feedback_failed}))
"""


@rollout.agent("support", user_id="u-1", session_id="s-1")
def support(question: str) -> str:
    """Answer with a feedback, a signal and a dict-valued feedback on the trace; returns
    the trace id."""
    trace = rollout.current_trace()
    assert trace is not None
    with trace.span("retrieval", name="faq") as span:
        span.record_output(["Refunds take 5 days."])
    trace.feedback("thumbs_up", True)
    trace.signal("resolved", True)
    trace.feedback("quality", {"label": "good", "score": 0.9, "explanation": "cited the FAQ"})
    return trace.trace_id


@pytest.fixture
def client() -> Iterator[None]:
    """This process's client is the test's to init; shut down and reset afterwards."""
    try:
        yield
    finally:
        rollout.shutdown()
        reset_global_tracer_provider()


def _run_agent(sink: str, **options: Any) -> str:
    """Run `support` on a client with `options` and flush; its trace id. The three live
    outcomes reached `sink` and none failed."""
    client = rollout.init(console=False, metrics=False, **options)
    trace_id = support("How long do refunds take?")
    assert rollout.flush()
    stats = client.stats()
    assert (stats.feedback_sent, stats.feedback_failed) == ({sink: 3}, {sink: 0})
    assert (stats.export_failures, stats.spans_exported) == (0, 2)
    return trace_id


def _late_feedback(trace_id: str, env: dict[str, str], sink: str) -> None:
    """Send `csat` = 4 for `trace_id` from another process configured by `env` alone."""
    done = subprocess.run(
        [sys.executable, "-c", LATE_FEEDBACK, trace_id],
        env={**clean_environ(), "ROLLOUT_METRICS": "false", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"flushed": True, "sent": {sink: 1}, "failed": {sink: 0}}, done.stderr


def _results(annotations: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """Phoenix annotations as (name, annotator kind, label, score, explanation)."""
    return {
        (
            a["name"],
            a["annotator_kind"],
            (a.get("result") or {}).get("label"),
            (a.get("result") or {}).get("score"),
            (a.get("result") or {}).get("explanation"),
        )
        for a in annotations
    }


LIVE_ANNOTATIONS = {
    ("thumbs_up", "HUMAN", "true", 1.0, None),
    ("resolved", "CODE", "true", 1.0, None),
    ("quality", "HUMAN", "good", 0.9, "cited the FAQ"),
}
LATE_ANNOTATION = ("csat", "HUMAN", None, 4.0, None)


@pytest.mark.usefixtures("client")
def test_phoenix_annotations_live_and_late(phoenix: Phoenix, project: str) -> None:
    """Trace and root-span annotations in Phoenix; the late one from another process
    knowing only the trace id; the trace's one root and time range unchanged by it."""
    trace_id = _run_agent(
        "phoenix",
        base_url=phoenix.url,
        headers={"x-project-name": project},
        feedback_sinks="phoenix",
    )
    spans = phoenix.wait_for_spans(project, 2)
    (root,) = (s for s in spans if s["parent_id"] is None)
    root_id = root["context"]["span_id"]
    # ?sync=true: the annotations are stored when flush() returns; no waiting.
    assert _results(phoenix.annotations(project, "trace", [trace_id])) == LIVE_ANNOTATIONS
    assert _results(phoenix.annotations(project, "span", [root_id])) == LIVE_ANNOTATIONS
    (before,) = phoenix.traces(project)

    _late_feedback(
        trace_id,
        {
            "ROLLOUT_BASE_URL": phoenix.url,
            "ROLLOUT_HEADERS": f"x-project-name={project}",
            "ROLLOUT_FEEDBACK_SINKS": "phoenix",
        },
        "phoenix",
    )
    expected = {*LIVE_ANNOTATIONS, LATE_ANNOTATION}
    assert _results(phoenix.annotations(project, "trace", [trace_id])) == expected
    assert _results(phoenix.annotations(project, "span", [root_id])) == expected
    (late,) = (a for a in phoenix.annotations(project, "trace", [trace_id]) if a["name"] == "csat")
    assert late["trace_id"] == trace_id
    assert late["identifier"].startswith("rollout-")

    spans = phoenix.wait_for_spans(project, 3)  # the carrier span, ingested on its own
    assert [s["name"] for s in spans if s["parent_id"] is None] == [root["name"]]
    (carrier,) = (s for s in spans if s["name"] == "feedback csat")
    assert carrier["context"]["trace_id"] == trace_id
    assert carrier["parent_id"] == root_id
    assert root["start_time"] <= carrier["start_time"] <= carrier["end_time"] <= root["end_time"]
    (after,) = phoenix.traces(project)
    assert (after["trace_id"], after["start_time"], after["end_time"]) == (
        trace_id,
        before["start_time"],
        before["end_time"],
    )
    assert (after["start_time"], after["end_time"]) == (root["start_time"], root["end_time"])


def _span_id(encoded: str) -> str:
    """MLflow's base64 span id as hex."""
    return base64.b64decode(encoded).hex()


def _assessments(trace: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """MLflow assessments by name: (source type, source id, value, span id, rationale)."""
    return {
        a["assessment_name"]: (
            a["source"]["source_type"],
            a["source"]["source_id"],
            a["feedback"]["value"],
            a.get("span_id"),
            a.get("rationale"),
        )
        for a in trace["trace_info"].get("assessments", [])
    }


@pytest.mark.usefixtures("client")
def test_mlflow_assessments_live_and_late(mlflow: MLflow, request: pytest.FixtureRequest) -> None:
    """Assessments on the MLflow trace (the sink on by default for an experiment header);
    the late one from another process knowing only the trace id; one root span, the
    trace's request time and duration unchanged by it."""
    experiment = mlflow.create_experiment(request.node.name)
    header = {"x-mlflow-experiment-id": experiment}
    trace_id = _run_agent("mlflow", base_url=mlflow.url, headers=header)
    trace = mlflow.wait_for_spans(trace_id, 2)
    info = trace["trace_info"]
    assert info["trace_location"]["mlflow_experiment"]["experiment_id"] == experiment
    (root,) = (s for s in trace["spans"] if not s.get("parent_span_id"))
    root_id = _span_id(root["span_id"])
    live = {
        "thumbs_up": ("HUMAN", "u-1", True, root_id, None),
        "resolved": ("CODE", "mv37.rollout", True, root_id, None),
        "quality": ("HUMAN", "u-1", 0.9, root_id, "cited the FAQ"),
    }
    assert _assessments(trace) == live

    _late_feedback(
        trace_id,
        {"ROLLOUT_BASE_URL": mlflow.url, "ROLLOUT_HEADERS": f"x-mlflow-experiment-id={experiment}"},
        "mlflow",
    )
    after = mlflow.wait_for_spans(trace_id, 3)
    # Another process does not know the user: the late feedback's source is the SDK.
    assert _assessments(after) == {**live, "csat": ("HUMAN", "mv37.rollout", 4.0, root_id, None)}
    roots = [s for s in after["spans"] if not s.get("parent_span_id")]
    assert [s["span_id"] for s in roots] == [root["span_id"]]
    (carrier,) = (s for s in after["spans"] if s["name"] == "feedback csat")
    assert _span_id(carrier["parent_span_id"]) == root_id
    start, end = int(root["start_time_unix_nano"]), int(root["end_time_unix_nano"])
    assert (
        start <= int(carrier["start_time_unix_nano"]) <= int(carrier["end_time_unix_nano"]) <= end
    )
    now = after["trace_info"]
    assert (now["request_time"], now["execution_duration"]) == (
        info["request_time"],
        info["execution_duration"],
    )

"""Our provider's sampler decides exactly as `ParentBased(TraceIdRatioBased(rate))`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import (
    INVALID_SPAN,
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

import mv37.rollout as rollout
from mv37.rollout import semconv as sc
from mv37.rollout.pipeline._sampler import RatioSampler
from mv37.rollout.testing import capture_spans

_ids = st.integers(min_value=1, max_value=2**128 - 1)
_rates = st.sampled_from([0.0, 0.001, 0.1, 0.5, 0.99, 1.0])
_states = st.sampled_from([None, TraceState(), TraceState([("vendor", "x1")])])


@settings(max_examples=400, deadline=None)
@given(
    rate=_rates,
    trace_id=_ids,
    attributes=st.sampled_from([None, {}, {"a": 1, "b": "x"}]),
    parent=st.one_of(
        st.none(),
        st.tuples(st.booleans(), st.booleans(), _states),  # sampled, remote, trace state
    ),
)
def test_decides_as_the_sdk_composition(
    rate: float,
    trace_id: int,
    attributes: dict[str, object] | None,
    parent: tuple[bool, bool, TraceState | None] | None,
) -> None:
    if parent is None:
        context = set_span_in_context(INVALID_SPAN)
    else:
        sampled, remote, state = parent
        span_context = SpanContext(
            trace_id,
            0x1234,
            is_remote=remote,
            trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0),
            trace_state=state,
        )
        context = set_span_in_context(NonRecordingSpan(span_context))
    ours = RatioSampler(rate).should_sample(context, trace_id, "s", attributes=attributes)  # type: ignore[arg-type]
    sdk = ParentBased(TraceIdRatioBased(rate)).should_sample(
        context,
        trace_id,
        "s",
        attributes=attributes,  # type: ignore[arg-type]
    )
    assert ours.decision is sdk.decision
    assert dict(ours.attributes) == dict(sdk.attributes)
    assert (ours.trace_state or TraceState()) == (sdk.trace_state or TraceState())
    sdk_description = ParentBased(TraceIdRatioBased(rate)).get_description()  # type: ignore[no-untyped-call]
    assert RatioSampler(rate).get_description() == sdk_description


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_a_remote_parents_trace_state_is_kept(asynchronous: bool) -> None:
    """A trace continued from a remote parent with vendor trace state keeps it on every span."""
    remote = SpanContext(
        0xABC,
        0xDEF,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "x1")]),
    )
    from opentelemetry import context as otel_context

    with capture_spans() as captured:
        token = otel_context.attach(set_span_in_context(NonRecordingSpan(remote)))
        try:
            if asynchronous:
                async with rollout.trace("job") as trace, trace.span("step"):
                    pass
            else:
                with rollout.trace("job") as trace, trace.span("step"):
                    pass
        finally:
            otel_context.detach(token)
    exported = captured.spans()
    assert {(s.attributes or {})[sc.ROLLOUT_SPAN_NAME] for s in exported} == {"job", "step"}
    for span in exported:
        assert span.context.trace_id == 0xABC
        assert span.context.trace_state.get("vendor") == "x1"

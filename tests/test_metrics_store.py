"""Our metric aggregation (`pipeline/_metrics_store.py`): exact counts from many threads,
OTel's bucket rule, queued measurements folded at collection, groups split per series."""

from __future__ import annotations

import threading

from opentelemetry.sdk.metrics.export import HistogramDataPoint, NumberDataPoint

from mv37.rollout import semconv as sc
from mv37.rollout.pipeline import _metrics_store as store_module
from mv37.rollout.pipeline._metrics_store import Aggregates

SPECS = {spec.name: spec for spec in sc.METRICS}
TOOL = SPECS[sc.METRIC_GEN_AI_EXECUTE_TOOL_DURATION]
TOKENS = SPECS[sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE]
COST = SPECS[sc.METRIC_ROLLOUT_CLIENT_COST]


def histogram(store: Aggregates, *, delta: bool = False) -> list[HistogramDataPoint]:
    return [
        p
        for m in store.collect(delta=delta)
        for p in m.data.data_points
        if isinstance(p, HistogramDataPoint)
    ]


def test_many_threads_count_exactly() -> None:
    """8 threads x 5,000 measurements (past the fold threshold): every one is counted."""
    store = Aggregates()
    series = store.series(TOOL, {sc.GEN_AI_TOOL_NAME: "lookup"})

    def work() -> None:
        for _ in range(5_000):
            series.add(0.05)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [point] = histogram(store)
    assert point.count == 40_000
    assert abs(point.sum - 2_000.0) < 1e-6
    assert point.bucket_counts[3] == 40_000  # 0.04 < 0.05 <= 0.08


def test_a_value_on_a_bound_counts_in_the_bucket_it_closes() -> None:
    """OTel's explicit buckets are (b[i-1], b[i]]: 0.01 is in the first, 0.0100001 not."""
    store = Aggregates()
    series = store.series(TOOL, {sc.GEN_AI_TOOL_NAME: "lookup"})
    for value in (0.01, 0.0100001, 100.0):
        series.add(value)
    [point] = histogram(store)
    assert list(point.bucket_counts[:2]) == [1, 1]
    assert point.bucket_counts[-1] == 1  # above the last bound
    assert (point.min, point.max) == (0.01, 100.0)


def test_a_group_splits_its_values_and_skips_none() -> None:
    """A group's tuples land in their series; None adds nothing; folded before and after
    the threshold alike."""
    store = Aggregates()
    inputs = store.series(TOKENS, {sc.GEN_AI_TOKEN_TYPE: "input"})
    outputs = store.series(TOKENS, {sc.GEN_AI_TOKEN_TYPE: "output"})
    cost = store.series(COST, {})
    group = store.group((inputs, outputs, cost))
    for _ in range(store_module.FOLD_AT + 3):
        group.add((100, 5, None))
    group.add((1, None, 0.25))
    points = {
        dict(p.attributes or {}).get(sc.GEN_AI_TOKEN_TYPE, "cost"): p
        for m in store.collect(delta=False)
        for p in m.data.data_points
    }
    n = store_module.FOLD_AT + 3
    tokens_in, tokens_out, spent = points["input"], points["output"], points["cost"]
    assert isinstance(tokens_in, HistogramDataPoint)
    assert isinstance(tokens_out, HistogramDataPoint)
    assert isinstance(spent, NumberDataPoint)
    assert (tokens_in.count, tokens_in.sum) == (n + 1, 100 * n + 1)
    assert (tokens_out.count, tokens_out.sum) == (n, 5 * n)
    assert spent.value == 0.25


def test_delta_collections_start_again_and_keep_what_came_after() -> None:
    """Delta: each collection holds what came since the last; none when nothing came."""
    store = Aggregates()
    series = store.series(TOOL, {sc.GEN_AI_TOOL_NAME: "lookup"})
    series.add(1.0)
    [first] = histogram(store, delta=True)
    assert histogram(store, delta=True) == []
    series.add(2.0)
    series.add(3.0)
    [second] = histogram(store, delta=True)
    assert (first.count, second.count, second.sum) == (1, 2, 5.0)
    assert second.start_time_unix_nano == first.time_unix_nano


def test_reset_forgets_everything_queued_or_counted() -> None:
    """After a fork the child starts from nothing."""
    store = Aggregates()
    series = store.series(TOOL, {sc.GEN_AI_TOOL_NAME: "lookup"})
    series.add(1.0)
    store.reset()
    assert histogram(store) == []
    series.add(2.0)
    [point] = histogram(store)
    assert (point.count, point.sum) == (1, 2.0)


def test_a_series_in_a_group_also_keeps_what_was_added_to_it_directly() -> None:
    """A series shared by a group and direct adds gets both; a counter drops negatives."""
    store = Aggregates()
    inputs = store.series(TOKENS, {sc.GEN_AI_TOKEN_TYPE: "input"})
    cost = store.series(COST, {})
    group = store.group((inputs, cost))
    inputs.add(7)
    cost.add(-1.0)  # a counter ignores a negative amount, as OTel's counters do
    for _ in range(3):
        group.add((10, 0.5))
    group.add((2, -0.25))
    cost.add(1.0)
    points = {
        dict(p.attributes or {}).get(sc.GEN_AI_TOKEN_TYPE, "cost"): p
        for m in store.collect(delta=False)
        for p in m.data.data_points
    }
    tokens, spent = points["input"], points["cost"]
    assert isinstance(tokens, HistogramDataPoint)
    assert isinstance(spent, NumberDataPoint)
    assert (tokens.count, tokens.sum, tokens.min, tokens.max) == (5, 39, 2, 10)
    assert spent.value == 2.5

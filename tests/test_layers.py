"""The package's layers hold at run time: no import circle among our modules.

`lint-imports` (in `make lint`) checks that each layer imports only the ones below it;
this test checks the other half of the promise: following every runtime import (type-only
ones under `TYPE_CHECKING` left out, imports inside functions included) never leads back
to where it started.
"""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (dev extra)")


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    """The finder itself: a two-module circle and a self-free chain."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_runtime_import_circle() -> None:
    """No module of mv37.rollout reaches itself through runtime imports."""
    graph = grimp.build_graph("mv37", exclude_type_checking_imports=True)
    ours = {m for m in graph.modules if m.startswith("mv37.rollout")}
    edges = {m: set(graph.find_modules_directly_imported_by(m)) & ours for m in ours}
    assert len(ours) > 40
    assert _cycles(edges) == []

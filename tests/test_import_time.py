"""`import mv37.rollout` stays cheap: no provider SDK, no integration, no wrapt until used.

Each check runs in a fresh interpreter, since this test process has imported everything.
The timing itself is `benchmarks/import_time.py` (`make bench`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import mv37.rollout as rollout
import mv37.rollout.integrations as integrations

ROOT = Path(__file__).resolve().parent.parent

# Not one of these may be imported by `import mv37.rollout`, nor by tracing a call.
LAZY_PREFIXES = ("openai", "anthropic", "agents", "wrapt", "mv37.rollout.integrations")

DECORATE_AND_CALL = """
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
rollout.init(span_exporters=[exporter], sync_mode=True)

@rollout.agent
def answer(question: str) -> str:
    return work(question)

@rollout.tool
def work(question: str) -> str:
    return question.upper()

assert answer("hi") == "HI"
assert [s.name for s in exporter.get_finished_spans()][-1].endswith("answer")
rollout.shutdown()
"""


def _modules_after(code: str) -> list[str]:
    script = "\n".join(
        [
            "import sys, json",
            "import mv37.rollout as rollout",
            code,
            "print(json.dumps(sorted(sys.modules)))",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return list(json.loads(out.splitlines()[-1]))


def _lazy_loaded(modules: list[str]) -> list[str]:
    return [m for m in modules if m == "mv37.rollout.integrations" or m.startswith(LAZY_PREFIXES)]


@pytest.mark.parametrize("code", ["", DECORATE_AND_CALL], ids=["import", "init-and-trace"])
def test_optional_packages_stay_unimported(code: str) -> None:
    modules = _modules_after(code)
    assert "mv37.rollout" in modules
    assert _lazy_loaded(modules) == []


def test_reading_a_lazy_name_imports_only_its_module() -> None:
    modules = _modules_after("rollout.usage_from_openai")
    assert _lazy_loaded(modules) == [
        "mv37.rollout.integrations",
        "mv37.rollout.integrations._usage",
    ]


@pytest.mark.parametrize("package", [rollout, integrations], ids=lambda p: p.__name__)
def test_every_public_name_resolves_and_is_listed(package: object) -> None:
    names = package.__all__  # type: ignore[attr-defined]
    assert all(getattr(package, name) is not None for name in names)
    assert set(names) <= set(dir(package))


def test_lazy_names_are_the_integration_objects() -> None:
    from mv37.rollout.integrations._errors import MissingExtraError
    from mv37.rollout.integrations._wrap import wrap

    assert rollout.wrap is wrap
    assert integrations.wrap is wrap
    assert rollout.MissingExtraError is MissingExtraError


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = rollout.nope  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = integrations.nope  # type: ignore[attr-defined]

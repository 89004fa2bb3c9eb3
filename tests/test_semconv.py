"""The semantic-convention registry (`semconv/`) and the module generated from it."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import shutil
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mv37.rollout import semconv

ROOT = Path(__file__).resolve().parent.parent

OTEL_ATTRIBUTE_PACKAGES = (
    "opentelemetry.semconv.attributes",
    "opentelemetry.semconv._incubating.attributes",
)
OTEL_CLASS_MODULES = ("opentelemetry.semconv.trace", "opentelemetry.semconv.resource")
OPENINFERENCE_MODULES = ("openinference.semconv.trace", "openinference.semconv.resource")


def _load_generator() -> ModuleType:
    """Import `semconv/generate.py` in-process (the folder is not a package)."""
    name = "mv37_semconv_generate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "semconv" / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@cache
def _registry() -> Any:
    return gen.load_registry(ROOT / "semconv" / "model")


def _string_constants(namespace: object) -> set[str]:
    return {
        value
        for name, value in vars(namespace).items()
        if name.isupper() and isinstance(value, str)
    }


@cache
def _otel_keys() -> dict[str, set[str]]:
    """Every string constant of opentelemetry-semantic-conventions -> modules defining it."""
    found: dict[str, set[str]] = {}
    for package_name in OTEL_ATTRIBUTE_PACKAGES:
        package = importlib.import_module(package_name)
        # `_incubating` has no __init__.py, so walk each attributes folder explicitly.
        for info in pkgutil.iter_modules(package.__path__, package_name + "."):
            for value in _string_constants(importlib.import_module(info.name)):
                found.setdefault(value, set()).add(info.name)
    for module_name in OTEL_CLASS_MODULES:
        module = importlib.import_module(module_name)
        for cls in vars(module).values():
            if isinstance(cls, type) and cls.__module__ == module_name:
                for value in _string_constants(cls):
                    found.setdefault(value, set()).add(module_name)
    return found


@cache
def _openinference_keys() -> set[str]:
    """Every string constant of the classes in openinference.semconv.trace/resource."""
    found: set[str] = set()
    for module_name in OPENINFERENCE_MODULES:
        module = importlib.import_module(module_name)
        for cls in vars(module).values():
            if isinstance(cls, type) and cls.__module__ == module_name:
                found |= _string_constants(cls)
    return found


def _missing_upstream(keys: list[str], known: set[str] | dict[str, set[str]]) -> list[str]:
    return [key for key in keys if key not in known]


def _mirrors(upstream: str) -> list[str]:
    return [a.key for a in _registry().mirrored_attributes if a.upstream == upstream]


def test_committed_module_matches_registry() -> None:
    """mv37/rollout/semconv.py is exactly what the registry YAML generates."""
    expected = gen.render_python(_registry())
    assert (ROOT / "mv37" / "rollout" / "semconv.py").read_text(encoding="utf-8") == expected, (
        "mv37/rollout/semconv.py is stale: run `python semconv/generate.py`"
    )


def test_committed_markdown_matches_registry() -> None:
    """semconv/attributes.md is exactly what the registry YAML generates."""
    expected = gen.render_markdown(_registry())
    assert (ROOT / "semconv" / "attributes.md").read_text(encoding="utf-8") == expected, (
        "semconv/attributes.md is stale: run `python semconv/generate.py`"
    )


def test_check_mode_reports_stale_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`generate.py --check` exits 1 with a diff when a generated file was edited by hand."""
    shutil.copytree(ROOT / "semconv" / "model", tmp_path / "semconv" / "model")
    assert gen.main(["--root", str(tmp_path)]) == 0
    assert gen.main(["--check", "--root", str(tmp_path)]) == 0
    module = tmp_path / "mv37" / "rollout" / "semconv.py"
    module.write_text(module.read_text(encoding="utf-8") + "EXTRA = 1\n", encoding="utf-8")
    capsys.readouterr()
    assert gen.main(["--check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "mv37/rollout/semconv.py (committed)" in out
    assert "-EXTRA = 1" in out


def test_generation_is_deterministic() -> None:
    """Two loads of the registry render byte-identical files."""
    again = gen.load_registry(ROOT / "semconv" / "model")
    assert gen.render_python(again) == gen.render_python(_registry())
    assert gen.render_markdown(again) == gen.render_markdown(_registry())


def test_otel_mirrors_exist_upstream() -> None:
    """Every mirrored key with upstream `otel` is an opentelemetry-semantic-conventions constant."""
    keys = _mirrors("otel")
    assert keys
    missing = _missing_upstream(keys, _otel_keys())
    assert not missing, (
        "mirrors.yaml lists keys with upstream `otel` that opentelemetry-semantic-conventions "
        f"does not define: {', '.join(missing)}"
    )


def test_openinference_mirrors_exist_upstream() -> None:
    """Every mirrored key with upstream `openinference` is an openinference.semconv constant."""
    keys = _mirrors("openinference")
    assert keys
    missing = _missing_upstream(keys, _openinference_keys())
    assert not missing, (
        "mirrors.yaml lists keys with upstream `openinference` that "
        f"openinference-semantic-conventions does not define: {', '.join(missing)}"
    )


def test_anthropic_keys_exist_upstream() -> None:
    """Every key with upstream `anthropic` is one the anthropic SDK's own span writes."""
    tracing = pytest.importorskip("anthropic._tracing")
    known = set(tracing.RESPONSE_HEADER_ATTRIBUTES)
    for spec in tracing.SPAN_ATTRIBUTES.values():
        for group in spec.values():
            if isinstance(group, dict):
                known |= set(group)
    keys = _mirrors("anthropic")
    assert keys, "no anthropic keys in the registry"
    assert _missing_upstream(keys, known) == []


def test_missing_upstream_key_is_reported_by_name() -> None:
    """A key absent upstream is reported, so the upstream tests fail naming it."""
    assert _missing_upstream(["gen_ai.request.model", "gen_ai.nope"], _otel_keys()) == [
        "gen_ai.nope"
    ]
    assert _missing_upstream(["llm.model_name", "llm.nope"], _openinference_keys()) == ["llm.nope"]


def test_otel_mirror_stability_matches_upstream() -> None:
    """An `otel` mirror is `stable` exactly when the key is in the stable attributes package."""
    stable_package = OTEL_ATTRIBUTE_PACKAGES[0] + "."
    wrong = []
    for attr in _registry().mirrored_attributes:
        if attr.upstream != "otel":
            continue
        modules = _otel_keys().get(attr.key, set())
        upstream_stable = any(m.startswith(stable_package) for m in modules)
        if (attr.stability == "stable") != upstream_stable:
            wrong.append(f"{attr.key} ({attr.stability})")
    assert not wrong, f"stability differs from upstream for: {', '.join(wrong)}"


def test_rollout_attributes_are_complete_and_unique() -> None:
    """Each rollout.* key is defined once, with a type, a one-line brief and an example."""
    attributes = _registry().rollout_attributes
    keys = [a.key for a in attributes]
    assert len(keys) == len(set(keys))
    for attr in attributes:
        assert attr.key.startswith("rollout."), attr.key
        assert attr.type, attr.key
        assert attr.brief.strip(), attr.key
        assert "\n" not in attr.brief, attr.key
        assert attr.examples, attr.key
        assert attr.stability == "development", attr.key
        assert attr.upstream is None, attr.key


def test_mirrors_name_their_upstream_and_rollout_key() -> None:
    """Each mirror names its upstream, and what it mirrors is a rollout.* key."""
    rollout_keys = {a.key for a in _registry().rollout_attributes}
    for attr in _registry().mirrored_attributes:
        assert attr.upstream in ("otel", "openinference", "openinference-spec", "anthropic"), (
            attr.key
        )
        assert not attr.key.startswith("rollout."), attr.key
        assert attr.examples, attr.key
        assert set(attr.mirrors) <= rollout_keys, attr.key


def test_constant_names_are_unique_and_exported() -> None:
    """Constant names are unique, and the module exports each one with its key as value."""
    constants = _registry().constants()
    names = [name for name, _, _ in constants]
    assert len(names) == len(set(names))
    for name, value, _ in constants:
        assert getattr(semconv, name) == value, name


def test_events_reference_registered_attributes() -> None:
    """Every event attribute is registered, and the module's sets match the registry."""
    registry = _registry()
    assert {e.name for e in registry.events} == semconv.EVENT_NAMES
    templates = {a.key for a in registry.attributes if a.is_template}
    for event in registry.events:
        assert semconv.is_registered_event(event.name)
        for ref in event.attributes:
            key = ref.key + ".example" if ref.key in templates else ref.key
            assert semconv.is_registered_attribute(key), (event.name, key)
    plain = {a.key for a in registry.attributes if not a.is_template}
    assert plain == semconv.ATTRIBUTE_KEYS
    assert set(semconv.TEMPLATE_PREFIXES) == {
        "rollout.attributes.",
        "trace.annotations.",
        "llm.input_messages.",
        "llm.output_messages.",
        "llm.tools.",
    }


def test_is_registered_attribute() -> None:
    """Template children and listed keys are registered; unknown rollout.* keys are not."""
    assert semconv.is_registered_attribute("rollout.attributes.foo")
    assert semconv.is_registered_attribute(semconv.GEN_AI_REQUEST_MODEL)
    assert not semconv.is_registered_attribute("rollout.nope")
    assert not semconv.is_registered_attribute("rollout.attributes")
    assert semconv.is_registered_event(semconv.EVENT_EXCEPTION)
    assert not semconv.is_registered_event("rollout.nope")


def test_registry_rejects_an_unknown_mirror_target(tmp_path: Path) -> None:
    """A mirror pointing at a rollout key that does not exist makes loading fail clearly."""
    model = tmp_path / "model"
    shutil.copytree(ROOT / "semconv" / "model", model)
    mirrors = model / "rollout" / "mirrors.yaml"
    text = mirrors.read_text(encoding="utf-8")
    mirrors.write_text(
        text.replace("mirrors: [rollout.agent.id]", "mirrors: [rollout.agent.nope]"),
        encoding="utf-8",
    )
    with pytest.raises(gen.RegistryError, match=r"rollout\.agent\.nope"):
        gen.load_registry(model)

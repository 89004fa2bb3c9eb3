"""`auto_instrument`: integrations switched on by name at init()."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import mv37.rollout as rollout
from mv37.rollout.integrations import _agents_bridge as bridge
from mv37.rollout.integrations import _auto as auto
from mv37.rollout.integrations._errors import MissingExtraError


@pytest.fixture(autouse=True)
def _fresh_registration() -> Iterator[None]:
    bridge._registration.processor = None
    bridge._registration.added = False
    yield
    bridge._registration.processor = None
    bridge._registration.added = False


@pytest.mark.parametrize("value", [["nope"], "openai_agents,nope"])
def test_unknown_names_are_a_value_error_listing_the_known_ones(value: Any) -> None:
    with pytest.raises(ValueError, match=r"auto_instrument.*nope.*known: openai_agents"):
        rollout.init(auto_instrument=value)


def test_the_env_var_is_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_AUTO_INSTRUMENT", "langchain")
    with pytest.raises(ValueError, match="ROLLOUT_AUTO_INSTRUMENT"):
        rollout.init()


def test_openai_agents_is_enabled_at_init(monkeypatch: pytest.MonkeyPatch) -> None:
    agents = pytest.importorskip(
        "agents", reason="needs the openai-agents extra: pip install 'mv37-rollout[openai-agents]'"
    )
    provider = agents.tracing.get_trace_provider()
    before = list(provider._multi_processor._processors)
    agents.set_trace_processors([])
    try:
        rollout.init(auto_instrument="openai-agents, openai", console=False)
        processors = list(provider._multi_processor._processors)
        assert processors == [bridge._registration.processor]
        assert isinstance(processors[0], agents.TracingProcessor)
    finally:
        agents.set_trace_processors(before)


def test_a_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "agents", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'mv37-rollout\[openai-agents\]'"):
        rollout.init(auto_instrument=["openai_agents"])


def test_openai_and_anthropic_names_patch_nothing() -> None:
    rollout.init(auto_instrument=["openai", "anthropic"], console=False)
    assert bridge._registration.processor is None
    assert "openai" not in sys.modules or not hasattr(sys.modules["openai"], "_mv37_rollout")


# -- the module itself ----------------------------------------------------------------------


def test_validate_splits_normalises_and_drops_repeats() -> None:
    assert auto.validate("OpenAI-Agents, openai,,openai_agents ") == ("openai_agents", "openai")
    assert auto.validate(["anthropic"]) == ("anthropic",)
    assert auto.validate("") == ()


def test_validate_lists_every_known_name() -> None:
    with pytest.raises(ValueError, match="unknown integration") as raised:
        auto.validate(["langchain"])
    assert all(name in str(raised.value) for name in auto.KNOWN_INTEGRATIONS)


@pytest.mark.parametrize("source", ["argument", "env"])
def test_an_unknown_name_is_named_once_by_its_source(
    monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    if source == "env":
        monkeypatch.setenv("ROLLOUT_AUTO_INSTRUMENT", "nope")
        with pytest.raises(ValueError) as raised:
            rollout.resolve_config()
        prefix = "environment variable ROLLOUT_AUTO_INSTRUMENT: unknown integration(s) nope"
    else:
        with pytest.raises(ValueError) as raised:
            rollout.resolve_config(auto_instrument=["nope"])
        prefix = "argument auto_instrument: unknown integration(s) nope"
    assert str(raised.value).startswith(prefix)
    assert str(raised.value).count("auto_instrument") == (1 if source == "argument" else 0)


def test_per_client_names_log_how_to_wrap(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="mv37.rollout")  # seen with default logging
    assert auto.enable("openai,anthropic", rollout.get_client()) == []
    reminders = [r for r in caplog.records if "rollout.wrap(client)" in r.getMessage()]
    assert [r.levelno for r in reminders] == [logging.WARNING, logging.WARNING]
    assert bridge._registration.processor is None


def test_enable_returns_what_it_switched_on() -> None:
    agents = pytest.importorskip(
        "agents", reason="needs the openai-agents extra: pip install 'mv37-rollout[openai-agents]'"
    )
    provider = agents.tracing.get_trace_provider()
    before = list(provider._multi_processor._processors)
    agents.set_trace_processors([])
    try:
        client = rollout.get_client()
        assert auto.enable(["openai-agents", "openai"], client) == ["openai_agents"]
        processor = bridge._registration.processor
        assert list(provider._multi_processor._processors) == [processor]
        assert auto.enable(["openai_agents"], client) == ["openai_agents"]  # no second one
        assert list(provider._multi_processor._processors) == [processor]
    finally:
        agents.set_trace_processors(before)


def test_a_missing_package_is_an_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "agents", None)
    with pytest.raises(ImportError, match=r"pip install 'mv37-rollout\[openai-agents\]'"):
        auto.enable(["openai_agents"], rollout.get_client())

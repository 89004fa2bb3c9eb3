"""`init()` and `Rollout(...)` show their keyword parameters, the same ones, to IDEs and help().

Both list every `RolloutConfig` field, so a field added to the configuration without its
parameter (or a parameter that drifts in one of the two) fails here.
"""

from __future__ import annotations

import dataclasses
import inspect
import pydoc
import typing

import pytest

import mv37.rollout as rollout
from mv37.rollout import Rollout, RolloutConfig


def _parameters(fn: typing.Callable[..., object]) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]


def test_init_and_rollout_list_the_same_keyword_parameters_with_the_same_defaults() -> None:
    ours = [(p.name, p.kind, p.default, p.annotation) for p in _parameters(rollout.init)]
    theirs = [(p.name, p.kind, p.default, p.annotation) for p in _parameters(Rollout.__init__)]
    assert ours == theirs


@pytest.mark.parametrize("fn", [rollout.init, Rollout.__init__], ids=["init", "Rollout"])
def test_the_parameters_are_the_configuration_fields(fn: typing.Callable[..., object]) -> None:
    params = _parameters(fn)
    assert [p.name for p in params] == [f.name for f in dataclasses.fields(RolloutConfig)]
    assert {p.kind for p in params} == {inspect.Parameter.KEYWORD_ONLY}
    # None is "unset": the ROLLOUT_* variable, else the RolloutConfig default.
    assert {p.default for p in params} == {None}


@pytest.mark.parametrize("fn", [rollout.init, Rollout.__init__], ids=["init", "Rollout"])
def test_the_annotations_resolve(fn: typing.Callable[..., object]) -> None:
    hints = typing.get_type_hints(fn)
    assert hints["sample_rate"] == float | None
    assert hints["agent_name"] == str | None
    assert set(hints) - {"return"} == {f.name for f in dataclasses.fields(RolloutConfig)}


def test_help_shows_the_parameters() -> None:
    text = pydoc.plain(pydoc.render_doc(rollout.init))
    assert "agent_name: 'str | None' = None" in text
    assert "sample_rate: 'float | None' = None" in text
    assert "**config" not in text


def test_an_unknown_keyword_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="agent_nam"):
        rollout.init(agent_nam="x")  # type: ignore[call-arg]

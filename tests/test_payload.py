"""Tests for mv37.rollout.vocabulary._payload: turning any value into span-attribute text."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import sys
import types
import uuid
from collections import OrderedDict, deque
from collections.abc import Generator
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any
from unittest import mock

import pydantic
import pydantic.v1
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mv37.rollout.vocabulary._payload import (
    CYCLE_MARKER,
    DEPTH_MARKER,
    MAX_DEPTH,
    MIME_JSON,
    MIME_TEXT,
    TRUNCATION_MARKER,
    Payload,
    attribute_value,
    cap_text,
    serialize,
    to_json_text,
)

LIMIT = 32768


def text_of(value: object) -> str:
    """Serialize without a limit and return the text."""
    return serialize(value, 0).text


def strict_loads(text: str) -> Any:
    """Parse JSON, rejecting the non-standard NaN/Infinity tokens."""

    def reject(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=reject)


def nesting_depth(value: object) -> int:
    """Depth of nested lists/dicts, counted without recursion."""
    depth = 0
    while isinstance(value, (list, dict)) and value:
        value = value[0] if isinstance(value, list) else next(iter(value.values()))
        depth += 1
    return depth


class Color(enum.Enum):
    RED = "red"
    DARK = (0, 0, 0)


class Level(enum.IntEnum):
    HIGH = 3


class City(pydantic.BaseModel):
    name: str
    founded: dt.date
    population: int


class LegacyCity(pydantic.v1.BaseModel):
    name: str
    founded: dt.date


class ExplodingModel(pydantic.BaseModel):
    x: int

    def model_dump(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("boom")


@dataclasses.dataclass
class Point:
    x: int
    y: float
    tags: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class Node:
    name: str
    next: Node | None = None


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class BadStrError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")


class Plain:
    def __init__(self) -> None:
        self.a = 1

    def __repr__(self) -> str:
        return "Plain(a=1)"


class FakeArray:
    """Duck-typed stand-in for a numpy array."""

    def __init__(self, rows: list[list[float]]) -> None:
        self.rows = rows

    def tolist(self) -> list[list[float]]:
        return self.rows


class SelfListing:
    """A tolist() that returns the object itself must not loop forever."""

    def tolist(self) -> SelfListing:
        return self


# --- strings and plain JSON ---------------------------------------------------


def test_str_stays_plain_text() -> None:
    """A str is returned unchanged with mime text/plain."""
    assert serialize("hello", LIMIT) == Payload("hello", MIME_TEXT, False, 5)


def test_str_subclass_becomes_exact_str() -> None:
    """A str subclass is kept as plain text but returned as an exact str."""

    class Name(str):
        pass

    payload = serialize(Name("zoë"), LIMIT)
    assert payload.text == "zoë"
    assert type(payload.text) is str
    assert payload.mime_type == MIME_TEXT


def test_small_dict_exact_json() -> None:
    """A small dict becomes compact JSON with ', ' and ': ' separators."""
    assert serialize({"city": "Paris", "days": 3}, LIMIT) == Payload(
        '{"city": "Paris", "days": 3}', MIME_JSON, False, 28
    )


def test_non_ascii_is_not_escaped() -> None:
    """Non-ASCII characters are written as is (ensure_ascii=False)."""
    assert text_of({"name": "Zoë", "emoji": "🙂"}) == '{"name": "Zoë", "emoji": "🙂"}'


def test_scalars_and_none() -> None:
    """None, bools, ints and floats become JSON literals."""
    assert text_of(None) == "null"
    assert text_of(True) == "true"
    assert text_of(42) == "42"
    assert text_of(1.5) == "1.5"


def test_list_and_tuple() -> None:
    """Lists and tuples both become JSON arrays."""
    assert text_of([1, "a", None]) == '[1, "a", null]'
    assert text_of((1, (2, 3))) == "[1, [2, 3]]"


def test_dict_subclasses_and_mappings() -> None:
    """OrderedDict, MappingProxyType and deque become objects and arrays."""
    assert text_of(OrderedDict(a=1)) == '{"a": 1}'
    assert text_of(types.MappingProxyType({"b": 2})) == '{"b": 2}'
    assert text_of(deque([1, 2])) == "[1, 2]"
    assert text_of({"a": 1}.keys()) == '["a"]'


def test_to_json_text_quotes_strings() -> None:
    """to_json_text always returns JSON, so a str comes back quoted."""
    assert to_json_text("hi") == '"hi"'
    assert to_json_text({"a": [1]}) == '{"a": [1]}'


# --- supported types ----------------------------------------------------------


def test_sets_become_sorted_lists() -> None:
    """Sets and frozensets become lists, sorted when sortable."""
    assert text_of({3, 1, 2}) == "[1, 2, 3]"
    assert text_of(frozenset({"b", "a"})) == '["a", "b"]'


def test_unsortable_set_keeps_all_items() -> None:
    """A set of mixed types that cannot be sorted still lists every item."""
    assert sorted(strict_loads(text_of({1, "a"})), key=str) == [1, "a"]


def test_pydantic_v2_model() -> None:
    """A pydantic v2 model is dumped with model_dump(mode='json')."""
    city = City(name="Paris", founded=dt.date(1900, 5, 17), population=2_100_000)
    assert text_of(city) == '{"name": "Paris", "founded": "1900-05-17", "population": 2100000}'


def test_pydantic_v1_model() -> None:
    """A v1-style model is dumped with .dict() and its values converted."""
    city = LegacyCity(name="Paris", founded=dt.date(1900, 5, 17))
    assert text_of(city) == '{"name": "Paris", "founded": "1900-05-17"}'


def test_pydantic_model_nested_in_dict() -> None:
    """A model inside a container is converted in place."""
    city = City(name="Oslo", founded=dt.date(1048, 1, 1), population=1)
    assert text_of({"city": city}) == (
        '{"city": {"name": "Oslo", "founded": "1048-01-01", "population": 1}}'
    )


def test_dataclass_field_by_field() -> None:
    """A dataclass becomes an object of its fields, with nested values converted."""
    assert text_of(Point(1, 2.5, {"b", "a"})) == '{"x": 1, "y": 2.5, "tags": ["a", "b"]}'


def test_enums_use_their_value() -> None:
    """Enum members become their value."""
    assert text_of(Color.RED) == '"red"'
    assert text_of(Color.DARK) == "[0, 0, 0]"
    assert text_of({"level": Level.HIGH}) == '{"level": 3}'


def test_dates_times_and_durations() -> None:
    """datetime/date/time use isoformat and timedelta becomes total seconds."""
    moment = dt.datetime(2024, 5, 17, 12, 30, 5, tzinfo=dt.timezone.utc)
    assert text_of(moment) == '"2024-05-17T12:30:05+00:00"'
    assert text_of(dt.date(2024, 5, 17)) == '"2024-05-17"'
    assert text_of(dt.time(8, 15)) == '"08:15:00"'
    assert text_of(dt.timedelta(minutes=1, milliseconds=500)) == "60.5"


def test_uuid_decimal_path() -> None:
    """UUID, Decimal and paths become their str()."""
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert text_of(ident) == '"12345678-1234-5678-1234-567812345678"'
    assert text_of(Decimal("1.10")) == '"1.10"'
    assert text_of(PurePosixPath("/tmp/x.txt")) == '"/tmp/x.txt"'


def test_bytes_like_values() -> None:
    """UTF-8 bytes become text; other bytes become '<N bytes>'."""
    assert text_of(b"hi \xc3\xa9") == '"hi é"'
    assert text_of(b"\xff\x00\xfe") == '"<3 bytes>"'
    assert text_of(bytearray(b"ok")) == '"ok"'
    assert text_of(memoryview(b"\x80" * 10)) == '"<10 bytes>"'


def test_numpy_like_uses_tolist() -> None:
    """Objects with tolist() are serialized from its result."""
    assert text_of(FakeArray([[1.0, 2.0], [3.0, 4.5]])) == "[[1.0, 2.0], [3.0, 4.5]]"


def test_tolist_returning_self_is_a_cycle() -> None:
    """A tolist() that returns the object itself ends as a cycle marker."""
    assert strict_loads(text_of(SelfListing())) == CYCLE_MARKER


def test_generator_is_not_consumed() -> None:
    """A generator becomes a placeholder and can still be iterated afterwards."""

    def numbers() -> Generator[int, None, None]:
        yield 1
        yield 2

    gen = numbers()
    text = text_of({"items": gen})
    assert strict_loads(text) == {"items": f"<generator {numbers.__qualname__}>"}
    assert list(gen) == [1, 2]


def test_iterator_is_not_consumed() -> None:
    """A plain iterator falls back to its repr and is left untouched."""
    it = iter([1, 2])
    assert strict_loads(text_of(it)).startswith("<list_iterator")
    assert list(it) == [1, 2]


def test_exceptions() -> None:
    """Exceptions become 'ExcType: message', or just the type without a message."""
    assert text_of(ValueError("bad input")) == '"ValueError: bad input"'
    assert text_of(KeyError()) == '"KeyError"'


def test_object_with_dict_uses_repr() -> None:
    """Arbitrary objects fall back to repr()."""
    assert text_of({"obj": Plain()}) == '{"obj": "Plain(a=1)"}'
    assert text_of(int) == "\"<class 'int'>\""


def test_mock_object_is_not_mistaken_for_a_model() -> None:
    """A Mock's catch-all attributes are not taken for model_dump or tolist."""
    assert strict_loads(text_of(mock.Mock())).startswith("<Mock id=")


def test_non_string_keys() -> None:
    """JSON-native keys are stringified; other keys are converted like values."""
    assert text_of({1: "a", None: "b", False: "c", 2.5: "d"}) == (
        '{"1": "a", "null": "b", "false": "c", "2.5": "d"}'
    )
    assert text_of({(1, 2): "a"}) == '{"[1, 2]": "a"}'
    assert text_of({Color.RED: 1, dt.date(2024, 1, 2): 2}) == '{"red": 1, "2024-01-02": 2}'


# --- broken and hostile values ------------------------------------------------


def test_cycle_in_dict() -> None:
    """A dict that contains itself gets a cycle marker."""
    data: dict[str, Any] = {"a": 1}
    data["self"] = data
    assert text_of(data) == f'{{"a": 1, "self": "{CYCLE_MARKER}"}}'


def test_cycle_in_list() -> None:
    """A list that contains itself gets a cycle marker."""
    items: list[Any] = [1]
    items.append(items)
    assert text_of(items) == f'[1, "{CYCLE_MARKER}"]'


def test_cycle_in_dataclass() -> None:
    """Dataclasses that point at each other get a cycle marker."""
    first = Node("a")
    first.next = Node("b", first)
    assert text_of(first) == f'{{"name": "a", "next": {{"name": "b", "next": "{CYCLE_MARKER}"}}}}'


def test_shared_reference_is_not_a_cycle() -> None:
    """The same object twice side by side is serialized twice, on both paths."""
    shared = [1]
    assert text_of([shared, shared]) == "[[1], [1]]"
    assert text_of([shared, shared, math.nan]) == '[[1], [1], "NaN"]'


def test_repr_raises() -> None:
    """An object whose __repr__ raises becomes '<unrepresentable TypeName>'."""
    assert text_of(BadRepr()) == '"<unrepresentable BadRepr>"'
    assert text_of({"x": [BadRepr()]}) == '{"x": ["<unrepresentable BadRepr>"]}'


def test_exception_str_raises() -> None:
    """An exception whose __str__ raises becomes '<unrepresentable TypeName>'."""
    assert text_of(BadStrError()) == '"<unrepresentable BadStrError>"'


def test_model_dump_raises() -> None:
    """A pydantic model whose model_dump raises becomes '<unrepresentable TypeName>'."""
    assert text_of({"m": ExplodingModel(x=1)}) == '{"m": "<unrepresentable ExplodingModel>"}'


def test_deep_nesting_is_cut() -> None:
    """10,000 nested lists are cut at MAX_DEPTH with a marker instead of raising."""
    value: list[Any] = []
    for _ in range(10_000):
        value = [value]
    payload = serialize(value, 0)
    parsed = strict_loads(payload.text)
    assert nesting_depth(parsed) == MAX_DEPTH
    assert DEPTH_MARKER in payload.text
    assert payload.mime_type == MIME_JSON


def test_deep_dict_nesting_is_cut() -> None:
    """10,000 nested dicts are cut the same way."""
    value: dict[str, Any] = {}
    for _ in range(10_000):
        value = {"k": value}
    assert nesting_depth(strict_loads(text_of(value))) == MAX_DEPTH


def test_nan_and_infinity_become_strings() -> None:
    """NaN and infinities become strings, keeping the JSON valid."""
    assert text_of([math.nan, math.inf, -math.inf, 1.0]) == '["NaN", "Infinity", "-Infinity", 1.0]'
    assert text_of(math.nan) == '"NaN"'
    assert text_of({math.nan: 1}) == '{"NaN": 1}'


def test_huge_int_beyond_str_digit_limit() -> None:
    """An int too large for str() becomes a marker instead of raising."""
    if not hasattr(sys, "get_int_max_str_digits") or sys.get_int_max_str_digits() == 0:
        pytest.skip("no int digit limit in this interpreter")
    huge = 10 ** (sys.get_int_max_str_digits() + 10)
    assert text_of({"n": huge}) == f'{{"n": "<int of {huge.bit_length()} bits>"}}'


def test_failed_fast_path_does_not_poison_later_calls() -> None:
    """After a value that needs the slow path, the next call is normal again."""
    items: list[Any] = []
    items.append(items)
    text_of(items)
    other: list[Any] = [[1]]
    assert text_of(other) == "[[1]]"


# --- truncation ---------------------------------------------------------------


def test_five_megabyte_string_truncated() -> None:
    """A 5 MB string is cut to the limit with the marker and its full length kept."""
    big = "x" * 5_000_000
    payload = serialize(big, LIMIT)
    assert payload.truncated
    assert payload.original_length == 5_000_000
    assert len(payload.text) == LIMIT
    assert payload.text.endswith(TRUNCATION_MARKER)
    assert payload.text[: -len(TRUNCATION_MARKER)] == big[: LIMIT - len(TRUNCATION_MARKER)]
    assert payload.mime_type == MIME_TEXT


def test_large_json_truncated() -> None:
    """Large JSON text is cut the same way and keeps its mime type."""
    payload = serialize({"data": "y" * 100_000}, 1000)
    assert payload.truncated
    assert payload.mime_type == MIME_JSON
    assert len(payload.text) == 1000
    assert payload.original_length == 100_000 + len('{"data": ""}')
    assert payload.text.startswith('{"data": "yyy')


@pytest.mark.parametrize("limit", [0, -1, -100])
def test_non_positive_limit_means_no_limit(limit: int) -> None:
    """A limit of zero or less never truncates."""
    assert serialize("x" * 100_000, limit) == Payload("x" * 100_000, MIME_TEXT, False, 100_000)


def test_limit_exactly_text_length() -> None:
    """Text exactly as long as the limit is kept whole; one longer is cut."""
    text = "a" * 20
    assert serialize(text, 20) == Payload(text, MIME_TEXT, False, 20)
    assert serialize(text, 21).truncated is False
    cut = serialize(text, 19)
    assert cut == Payload("a" * 7 + TRUNCATION_MARKER, MIME_TEXT, True, 20)


def test_limit_just_above_marker_length() -> None:
    """With limit = len(marker) + 1 one character of text survives."""
    limit = len(TRUNCATION_MARKER) + 1
    assert cap_text("abcdefghijklmnopqrstuvwxyz", limit) == ("a" + TRUNCATION_MARKER, True)


@pytest.mark.parametrize("limit", [1, 2, len(TRUNCATION_MARKER)])
def test_limit_not_above_marker_length_gives_marker(limit: int) -> None:
    """A limit no longer than the marker yields the marker alone."""
    assert cap_text("abcdefghijklmnopqrstuvwxyz", limit) == (TRUNCATION_MARKER, True)


def test_cap_text_short_text_untouched() -> None:
    """Text within the limit (or with no limit) comes back unchanged."""
    assert cap_text("abc", 3) == ("abc", False)
    assert cap_text("abc", 0) == ("abc", False)
    assert cap_text("", 1) == ("", False)


# --- attribute_value ----------------------------------------------------------


def test_attribute_value_scalars_pass_through() -> None:
    """bool, int and float pass through; str is capped."""
    assert attribute_value(True, 10) is True
    assert attribute_value(7, 10) == 7
    assert attribute_value(2.5, 10) == 2.5
    assert attribute_value("short", 10) == "short"
    assert attribute_value("x" * 50, 20) == "x" * 8 + TRUNCATION_MARKER


def test_attribute_value_subclasses_become_exact_types() -> None:
    """IntEnum and str subclasses become exact int and str."""
    value = attribute_value(Level.HIGH, 10)
    assert value == 3
    assert type(value) is int

    class Name(str):
        pass

    assert type(attribute_value(Name("a"), 10)) is str


def test_attribute_value_homogeneous_sequences() -> None:
    """Homogeneous lists/tuples become tuples, with strings capped."""
    assert attribute_value([1, 2, 3], 10) == (1, 2, 3)
    assert attribute_value((True, False), 10) == (True, False)
    assert attribute_value([0.5, 1.5], 10) == (0.5, 1.5)
    assert attribute_value(["a", "b" * 50], 20) == ("a", "b" * 8 + TRUNCATION_MARKER)
    assert attribute_value([], 10) == ()


def test_attribute_value_other_values_become_json() -> None:
    """Mixed sequences, dicts, None and huge ints become serialized text."""
    assert attribute_value([1, "a"], 100) == '[1, "a"]'
    assert attribute_value([1, 2.5], 100) == "[1, 2.5]"
    assert attribute_value([True, 1], 100) == "[true, 1]"
    assert attribute_value({"a": 1}, 100) == '{"a": 1}'
    assert attribute_value(None, 100) == "null"
    assert attribute_value(2**64, 100) == str(2**64)
    assert attribute_value([2**64], 100) == f"[{2**64}]"


def test_attribute_value_caps_json() -> None:
    """Serialized text is capped to the limit too."""
    value = attribute_value({"k": "v" * 1000}, 50)
    assert isinstance(value, str)
    assert len(value) == 50
    assert value.endswith(TRUNCATION_MARKER)


# --- property test ------------------------------------------------------------

_leaves = (
    st.text()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
    | st.binary()
    | st.datetimes()
)
_keys = st.text() | st.integers() | st.floats() | st.booleans() | st.none() | st.tuples(_leaves)
_values = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=5)
        | st.lists(children, max_size=5).map(tuple)
        | st.dictionaries(_keys, children, max_size=5)
        | st.sets(_leaves, max_size=5)
        | st.frozensets(_leaves, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(value=_values, limit=st.integers(min_value=-5, max_value=300))
def test_serialize_property(value: object, limit: int) -> None:
    """serialize never raises, respects the limit, and untruncated JSON parses."""
    payload = serialize(value, limit)
    full = value if isinstance(value, str) else to_json_text(value)
    assert payload.original_length == len(full)
    if limit > 0:
        assert len(payload.text) <= max(limit, len(TRUNCATION_MARKER))
    if payload.truncated:
        assert payload.text.endswith(TRUNCATION_MARKER)
        assert full.startswith(payload.text[: -len(TRUNCATION_MARKER)])
    else:
        assert payload.text == full
        if payload.mime_type == MIME_JSON:
            strict_loads(payload.text)


def test_the_shared_plain_encoder_is_exact_from_many_threads_at_once() -> None:
    """Plain payloads share one encoder with no state: threads never mix their output,
    and a payload that needs conversion in the middle still comes out whole."""
    import threading

    @dataclasses.dataclass
    class Point:
        x: int

    def payload(n: int) -> dict[str, Any]:
        return {"id": n, "items": [n, str(n), {"n": n}], "at": dt.date(2024, 1, 1 + n % 28)}

    errors: list[str] = []
    start = threading.Barrier(8)

    def run(offset: int) -> None:
        start.wait()
        for n in range(offset, offset + 2_000):
            plain = {"id": n, "tags": ["a", str(n)], "nested": {"n": n}}
            if serialize(plain, 0).text != json.dumps(plain, ensure_ascii=False):
                errors.append(f"plain {n}")
            mixed = {"p": Point(n), **payload(n)}
            if json.loads(serialize(mixed, 0).text)["p"] != {"x": n}:
                errors.append(f"mixed {n}")

    threads = [threading.Thread(target=run, args=(i * 10_000,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

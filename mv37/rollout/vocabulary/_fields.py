"""Read provider objects and plain dicts alike, and leave the caller's arguments untouched.

Provider SDKs return pydantic models; gateways and users hand us dicts. Every adapter
reads through `field`, so both shapes work. Request arguments may be one-shot
iterables (generators): `sequence` only ever returns lists and tuples, so we never
consume what the SDK still has to send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

_UNSET_TYPES: Final = frozenset({"NotGiven", "Omit"})


_IS_MAPPING: dict[type, bool] = {}
"""Whether a type is a `Mapping`, cached: the ABC check costs more than the read itself."""


def field(obj: object, name: str) -> Any:
    """`obj[name]` for a mapping, else `obj.name`; `None` when absent."""
    cls = type(obj)
    if cls is dict:
        return obj.get(name)  # type: ignore[attr-defined]
    mapping = _IS_MAPPING.get(cls)
    if mapping is None:
        mapping = _IS_MAPPING[cls] = isinstance(obj, Mapping)
    if mapping:
        return obj.get(name)  # type: ignore[attr-defined]
    return getattr(obj, name, None)


def given(value: object) -> bool:
    """False for `None` and the SDKs' `NOT_GIVEN` / `omit` sentinels."""
    return value is not None and type(value).__name__ not in _UNSET_TYPES


def sequence(value: object) -> Sequence[Any] | None:
    """`value` when it is a list or tuple (safe to read twice), else `None`."""
    return value if isinstance(value, (list, tuple)) else None


def as_int(value: object) -> int | None:
    """An `int` for ints (not bools), else `None`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    return None


def as_float(value: object) -> float | None:
    """A `float` for ints and floats (not bools), else `None`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def as_str(value: object) -> str | None:
    """The string itself (plain `str`, enums included), else `None`."""
    return str(value) if isinstance(value, str) and value != "" else None


def plain(value: object, depth: int = 0) -> object:
    """A JSON-able copy of request options: primitives, lists, tuples and mappings.

    Anything else (a generator, a client object) becomes its type name, so building
    `llm.invocation_parameters` never iterates or calls into the caller's objects.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth > 8:
        return "..."
    if isinstance(value, Mapping):
        return {str(k): plain(v, depth + 1) for k, v in value.items() if given(v)}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, type):
        return value.__name__
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        try:
            return plain(dump(mode="json"), depth + 1)
        except Exception:
            return type(value).__name__
    return type(value).__name__


def attributes_option(function: str, options: dict[str, Any]) -> Mapping[str, Any] | None:
    """The `attributes={...}` option of `function`'s `**options`; anything else, or a
    non-mapping, is a TypeError naming it (setup-time misuse, as a Python call would say).

    Example:
        >>> attributes_option("wrap", {"attributes": {"team": "search"}})
        {'team': 'search'}
    """
    attributes = options.pop("attributes", None)
    if options:
        raise TypeError(f"{function}() got unexpected option(s): {', '.join(sorted(options))}")
    if attributes is not None and not isinstance(attributes, Mapping):
        raise TypeError(f"{function}(attributes=...) must be a mapping")
    return cast("Mapping[str, Any] | None", attributes)

"""Text measures for the console tree: terminal cells, one-line previews, cuts with "…".

A terminal shows East Asian wide characters (and most emoji) in two cells, combining
marks and zero-width characters in none; `cells` counts that way and `fit` cuts a text
to a number of cells, ending it with "…" when something was left out.

Example:
    >>> cells("日本"), fit("abcdef", 4), fit("日本語", 5)
    (4, 'abc…', '日本…')
"""

from __future__ import annotations

import functools
import re
import unicodedata

ELLIPSIS = "…"

_BREAK = re.compile(r" *[\x00-\x1f\x7f-\x9f\u2028\u2029]+ *")
"""Line breaks, tabs and other control characters (with the spaces around them)."""

_ZERO_WIDTH_CATEGORIES = frozenset({"Mn", "Me", "Cf"})


@functools.lru_cache(maxsize=4096)
def _char_cells(char: str) -> int:
    if unicodedata.category(char) in _ZERO_WIDTH_CATEGORIES:
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def cells(text: str) -> int:
    """Terminal cells `text` takes (wide characters count two, combining marks none)."""
    if text.isascii():
        return len(text)
    return sum(map(_char_cells, text))


def fit(text: str, width: int) -> str:
    """`text` cut to at most `width` cells, ending with "…" when it was cut."""
    if width <= 0:
        return ""
    if text.isascii():
        return text if len(text) <= width else text[: width - 1] + ELLIPSIS
    if cells(text) <= width:
        return text
    used = 0
    for index, char in enumerate(text):
        used += _char_cells(char)
        if used > width - 1:
            return text[:index] + ELLIPSIS
    return text  # pragma: no cover - cells(text) > width means the loop returns


def one_line(value: object, limit: int) -> str:
    """`value` as a single line of at most about `limit` characters.

    Line breaks and control characters (a payload's ANSI escapes too) become one space;
    a text longer than `limit` is cut and ends with "…" so that a later `fit` keeps the
    mark. Only the first `limit` characters are looked at: a 1 MB payload costs no more
    than a short one.
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (tuple, list)):
        text = "[" + ", ".join(one_line(item, limit) for item in value[:limit]) + "]"
    else:
        text = str(value)
    cut = len(text) > limit
    if cut:
        text = text[:limit]
    if not text.isprintable():
        text = _BREAK.sub(" ", text)
    return text + ELLIPSIS if cut else text


def format_duration(nanoseconds: int | None) -> str:
    """Render a duration in nanoseconds as "850 µs", "12.3 ms", "1.52 s" or "2 m 05 s"."""
    if nanoseconds is None or nanoseconds < 0:
        return "?"
    if nanoseconds < 999_500:
        return f"{nanoseconds / 1_000:.0f} µs"
    if nanoseconds < 999_950_000:
        return f"{nanoseconds / 1_000_000:.1f} ms"
    seconds = nanoseconds / 1_000_000_000
    if seconds < 59.995:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} m {rest:02d} s"


def format_cost(cost: float) -> str:
    """Render a USD cost with at least two and at most six decimals ("$0.00021")."""
    text = f"{cost:.6f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"

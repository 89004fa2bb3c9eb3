"""Where the console tree prints: its width and whether it is coloured.

Width: the stream's terminal when it is one, else `COLUMNS`, else `DEFAULT_WIDTH`.
Colour: `FORCE_COLOR` (non-empty) forces it; otherwise only on a terminal, with
`NO_COLOR` unset or empty (https://no-color.org) and `TERM` not `dumb`.
"""

from __future__ import annotations

import os
from typing import TextIO

DEFAULT_WIDTH = 100
"""Columns used when neither the stream's terminal nor `COLUMNS` gives a width."""

MIN_WIDTH = 20
"""Narrower widths are raised to this (a tree needs room for its guides)."""

RESET = "\x1b[0m"
BOLD = "\x1b[1m"
DIM = "\x1b[2m"
RED = "\x1b[31m"
GREEN = "\x1b[32m"
YELLOW = "\x1b[33m"
MAGENTA = "\x1b[35m"
CYAN = "\x1b[36m"


def paint(text: str, code: str, color: bool) -> str:
    """`text` in the ANSI style `code` when `color` is on and both are non-empty."""
    return f"{code}{text}{RESET}" if color and code and text else text


def is_tty(stream: TextIO) -> bool:
    """Whether `stream` is an interactive terminal (False when that cannot be told)."""
    try:
        return bool(stream.isatty())
    except Exception:
        return False


def use_color(stream: TextIO) -> bool:
    """Colour for `stream`: `FORCE_COLOR` forces it, else a terminal without `NO_COLOR`."""
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return is_tty(stream)


def stream_width(stream: TextIO) -> int:
    """Columns to fit: the stream's terminal, else `COLUMNS`, else `DEFAULT_WIDTH`."""
    width = 0
    if is_tty(stream):
        try:
            width = os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            width = 0
    if width <= 0:
        try:
            width = int(os.environ.get("COLUMNS", ""))
        except ValueError:
            width = 0
    if width <= 0:
        width = DEFAULT_WIDTH
    return max(width, MIN_WIDTH)

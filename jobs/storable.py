"""Provider values made storable in PostgreSQL, whatever the provider sent.

Parsing (``jobs.providers.records``) keeps the shape; this keeps the database's rules: text
cannot hold NUL (U+0000) or lone surrogates, JSON columns refuse NaN and Infinity, integer
columns have ranges, timestamps have a calendar. A value that breaks one of them is repaired
(U+FFFD for a character, null for a number) or dropped, never allowed to fail a whole sync.
Pure: no Django.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

REPLACEMENT = "\ufffd"
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
# Deeper JSON than this is cut (null): Postgres and Python both recurse over it.
MAX_JSON_DEPTH = 64


def text(value: Any, limit: int | None = None) -> str:
    """A str fit for a text column: NUL and lone surrogates replaced, cut at ``limit``."""
    if value is None:
        return ""
    result = value if isinstance(value, str) else str(value)
    if "\x00" in result:
        result = result.replace("\x00", REPLACEMENT)
    try:
        result.encode("utf-8")
    except UnicodeEncodeError:
        result = "".join(REPLACEMENT if "\ud800" <= c <= "\udfff" else c for c in result)
    return result[:limit] if limit is not None else result


def json_value(value: Any, _depth: int = 0) -> Any:
    """``value`` with every string cleaned as ``text`` does and non-finite numbers as null."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if _depth >= MAX_JSON_DEPTH:
        return None
    if isinstance(value, dict):
        return {text(key): json_value(item, _depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item, _depth + 1) for item in value]
    return text(value)


def _bounded(value: Any, bounds: tuple[int, int]) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = int(value)
    if not isinstance(value, int):
        return None
    return value if bounds[0] <= value <= bounds[1] else None


def int32(value: Any) -> int | None:
    """For an ``IntegerField``: None when not a finite number in range."""
    return _bounded(value, INT32)


def int64(value: Any) -> int | None:
    """For a ``BigIntegerField``: None when not a finite number in range."""
    return _bounded(value, INT64)


def timestamp(value: int | float | None) -> datetime | None:
    """Unix seconds as an aware datetime; None for 0, nothing, or a date no calendar holds."""
    if not value or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None

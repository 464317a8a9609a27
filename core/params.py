"""Whole numbers from query strings and form keys.

``str.isdigit`` accepts superscripts and other Unicode digits that ``int`` refuses ("²"), so
``int(raw) if raw.isdigit()`` is a 500 waiting for the right query string; and an id longer
than PostgreSQL's bigint can hold finds nothing anyway.
"""

from __future__ import annotations

MAX_ID = 2**63 - 1  # PostgreSQL bigint


def whole_number(raw: object, *, maximum: int = MAX_ID) -> int | None:
    """``raw`` as a non-negative int when it is ASCII digits within ``maximum``; else None."""
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 30:
        return None
    value = int(raw)
    return value if value <= maximum else None

"""Deterministic splits and subsets, streamed.

A file's "units" are its non-blank lines (blank lines separate nothing in JSON Lines and
are dropped). Membership is drawn by sequential quota sampling: unit after unit, a part is
chosen with probability proportional to the places it still has left (``randrange`` over
the remaining places). That gives every assignment with the exact part sizes the same
probability — the same outcome as shuffling the indices — with O(1) memory, and the same
seed over the same file always gives byte-identical outputs. Units are counted in a first
pass and written in a second.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import BinaryIO

from datasets.validation.lines import MAX_LINE_BYTES, OversizedLine, iter_chunks, iter_lines

_WHITESPACE = b" \t\r\n"
_UTF8_BOM = b"\xef\xbb\xbf"
MAX_SEED = 2**32 - 1


class DeriveRejected(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def iter_units(fh: BinaryIO) -> Iterator[bytes | None]:
    """Non-blank lines without their newline (a leading BOM removed); None for a line over
    the validator's size cap, which is reported rather than copied."""
    for number, raw in enumerate(iter_lines(iter_chunks(fh), MAX_LINE_BYTES), 1):
        if isinstance(raw, OversizedLine):
            yield None
            continue
        if number == 1:
            raw = raw.removeprefix(_UTF8_BOM)
        if raw.strip(_WHITESPACE):
            yield raw


def count_units(fh: BinaryIO) -> tuple[int, int]:
    """(copyable units, oversized lines)."""
    units = oversized = 0
    for unit in iter_units(fh):
        if unit is None:
            oversized += 1
        else:
            units += 1
    return units, oversized


def quotas(n: int, fractions: Sequence[Fraction]) -> list[int]:
    """Part sizes summing to ``n`` exactly (largest remainder; ties go to earlier parts)."""
    exact = [f * n for f in fractions]
    sizes = [int(x) for x in exact]
    short = n - sum(sizes)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - sizes[i]), i))
    for i in order[:short]:
        sizes[i] += 1
    return sizes


class QuotaSampler:
    def __init__(self, sizes: Sequence[int], seed: int) -> None:
        self.remaining = list(sizes)
        self.left = sum(sizes)
        # Not for secrets: a reproducible draw is the point.
        self.rng = random.Random(seed)  # noqa: S311

    def draw(self) -> int:
        r = self.rng.randrange(self.left)
        for part, places in enumerate(self.remaining):
            if r < places:
                self.remaining[part] -= 1
                self.left -= 1
                return part
            r -= places
        raise AssertionError("unreachable: r < left")


def round_half_up(value: Fraction) -> int:
    return int(value + Fraction(1, 2))

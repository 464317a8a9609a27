"""Exact statistics over per-example integers (token counts, message counts).

A value -> frequency map is kept instead of the values: its size is bounded by the number of
distinct values (at most the largest token count), not by the number of examples, yet every
statistic — percentiles included — is exact. The same map is what lets a stored report be
re-priced for another model without reading the file again.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from .rules import billed_tokens_per_epoch

QUANTILES: dict[str, Fraction] = {
    "p5": Fraction(1, 20),
    "median": Fraction(1, 2),
    "p95": Fraction(19, 20),
}
DEFAULT_BUCKETS = 20


class Distribution:
    __slots__ = ("counts",)

    def __init__(self, counts: dict[int, int] | None = None) -> None:
        self.counts: dict[int, int] = dict(counts) if counts else {}

    def add(self, value: int, times: int = 1) -> None:
        counts = self.counts
        counts[value] = counts.get(value, 0) + times

    def merge(self, other: Distribution) -> None:
        for value, times in other.counts.items():
            self.add(value, times)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Distribution) and self.counts == other.counts

    def __repr__(self) -> str:
        return f"Distribution(n={self.n}, distinct={len(self.counts)})"

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    @property
    def total(self) -> int:
        return sum(v * c for v, c in self.counts.items())

    def count_above(self, limit: int) -> int:
        return sum(c for v, c in self.counts.items() if v > limit)

    def capped_total(self, limit: int | None) -> int:
        """Σ min(value, limit) over token counts: the tokens billed per epoch (the rule lives in
        ``rules.billed_tokens_per_epoch``)."""
        return billed_tokens_per_epoch(self.counts, context=limit)

    def quantile(self, q: Fraction) -> float | None:
        """Linear interpolation between closest ranks (numpy's default, and
        ``statistics.quantiles(method="inclusive")``), computed with exact integer maths."""
        items = sorted(self.counts.items())
        return _quantile(items, sum(c for _, c in items), q)

    def summary(self) -> dict[str, Any]:
        items = sorted(self.counts.items())
        n = sum(c for _, c in items)
        if n == 0:
            empty: dict[str, Any] = {"n": 0, "sum": 0, "min": None, "max": None, "mean": None}
            return empty | {name: None for name in QUANTILES}
        total = sum(v * c for v, c in items)
        out: dict[str, Any] = {
            "n": n,
            "sum": total,
            "min": items[0][0],
            "max": items[-1][0],
            "mean": total / n,
        }
        for name, q in QUANTILES.items():
            out[name] = _quantile(items, n, q)
        return out

    def histogram(self, max_buckets: int = DEFAULT_BUCKETS) -> dict[str, list[int]]:
        """Half-open buckets [edges[i], edges[i+1]) with "nice" widths (1, 2, 5 × 10^k)."""
        if not self.counts:
            return {"edges": [], "counts": []}
        items = sorted(self.counts.items())
        low, high = items[0][0], items[-1][0]
        width = _nice_width((high - low + 1) / max_buckets)
        start = (low // width) * width
        n_buckets = (high - start) // width + 1
        edges = [start + i * width for i in range(n_buckets + 1)]
        counts = [0] * n_buckets
        for value, times in items:
            counts[(value - start) // width] += times
        return {"edges": edges, "counts": counts}

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": [[v, c] for v, c in sorted(self.counts.items())],
            "summary": self.summary(),
            "histogram": self.histogram(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Distribution:
        # summary and histogram are derived data stored for the UI; the counts are the truth.
        return cls({int(v): int(c) for v, c in data["counts"]})


def _value_at(items: list[tuple[int, int]], rank: int) -> int:
    seen = 0
    for value, times in items:
        seen += times
        if rank < seen:
            return value
    raise IndexError(rank)


def _quantile(items: list[tuple[int, int]], n: int, q: Fraction) -> float | None:
    if n == 0:
        return None
    position = q * (n - 1)
    j = position.numerator // position.denominator
    frac = position - j
    low = _value_at(items, j)
    if frac == 0:
        return float(low)
    high = _value_at(items, j + 1)
    den = frac.denominator
    delta = frac.numerator
    # Same expression as statistics.quantiles so results match it bit for bit.
    return (low * (den - delta) + high * delta) / den


def _nice_width(raw: float) -> int:
    if raw <= 1:
        return 1
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= raw:
                return step * magnitude
        magnitude *= 10

"""Requirement 4, statistics: exact percentiles from value→frequency maps, and histograms."""

from __future__ import annotations

import itertools
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from datasets.validation import Distribution


def dist(values: list[int]) -> Distribution:
    d = Distribution()
    for value in values:
        d.add(value)
    return d


def test_summary_of_a_known_list() -> None:
    summary = dist([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 1000]).summary()
    assert summary == {
        "n": 11,
        "sum": 1550,
        "min": 10,
        "max": 1000,
        "mean": 1550 / 11,
        "p5": 15.0,  # position 0.5 between 10 and 20
        "median": 60.0,
        "p95": 550.0,  # position 9.5 between 100 and 1000
    }


def test_empty_summary_and_histogram() -> None:
    d = Distribution()
    assert d.summary() == {
        "n": 0,
        "sum": 0,
        "min": None,
        "max": None,
        "mean": None,
        "p5": None,
        "median": None,
        "p95": None,
    }
    assert d.histogram() == {"edges": [], "counts": []}


@settings(deadline=None, max_examples=200)
@given(st.lists(st.integers(min_value=0, max_value=70_000), min_size=2, max_size=300))
def test_percentiles_are_exact(values: list[int]) -> None:
    summary = dist(values).summary()
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    assert summary["p5"] == cuts[0]
    assert summary["p95"] == cuts[-1]
    assert summary["median"] == statistics.median(values)
    assert summary["mean"] == sum(values) / len(values)
    assert (summary["min"], summary["max"], summary["n"]) == (min(values), max(values), len(values))


@settings(deadline=None, max_examples=200)
@given(st.lists(st.integers(min_value=0, max_value=200_000), min_size=1, max_size=300))
def test_histogram_buckets_hold_every_value(values: list[int]) -> None:
    hist = dist(values).histogram()
    edges, counts = hist["edges"], hist["counts"]
    assert len(edges) == len(counts) + 1
    assert len(counts) <= 21
    assert sum(counts) == len(values)
    assert all(b > a for a, b in itertools.pairwise(edges))
    for value in values:
        assert edges[0] <= value < edges[-1]
    width = edges[1] - edges[0]
    assert str(width).strip("0") in ("1", "2", "5")


def test_histogram_widths() -> None:
    assert dist(list(range(1, 101))).histogram()["edges"][:3] == [0, 5, 10]
    assert dist([7]).histogram() == {"edges": [7, 8], "counts": [1]}
    assert dist([0, 3]).histogram() == {"edges": [0, 1, 2, 3, 4], "counts": [1, 0, 0, 1]}


def test_memory_is_bounded_by_distinct_values() -> None:
    d = Distribution()
    for i in range(100_000):
        d.add(i % 500)
    assert len(d.counts) == 500
    assert d.n == 100_000


def test_capped_total_and_count_above() -> None:
    d = dist([100, 5000, 70_000, 70_000])
    assert d.capped_total(65_536) == 100 + 5000 + 2 * 65_536
    assert d.capped_total(None) == d.total == 145_100
    assert d.count_above(65_536) == 2
    assert d.count_above(70_000) == 0


def test_round_trip() -> None:
    d = dist([3, 3, 9])
    data = d.to_dict()
    assert data["counts"] == [[3, 2], [9, 1]]
    assert Distribution.from_dict(data) == d

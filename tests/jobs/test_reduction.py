"""The display reduction the ingest keeps (pure): buckets merged when a run grows equal a
fresh pass, and what a page draws keeps the chart core's promises (pinned against
``downsample`` on the same points)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.charts import downsample
from jobs import reduction
from jobs.reduction import LEVELS


@st.composite
def series(draw: st.DrawFn, max_points: int = 3000) -> tuple[list[int], list[float]]:
    n = draw(st.integers(0, max_points))
    top = draw(st.integers(max(n, 1), max(n, 1) * draw(st.sampled_from([1, 2, 10, 1000]))))
    rng = random.Random(draw(st.integers(0, 2**32)))
    steps = sorted(rng.sample(range(top + 1), n))
    # Few distinct values: ties, which the first point must win as in ``downsample``.
    coarse = draw(st.booleans())
    values = [round(rng.uniform(0, 3), 1) if coarse else rng.uniform(0, 3) for _ in steps]
    return steps, values


@settings(max_examples=150, deadline=None)
@given(series(), st.sampled_from([1, 2, 4, 8, 64]), st.integers(1, 6))
def test_widening_equals_a_fresh_pass(
    data: tuple[list[int], list[float]], width: int, doublings: int
) -> None:
    steps, values = data
    wider = width * 2**doublings
    assert reduction.widen(reduction.summarise(steps, values, width), width, wider) == (
        reduction.summarise(steps, values, wider)
    )


@settings(max_examples=150, deadline=None)
@given(series(), st.sampled_from(LEVELS))
def test_what_a_page_draws_keeps_the_chart_cores_promises(
    data: tuple[list[int], list[float]], level: int
) -> None:
    steps, values = data
    width = reduction.width_for(level, steps[-1] if steps else 0)
    buckets = reduction.summarise(steps, values, width)
    assert len(buckets) <= reduction.buckets_for(level)
    shown_steps, shown_values = reduction.display(buckets, level)
    assert len(shown_steps) <= level
    # An order-preserving subsequence of the series, never an invented point.
    points = dict(zip(steps, values, strict=True))
    assert shown_steps == sorted(set(shown_steps))
    assert all(points[s] == v for s, v in zip(shown_steps, shown_values, strict=True))
    if not steps:
        assert shown_steps == []
        return
    # First, last, and the first global minimum and maximum, as downsample keeps them.
    assert shown_steps[0] == steps[0] and shown_steps[-1] == steps[-1]
    lowest = min(range(len(values)), key=values.__getitem__)
    highest = max(range(len(values)), key=values.__getitem__)
    assert steps[lowest] in shown_steps and steps[highest] in shown_steps
    core_steps, core_values = downsample(steps, values, level)
    assert min(core_values) == min(shown_values) and max(core_values) == max(shown_values)
    # Every bucket's lowest and highest point (a spike at display resolution) is drawn.
    for bucket in buckets.values():
        assert bucket[2] in shown_steps and bucket[4] in shown_steps
    # A series that fits (at most two points a bucket: its first and last) comes back
    # whole, as from downsample.
    if len(steps) <= level and all(
        sum(1 for s in steps if s // width == index) <= 2 for index in buckets
    ):
        assert (shown_steps, shown_values) == (steps, values)
        assert ([float(s) for s in shown_steps], shown_values) == (core_steps, core_values)


def test_a_long_run_is_drawn_with_half_to_all_of_the_budget() -> None:
    for n in (2_001, 5_000, 20_000, 100_000):
        steps = list(range(1, n + 1))
        values = [1.0 + ((s * 7919) % 101) / 100 for s in steps]
        for level in LEVELS:
            buckets = reduction.summarise(steps, values, reduction.width_for(level, n))
            shown, _ = reduction.display(buckets, level)
            assert level // 2 - 2 <= len(shown) <= level, (n, level, len(shown))


def test_stored_chunks_round_trip() -> None:
    steps = list(range(0, 5000, 3))
    values = [float(s % 17) for s in steps]
    buckets = reduction.summarise(steps, values, 8)
    restored: reduction.Buckets = {}
    for flat in reduction.pack(buckets).values():
        restored.update(reduction.unpack(flat, 8))
    assert restored == buckets
    assert all(len(flat) <= 8 * reduction.CHUNK for flat in reduction.pack(buckets).values())


def test_widths_and_cuts() -> None:
    assert reduction.width_for(150, 0) == 1
    assert reduction.width_for(150, 73) == 1 and reduction.width_for(150, 74) == 2
    assert reduction.width_for(2000, 20_000) == 32
    assert reduction.width_for(2000, 2**31 - 1) == 2**22
    with pytest.raises(ValueError, match="at least 4"):
        reduction.buckets_for(3)
    with pytest.raises(ValueError, match="not a multiple"):
        reduction.widen({}, 4, 6)
    buckets = reduction.summarise([1, 5, 9, 12], [1.0, 2.0, 3.0, 4.0], 4)
    assert sorted(reduction.up_to(buckets, 4, 10)) == [0, 1]  # bucket 2 holds steps 8..11
    assert sorted(reduction.up_to(buckets, 4, 11)) == [0, 1, 2]
    assert sorted(reduction.up_to(buckets, 4, 14)) == [0, 1, 2]
    assert sorted(reduction.up_to(buckets, 4, 15)) == [0, 1, 2, 3]
    # Non-finite values are never summarised.
    assert reduction.summarise([1, 2], [float("nan"), None], 1) == {}

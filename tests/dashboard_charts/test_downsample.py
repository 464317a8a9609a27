"""Display downsampling: min/max per bucket, with the endpoints and extremes always kept."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.charts import downsample


def test_min_and_max_of_each_bucket_by_hand() -> None:
    x = list(range(10))
    y = [5, 1, 7, 3, 9, 2, 8, 0, 6, 4]
    # Budget 6: first + last + 2 buckets of the 8 interior points: [1 7 3 9] and [2 8 0 6].
    assert downsample(x, y, budget=6) == ([0, 1, 4, 6, 7, 9], [5, 1, 9, 8, 0, 4])


def test_under_budget_is_unchanged() -> None:
    x, y = [1.0, 2.0, 3.0], [0.5, 0.4, 0.45]
    assert downsample(x, y) == (x, y)
    assert downsample([], []) == ([], [])
    assert downsample([7], [1.5]) == ([7], [1.5])
    assert downsample([1, 2], [3.0, 4.0], budget=4) == ([1, 2], [3.0, 4.0])


def test_gaps_are_dropped_not_interpolated() -> None:
    # A validation column aligned on every step: only its measured points survive.
    steps = list(range(1, 101))
    valid = [1.0 / s if s % 10 == 0 else None for s in steps]
    valid[49] = math.nan  # step 50 measured as NaN: treated as missing too
    x, y = downsample(steps, valid, budget=4)
    assert x == [10, 20, 90, 100] and y == [0.1, 0.05, 1 / 90, 0.01]
    x, y = downsample(steps, valid)
    assert x == [10, 20, 30, 40, 60, 70, 80, 90, 100]


def test_dense_series_respects_the_budget_and_keeps_spikes() -> None:
    x = list(range(1, 100_001))
    y = [1.0 + 0.001 * math.sin(i) for i in x]
    y[54_321] = 9.0  # a one-step spike
    y[77_777] = -3.0
    out_x, out_y = downsample(x, y)
    assert len(out_x) == 2000
    assert (out_x[0], out_x[-1]) == (1, 100_000)
    assert (54_322, 9.0) in zip(out_x, out_y, strict=True)
    assert (77_778, -3.0) in zip(out_x, out_y, strict=True)


def test_duplicate_x_is_kept_in_order() -> None:
    x = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    y = [1.0, 2.0, 3.0, 4.0, 0.0, 9.0, 5.0, 6.0, 7.0, 8.0]
    out_x, out_y = downsample(x, y, budget=4)
    assert out_x == [1, 3, 3, 5] and out_y == [1.0, 0.0, 9.0, 8.0]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        downsample([1, 2, 3], [1, 2, 3], budget=3)
    with pytest.raises(ValueError, match="differ in length"):
        downsample([1, 2], [1.0])


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
value = st.one_of(finite, finite, finite, st.none(), st.just(math.nan))


@st.composite
def series(draw: st.DrawFn) -> tuple[list[float], list[float | None]]:
    steps = draw(st.lists(st.floats(min_value=0.001, max_value=100), max_size=400))
    x, total = [], 0.0
    for step in steps:
        total += step
        x.append(total)
    y = draw(st.lists(value, min_size=len(x), max_size=len(x)))
    return x, y


@settings(max_examples=300, deadline=None, database=None)
@given(series(), st.integers(min_value=4, max_value=60))
def test_downsample_properties(data: tuple[list[float], list[float | None]], budget: int) -> None:
    x, y = data
    points = [(a, b) for a, b in zip(x, y, strict=True) if b is not None and math.isfinite(b)]
    out_x, out_y = downsample(x, y, budget)
    out = list(zip(out_x, out_y, strict=True))
    assert len(out) <= budget
    assert all(later > earlier for earlier, later in pairwise(out_x))
    # An order-preserving subsequence of the input's measured points.
    remaining = iter(points)
    assert all(point in remaining for point in out)
    if len(points) <= budget:
        assert out == points
    if points:
        assert out[0] == points[0] and out[-1] == points[-1]
        assert min(out_y) == min(b for _, b in points)
        assert max(out_y) == max(b for _, b in points)

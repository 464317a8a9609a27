"""Shape-preserving downsampling of a series for display: min/max per bucket.

Why min/max per bucket rather than LTTB: a chart of ≤ 2,000 points is at most a couple of
points per pixel column anyway, and what must survive is every excursion — a loss spike is the
evidence of instability the page talks about. Keeping each bucket's lowest and highest point
keeps every spike and dip at display resolution, makes the global minimum and maximum survive
by construction (LTTB can drop them and needs patching to keep them), and costs one pass.

Contract of ``downsample``:
* missing values (None, NaN, ±inf in x or y) are dropped, never interpolated or bridged: a
  sparse validation column stays its few measured points, it does not become dense;
* the output is an order-preserving subsequence of the remaining input points, so strictly
  increasing x stays strictly increasing (duplicate x values are tolerated and kept in order);
* a series of at most ``budget`` points comes back unchanged (as new lists);
* otherwise the first and last points are kept and the interior is cut into
  ``(budget - 2) // 2`` buckets of consecutive points, each contributing its minimum and its
  maximum (one point when they coincide), so the result never exceeds ``budget`` and always
  contains the global minimum and maximum of y.
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboard.charts.series import finite_number

DEFAULT_BUDGET = 2000
MIN_BUDGET = 4  # first, last, minimum, maximum


def downsample(
    x: Sequence[float | None], y: Sequence[float | None], budget: int = DEFAULT_BUDGET
) -> tuple[list[float], list[float]]:
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} != {len(y)})")
    if budget < MIN_BUDGET:
        raise ValueError(f"budget must be at least {MIN_BUDGET}, got {budget}")
    points = [
        (fx, fy)
        for fx, fy in zip(map(finite_number, x), map(finite_number, y), strict=True)
        if fx is not None and fy is not None
    ]
    if len(points) <= budget:
        return [px for px, _ in points], [py for _, py in points]
    kept = [0]
    interior = len(points) - 2
    buckets = (budget - 2) // 2
    for bucket in range(buckets):
        # Interior indices 1..len-2 split into `buckets` nearly equal consecutive runs.
        start = 1 + bucket * interior // buckets
        stop = 1 + (bucket + 1) * interior // buckets
        lowest = min(range(start, stop), key=lambda i: points[i][1])
        highest = max(range(start, stop), key=lambda i: points[i][1])
        kept.extend(sorted({lowest, highest}))
    kept.append(len(points) - 1)
    return [points[i][0] for i in kept], [points[i][1] for i in kept]

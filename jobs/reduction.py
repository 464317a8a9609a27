"""Display reduction of metric curves that can be kept up to date one sync at a time (pure).

A page never draws more than ``LEVELS[0]`` points per series, and a comparison of many runs
fewer (one of ``LEVELS``). Reducing a whole series when a page asks costs seconds for a long
run, so the ingest keeps, for each run and level, a summary that new metric rows only touch
at its end: the step axis cut into fixed **buckets** of ``width`` steps (bucket ``b`` holds
steps ``b * width … (b + 1) * width - 1``), each remembered by four points — its first, its
lowest, its highest and its last (the first of equal values wins, as in the chart core's
``downsample``).

Why buckets by step rather than by index (``downsample`` cuts the points into equal runs of
consecutive points): a bucket's four points depend only on the rows inside its steps, so a new
row changes one bucket and a re-sent or late row changes the bucket it falls in, never the
others. ``width`` is the smallest power of two that keeps a level within ``buckets_for(level)``
buckets up to the run's highest step; when the run grows past that, neighbouring buckets are
merged pairwise (``widen``), which gives exactly the summary a fresh pass at the wider width
would. So the summary of a run is a function of its rows alone, however they arrived, and a
property test holds incremental updates equal to a pass over all rows.

What a page shows (``display``): every remembered point when they fit in the level, otherwise
the first point, each bucket's lowest and highest, and the last point — at most
``2 * buckets_for(level) + 2 <= level`` points. As with ``downsample``: an order-preserving
subsequence of the series, the first and last points and the global minimum and maximum
always kept, spikes and dips kept at display resolution, sparse series never densified. Unlike
it, a long series is shown with between half and all of the level's budget (the buckets of a
power-of-two width fill between half and all of the level).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

# Point budgets per series: a run's own page, then comparisons of more and more runs.
LEVELS: tuple[int, ...] = (2000, 1000, 500, 250, 150)
# Buckets per stored row (a sync rewrites only the rows its new points fall in).
CHUNK = 32

# first step, first value, lowest step, lowest value, highest step, highest value,
# last step, last value
Bucket = list[float]
Buckets = dict[int, Bucket]  # bucket index -> its four points
Points = tuple[list[int], list[float]]  # (steps, values), sorted by step


def buckets_for(level: int) -> int:
    """Most buckets a level may have: a lowest and a highest each, plus the first and last
    point of the series, stay within ``level`` points."""
    if level < 4:
        raise ValueError(f"a level holds at least 4 points, got {level}")
    return (level - 2) // 2


def width_for(level: int, max_step: int) -> int:
    """The narrowest power-of-two bucket width that covers steps ``0 … max_step`` with at
    most ``buckets_for(level)`` buckets."""
    limit = buckets_for(level)
    width = 1
    while max(0, max_step) // width >= limit:
        width *= 2
    return width


def summarise(steps: Sequence[int], values: Sequence[float | None], width: int) -> Buckets:
    """The buckets of points sorted by step with unique steps (non-finite values skipped)."""
    buckets: Buckets = {}
    isfinite = math.isfinite
    for step, value in zip(steps, values, strict=True):
        if value is None or not isfinite(value):
            continue
        index = step // width
        bucket = buckets.get(index)
        if bucket is None:
            buckets[index] = [step, value, step, value, step, value, step, value]
            continue
        if value < bucket[3]:
            bucket[2], bucket[3] = step, value
        if value > bucket[5]:
            bucket[4], bucket[5] = step, value
        bucket[6], bucket[7] = step, value
    return buckets


def merge(earlier: Bucket, later: Bucket) -> Bucket:
    """One bucket from two neighbours (``earlier`` holds the lower steps): what a pass over
    the points of both would remember."""
    low = earlier[2:4] if earlier[3] <= later[3] else later[2:4]
    high = earlier[4:6] if earlier[5] >= later[5] else later[4:6]
    return [earlier[0], earlier[1], *low, *high, later[6], later[7]]


def widen(buckets: Mapping[int, Bucket], old_width: int, new_width: int) -> Buckets:
    """The same points in buckets of ``new_width`` (a multiple of ``old_width``)."""
    if new_width % old_width:
        raise ValueError(f"{new_width} is not a multiple of {old_width}")
    factor = new_width // old_width
    if factor == 1:
        return {index: list(bucket) for index, bucket in buckets.items()}
    wider: Buckets = {}
    for index in sorted(buckets):
        target = index // factor
        current = wider.get(target)
        wider[target] = list(buckets[index]) if current is None else merge(current, buckets[index])
    return wider


def display(buckets: Mapping[int, Bucket], level: int) -> Points:
    """The points a page draws at ``level``: see the module docstring."""
    if not buckets:
        return [], []
    ordered = [buckets[index] for index in sorted(buckets)]
    chosen: dict[int, float] = {}
    for bucket in ordered:
        for at in (0, 2, 4, 6):
            chosen[int(bucket[at])] = bucket[at + 1]
    if len(chosen) > level:
        chosen = {int(ordered[0][0]): ordered[0][1]}
        for bucket in ordered:
            chosen[int(bucket[2])] = bucket[3]
            chosen[int(bucket[4])] = bucket[5]
        chosen[int(ordered[-1][6])] = ordered[-1][7]
    steps = sorted(chosen)
    return steps, [chosen[step] for step in steps]


def up_to(buckets: Mapping[int, Bucket], width: int, step: int) -> Buckets:
    """The buckets that end at or before ``step`` (the one ``step`` falls in is left out:
    its points after ``step`` are unknown here, so the caller recomputes it)."""
    return {index: bucket for index, bucket in buckets.items() if (index + 1) * width - 1 <= step}


def widths_for(max_step: int) -> dict[int, int]:
    """Each level's bucket width for a run whose highest step is ``max_step``."""
    return {level: width_for(level, max_step) for level in LEVELS}


def levels_of(
    steps: Sequence[int], values: Sequence[float | None], widths: Mapping[int, int]
) -> dict[int, Buckets]:
    """Every level's buckets of the points of one series in one pass: the finest level from
    the points, the others by merging it (the widths are powers of two, so they nest)."""
    finest = min(widths.values())
    base = summarise(steps, values, finest)
    return {level: widen(base, finest, width) for level, width in widths.items()}


# --- Stored form: each row holds CHUNK buckets of one level, {metric: flat list} -----------


def chunk_of(index: int) -> int:
    return index // CHUNK


def pack(buckets: Mapping[int, Bucket]) -> dict[int, list[float]]:
    """Buckets as flat lists per stored chunk (the bucket index is its first step // width)."""
    chunks: dict[int, list[float]] = {}
    for index in sorted(buckets):
        chunks.setdefault(chunk_of(index), []).extend(buckets[index])
    return chunks


def unpack(flat: Sequence[float], width: int) -> Buckets:
    return {
        int(flat[at]) // width: [int(flat[at]), flat[at + 1], int(flat[at + 2]), flat[at + 3],
                                 int(flat[at + 4]), flat[at + 5], int(flat[at + 6]), flat[at + 7]]
        for at in range(0, len(flat), 8)
    }  # fmt: skip


def replace_range(
    buckets: Buckets, fresh: Mapping[int, Bucket], ranges: Iterable[tuple[int, int]], width: int
) -> None:
    """Put the buckets recomputed from every row of the step ``ranges`` (inclusive, aligned
    to bucket edges) in place of the stored ones there."""
    spans = [(lo // width, hi // width) for lo, hi in ranges]
    for index in [i for i in buckets if any(a <= i <= b for a, b in spans)]:
        del buckets[index]
    buckets.update({index: list(bucket) for index, bucket in fresh.items()})

"""TensorBoard's smoothing: an exponential moving average with debiasing.

For the finite values v₁, v₂, … of one series and a weight w in [0, 1)::

    s₀ = 0,   s_t = w·s_{t−1} + (1 − w)·v_t,   smoothed_t = s_t / (1 − w^t)

Starting from 0 biases the first averages towards 0; dividing by 1 − w^t (the total weight the
average has given to real values so far) removes that bias, so the curve starts at the first
value instead of near zero. w = 0 returns the values unchanged. A missing value (None, NaN,
±inf) stays missing in the output and is skipped without resetting the average: t counts only
the values seen. Like TensorBoard, a series whose values are all equal is returned as is (the
recurrence would otherwise add rounding noise to a flat line).

``static/js/charts_common.js`` (``tuneboard.ema``) implements the identical algorithm so the
page can re-smooth without a round trip; a test runs both on the same inputs. Smoothing is
applied to one series at a time: validation points are never averaged into the training curve.
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboard.charts.series import finite_number


def ema(values: Sequence[float | None], weight: float) -> list[float | None]:
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    numbers = [finite_number(value) for value in values]
    present = [number for number in numbers if number is not None]
    if all(number == present[0] for number in present):
        return numbers
    smoothed: list[float | None] = []
    last = 0.0
    count = 0
    for number in numbers:
        if number is None:
            smoothed.append(None)
            continue
        last = last * weight + (1 - weight) * number
        count += 1
        smoothed.append(last / (1 - weight**count))
    return smoothed

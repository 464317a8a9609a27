"""TensorBoard's debiased EMA, in Python and in static/js/charts_common.js."""

from __future__ import annotations

import json
import math

import pytest

from dashboard.charts import ema

from .helpers import run_node


def test_hand_computed_values() -> None:
    # w = 0.5: s1 = 0.5, s2 = 1.25, s3 = 2.125; debiased by 0.5, 0.75, 0.875.
    assert ema([1, 2, 3], 0.5) == pytest.approx([1.0, 5 / 3, 17 / 7])
    # w = 0.9: s1 = 0.4 / 0.1 = 4 (the first value, thanks to debiasing); s2 = 0.36 + 0.2 = 0.56,
    # / 0.19 = 2.947368…
    assert ema([4, 2], 0.9) == pytest.approx([4.0, 0.56 / 0.19])


def test_weight_zero_is_the_identity() -> None:
    values = [2.5, 1.25, 3.0, 0.1, 7.75]
    assert ema(values, 0.0) == values


def test_constant_sequence_stays_constant() -> None:
    assert ema([0.7] * 50, 0.95) == [0.7] * 50
    # Debiasing, not a special case, keeps a flat start flat before a change.
    smoothed = ema([0.7] * 20 + [1.7], 0.95)
    assert smoothed[:20] == pytest.approx([0.7] * 20, rel=1e-12)
    assert 0.7 < smoothed[20] < 1.7


def test_missing_values_are_skipped_without_reset() -> None:
    assert ema([1, None, 2, math.nan, 3, math.inf], 0.5) == pytest.approx(
        [1.0, None, 5 / 3, None, 17 / 7, None]
    )
    assert ema([None, None], 0.5) == [None, None]
    assert ema([], 0.5) == []


@pytest.mark.parametrize("weight", [-0.1, 1.0, 1.5])
def test_weight_out_of_range(weight: float) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        ema([1.0], weight)


CASES = [
    ([1, 2, 3], 0.5),
    ([4, 2], 0.9),
    ([2.5, 1.25, 3.0, 0.1], 0.0),
    ([0.7] * 5, 0.95),
    ([1, None, 2, None, 3], 0.6),
    ([math.sin(i) + 0.01 * i for i in range(500)], 0.99),
    ([2.0, 1.9, 1.7, 1.8, 1.2, 1.1, 0.9], 0.3),
]


def test_javascript_ema_matches_python() -> None:
    results = run_node(
        f"var cases = {json.dumps(CASES)};\n"
        "console.log(JSON.stringify(cases.map(function (c) { return tb.ema(c[0], c[1]); })));"
    )
    assert isinstance(results, list)
    for (values, weight), js in zip(CASES, results, strict=True):
        python = ema(values, weight)
        assert [v is None for v in js] == [v is None for v in python]
        assert [v for v in js if v is not None] == pytest.approx(
            [v for v in python if v is not None], rel=1e-12
        )


def test_javascript_rejects_weights_out_of_range() -> None:
    result = run_node(
        "var out = [];\n"
        "[1, -0.5, NaN].forEach(function (w) {\n"
        "  try { tb.ema([1], w); out.push('ok'); } catch (e) { out.push(e.name); }\n"
        "});\n"
        "console.log(JSON.stringify(out));"
    )
    assert result == ["RangeError", "RangeError", "RangeError"]

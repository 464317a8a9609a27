"""Confidence intervals, the t quantile and win rates (evals/stats.py)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evals.stats import (
    Interval,
    WinRate,
    mean_interval,
    pairwise_rate,
    t_cdf,
    t_quantile,
    wilson_interval,
    win_rate,
)

# scipy.stats.t.ppf(p, df), hard-coded so the tests need no scipy.
SCIPY_T_PPF = {
    (0.975, 1): 12.706204736174698,
    (0.975, 2): 4.302652729749464,
    (0.975, 3): 3.182446305284263,
    (0.975, 4): 2.7764451051977987,
    (0.975, 5): 2.5705818356363146,
    (0.975, 6): 2.4469118511449692,
    (0.975, 7): 2.3646242510102993,
    (0.975, 8): 2.306004135033371,
    (0.975, 9): 2.2621571627409915,
    (0.975, 10): 2.2281388519862735,
    (0.975, 15): 2.131449545559323,
    (0.975, 20): 2.0859634472658364,
    (0.975, 25): 2.059538552753294,
    (0.975, 30): 2.0422724563012373,
    (0.975, 40): 2.021075382995338,
    (0.975, 50): 2.008559109715206,
    (0.975, 60): 2.0002978220142604,
    (0.975, 100): 1.9839715184496334,
    (0.975, 120): 1.9799304050824413,
    (0.975, 150): 1.9759053308869495,
    (0.975, 200): 1.9718962236316093,
    (0.95, 1): 6.313751514675041,
    (0.95, 2): 2.919985580355516,
    (0.95, 5): 2.015048372669157,
    (0.95, 10): 1.8124611228107335,
    (0.95, 30): 1.6972608943617378,
    (0.95, 100): 1.6602343260657506,
    (0.95, 200): 1.6525081009380098,
    (0.995, 1): 63.65674116287399,
    (0.995, 2): 9.924843200918276,
    (0.995, 5): 4.032142983557536,
    (0.995, 10): 3.169272667175838,
    (0.995, 30): 2.749995653567,
    (0.995, 100): 2.625890521264,
    (0.995, 200): 2.6006344361,
    (0.9, 1): 3.077683537175253,
    (0.9, 10): 1.3721836411102863,
}


def approx4(interval: Interval) -> tuple[float, float, float]:
    return (round(interval.mean, 4), round(interval.low, 4), round(interval.high, 4))


# --- t quantile --------------------------------------------------------------------------


@pytest.mark.parametrize(("p", "df"), list(SCIPY_T_PPF))
def test_t_quantile_matches_scipy(p: float, df: int) -> None:
    expected = SCIPY_T_PPF[(p, df)]
    # The brief asks for 1%; the implementation is exact to float noise.
    assert t_quantile(p, df) == pytest.approx(expected, rel=1e-7)
    assert t_quantile(1 - p, df) == pytest.approx(-expected, rel=1e-7)


def test_t_quantile_inverts_the_cdf_for_every_df_up_to_200_and_beyond() -> None:
    # Past df 1000 the quantile comes from a series expansion instead of inverting the CDF.
    for df in [*range(1, 201), 500, 999, 1000, 1001, 1500, 5000]:
        for p in (0.8, 0.95, 0.975, 0.995):
            assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-11), (p, df)


def test_t_quantile_falls_with_df_towards_the_normal_quantile() -> None:
    dfs = [1, 2, 3, 10, 100, 999, 1000, 1001, 1002, 10**5, 10**7]
    values = [t_quantile(0.975, df) for df in dfs]
    assert values == sorted(values, reverse=True)
    assert values[-1] == pytest.approx(1.959963984540054, rel=1e-6)


def test_t_quantile_median_and_domain() -> None:
    assert t_quantile(0.5, 7) == 0.0
    for p, df in [(0.0, 5), (1.0, 5), (0.5, 0)]:
        with pytest.raises(ValueError, match="t_quantile"):
            t_quantile(p, df)


def test_t_cdf_known_values() -> None:
    assert t_cdf(0.0, 5) == 0.5
    assert t_cdf(1.0, 1) == pytest.approx(0.75)  # Cauchy: 1/2 + atan(1)/pi
    assert t_cdf(-2.0, 2) == pytest.approx(0.5 - 1 / math.sqrt(6))  # closed form for df = 2


# --- Wilson ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "confidence", "expected"),
    [
        (8, 10, 0.95, (0.8, 0.4902, 0.9433)),
        (5, 10, 0.95, (0.5, 0.2366, 0.7634)),
        (0, 10, 0.95, (0.0, 0.0, 0.2775)),
        (10, 10, 0.95, (1.0, 0.7225, 1.0)),
        (50, 100, 0.95, (0.5, 0.4038, 0.5962)),
        (1, 1, 0.95, (1.0, 0.2065, 1.0)),
        (0, 1, 0.95, (0.0, 0.0, 0.7935)),
        # z = 1.644854: centre 0.935277/1.270554, half z*sqrt(0.016 + 0.006764)/1.270554
        (8, 10, 0.9, (0.8, 0.5408, 0.9314)),
    ],
)
def test_wilson_interval_known_values(
    successes: int, n: int, confidence: float, expected: tuple[float, float, float]
) -> None:
    interval = wilson_interval(successes, n, confidence)
    assert approx4(interval) == expected
    assert interval.n == n


def test_binary_values_use_wilson() -> None:
    values = [1.0] * 8 + [0.0] * 2
    assert mean_interval(values) == wilson_interval(8, 10)
    assert mean_interval([True, False, True]) == wilson_interval(2, 3)  # type: ignore[list-item]
    assert mean_interval([1, 0, 1, 1]) == wilson_interval(3, 4)


def test_wilson_bounds_are_exact_at_the_extremes() -> None:
    assert wilson_interval(0, 3).low == 0.0
    assert wilson_interval(3, 3).high == 1.0


def test_wilson_interval_rejects_impossible_counts() -> None:
    for successes, n in [(1, 0), (-1, 5), (6, 5)]:
        with pytest.raises(ValueError, match="wilson_interval"):
            wilson_interval(successes, n)


# --- t interval --------------------------------------------------------------------------


def test_t_interval_by_hand() -> None:
    # mean 0.65, sd sqrt(0.05/3), se sd/2, t(0.975, 3) = 3.182446305284263
    interval = mean_interval([0.5, 0.6, 0.7, 0.8])
    assert interval is not None
    half = 3.182446305284263 * math.sqrt(0.05 / 3) / 2
    assert interval.mean == pytest.approx(0.65)
    assert interval.low == pytest.approx(0.65 - half, rel=1e-9)
    assert interval.high == pytest.approx(0.65 + half, rel=1e-9)
    assert approx4(interval) == (0.65, 0.4446, 0.8554)
    assert interval.n == 4


def test_t_interval_at_99_percent() -> None:
    values = [0.2, 0.3, 0.3, 0.4, 0.5, 0.5, 0.6, 0.7, 0.9, 0.4, 0.6]
    interval = mean_interval(values, confidence=0.99)
    assert interval is not None
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = 3.169272667175838 * sd / math.sqrt(len(values))  # t(0.995, 10)
    assert (interval.low, interval.high) == pytest.approx((mean - half, mean + half), rel=1e-7)


def test_t_interval_is_clipped_to_the_unit_range_for_scores() -> None:
    interval = mean_interval([0.2, 0.4, 0.9])
    assert interval == Interval(mean=pytest.approx(0.5), low=0.0, high=1.0, n=3)


def test_t_interval_is_not_clipped_for_other_values() -> None:
    interval = mean_interval([10.0, 20.0, 30.0])
    assert interval is not None
    half = 4.302652729749464 * 10 / math.sqrt(3)
    assert (interval.mean, interval.low, interval.high) == pytest.approx(
        (20.0, 20.0 - half, 20.0 + half)
    )


def test_one_non_binary_value_has_a_zero_width_interval() -> None:
    assert mean_interval([0.7]) == Interval(mean=0.7, low=0.7, high=0.7, n=1)


def test_one_binary_value_still_gets_a_wilson_interval() -> None:
    assert approx4(mean_interval([1.0])) == (1.0, 0.2065, 1.0)  # type: ignore[arg-type]


def test_identical_values_have_a_zero_width_interval() -> None:
    assert mean_interval([0.25] * 5) == Interval(mean=0.25, low=0.25, high=0.25, n=5)


def test_large_samples_use_the_normal_limit() -> None:
    values = [0.25, 0.75] * 5000
    interval = mean_interval(values)
    assert interval is not None
    half = (interval.high - interval.low) / 2
    sd = math.sqrt(0.0625 * 10000 / 9999)
    assert half == pytest.approx(1.9602 * sd / 100, rel=1e-4)


def test_no_values_no_interval() -> None:
    assert mean_interval([]) is None


def test_mean_interval_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="finite"):
        mean_interval([0.5, float("nan")])
    for confidence in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="confidence"):
            mean_interval([0.5], confidence=confidence)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=60),
    confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_unit_scores_give_an_ordered_interval_inside_zero_one(
    values: list[float], confidence: float
) -> None:
    interval = mean_interval(values, confidence)
    assert interval is not None
    assert 0.0 <= interval.low <= interval.mean <= interval.high <= 1.0
    assert interval.n == len(values)


# --- win rates ---------------------------------------------------------------------------


def test_win_rate_counts_by_position() -> None:
    scores = [1.0, 0.0, 0.5, 0.8, None, 0.3, 1.0]
    baseline = [0.0, 1.0, 0.5, 0.7, 1.0, None, 1.0]
    result = win_rate(scores, baseline)
    assert result == WinRate(wins=2, ties=2, losses=1, rate=(2 + 1) / 5)
    assert result.compared == 5


def test_win_rate_treats_float_noise_as_a_tie() -> None:
    assert win_rate([0.1 + 0.2], [0.3]) == WinRate(wins=0, ties=1, losses=0, rate=0.5)
    assert win_rate([0.30001], [0.3]) == WinRate(wins=1, ties=0, losses=0, rate=1.0)


def test_win_rate_with_nothing_compared_has_no_rate() -> None:
    assert win_rate([], []) == WinRate(wins=0, ties=0, losses=0, rate=None)
    assert win_rate([None, 1.0], [0.0, None]) == WinRate(0, 0, 0, None)


def test_win_rate_needs_aligned_sequences() -> None:
    with pytest.raises(ValueError, match="same length"):
        win_rate([1.0, 0.0], [1.0])


def test_pairwise_rate_tallies_judge_verdicts() -> None:
    outcomes = [1.0, 1.0, 0.5, 0.0, None, 1.0, 0.0, None]
    result = pairwise_rate(outcomes)
    assert result == WinRate(wins=3, ties=1, losses=2, rate=3.5 / 6)


def test_pairwise_rate_extremes() -> None:
    assert pairwise_rate([]) == WinRate(0, 0, 0, None)
    assert pairwise_rate([None, None]) == WinRate(0, 0, 0, None)
    assert pairwise_rate([0.5, 0.5]).rate == 0.5
    assert pairwise_rate([1.0]).rate == 1.0
    assert pairwise_rate([0.0]).rate == 0.0


def test_pairwise_rate_rejects_other_values() -> None:
    with pytest.raises(ValueError, match=r"0\.7"):
        pairwise_rate([1.0, 0.7])


@settings(max_examples=100, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.one_of(st.none(), st.floats(0, 1)), st.one_of(st.none(), st.floats(0, 1))),
        max_size=40,
    )
)
def test_win_rate_is_symmetric(pairs: list[tuple[float | None, float | None]]) -> None:
    scores = [a for a, _ in pairs]
    baseline = [b for _, b in pairs]
    mine, theirs = win_rate(scores, baseline), win_rate(baseline, scores)
    assert (mine.wins, mine.ties, mine.losses) == (theirs.losses, theirs.ties, theirs.wins)
    assert mine.compared == sum(a is not None and b is not None for a, b in pairs)
    if mine.rate is not None and theirs.rate is not None:
        assert mine.rate + theirs.rate == pytest.approx(1.0)

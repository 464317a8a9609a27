"""Confidence intervals and win rates for evaluation scores (pure: no Django, no scipy).

Scores are means over examples, so every number shown needs its uncertainty next to it:
pass/fail graders get a Wilson score interval (well-behaved at 0/n and n/n, unlike the
normal approximation); continuous scores get a Student-t interval.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class WinRate:
    wins: int
    ties: int
    losses: int
    rate: float | None  # (wins + ties/2) / compared; None when nothing was compared

    @property
    def compared(self) -> int:
        return self.wins + self.ties + self.losses


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval | None:
    """The mean of values with a two-sided confidence interval; None for no values.

    All values 0 or 1: Wilson score interval around the proportion. Otherwise a Student-t
    interval, clipped to [0, 1] when every value lies in [0, 1] (a score cannot leave it).
    """
    _check_confidence(confidence)
    data = [float(v) for v in values]
    if not data:
        return None
    if not all(math.isfinite(v) for v in data):
        raise ValueError("mean_interval: values must be finite numbers")
    if all(v in (0.0, 1.0) for v in data):
        return wilson_interval(int(sum(data)), len(data), confidence)
    return _t_interval(data, confidence)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for successes out of n (n > 0); mean is the observed proportion."""
    _check_confidence(confidence)
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError("wilson_interval: need 0 <= successes <= n and n > 0")
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    # At p = 0 or 1 the bound is exactly 0 or 1 in theory; rounding could overshoot.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(mean=p, low=low, high=high, n=n)


def _t_interval(data: list[float], confidence: float) -> Interval:
    n = len(data)
    mean = math.fsum(data) / n
    if n == 1:
        return Interval(mean=mean, low=mean, high=mean, n=1)
    # Two-pass variance: the one-pass sum-of-squares formula cancels badly near the mean.
    variance = math.fsum((v - mean) ** 2 for v in data) / (n - 1)
    half = t_quantile((1 + confidence) / 2, n - 1) * math.sqrt(variance / n)
    low, high = mean - half, mean + half
    if all(0.0 <= v <= 1.0 for v in data):
        low, high = max(0.0, low), min(1.0, high)
    return Interval(mean=mean, low=low, high=high, n=n)


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1 (exclusive)")


# --- Student's t quantile ----------------------------------------------------------------

# Above this many degrees of freedom the Cornish-Fisher expansion is accurate to ~1e-12 and
# saves the continued fraction, whose cost grows with df.
_EXPANSION_DF = 1000


@functools.lru_cache(maxsize=1024)
def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with df degrees of freedom (scipy.stats.t.ppf)."""
    if not 0 < p < 1:
        raise ValueError("t_quantile: p must be between 0 and 1 (exclusive)")
    if df < 1:
        raise ValueError("t_quantile: df must be at least 1")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    if p == 0.5:
        return 0.0
    # Closed forms for the two heaviest tails, where bisection would need a huge bracket.
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    if df > _EXPANSION_DF:
        return _cornish_fisher(NormalDist().inv_cdf(p), df)
    return _invert_t_cdf(p, df)


def _invert_t_cdf(p: float, df: int) -> float:
    # Newton from the Cornish-Fisher guess, kept inside a shrinking bracket: the CDF is
    # concave for t > 0 so Newton converges in a handful of steps, and bisection catches the
    # rare step that leaves the bracket.
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2
    t = min(max(_cornish_fisher(NormalDist().inv_cdf(p), df), low), high)
    for _ in range(200):
        error = t_cdf(t, df) - p
        if error < 0:
            low = t
        else:
            high = t
        step = error / t_pdf(t, df)
        candidate = t - step
        if not low < candidate < high:
            candidate = (low + high) / 2
        if abs(candidate - t) <= 1e-15 * t or high - low <= 1e-15 * high:
            return candidate
        t = candidate
    return t


def t_pdf(t: float, df: int) -> float:
    log_density = (
        math.lgamma((df + 1) / 2)
        - math.lgamma(df / 2)
        - 0.5 * math.log(df * math.pi)
        - (df + 1) / 2 * math.log1p(t * t / df)
    )
    return math.exp(log_density)


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with df degrees of freedom."""
    tail = 0.5 * _regularized_beta(df / (df + t * t), df / 2, 0.5)
    return 1 - tail if t > 0 else tail


def _cornish_fisher(z: float, df: int) -> float:
    # Abramowitz & Stegun 26.7.5.
    z2 = z * z
    g1 = z * (z2 + 1) / 4
    g2 = z * ((5 * z2 + 16) * z2 + 3) / 96
    g3 = z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / 384
    g4 = z * ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def _regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), via the continued fraction on whichever side converges (Numerical Recipes)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(x, a, b) / a
    return 1 - front * _beta_fraction(1 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    # Modified Lentz evaluation of the continued fraction for I_x(a, b).
    tiny = 1e-300
    c = 1.0
    d = 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < 1e-15:
            break
    return result


# --- win rates ---------------------------------------------------------------------------

# Scores computed two ways (a mean of judge scores, say) can differ in the last bit; that is
# a tie, not a win.
_TIE_TOLERANCE = 1e-9


def win_rate(scores: Sequence[float | None], baseline: Sequence[float | None]) -> WinRate:
    """Compare scores with baseline position by position; pairs with a None are skipped."""
    if len(scores) != len(baseline):
        raise ValueError("win_rate: scores and baseline must have the same length")
    wins = ties = losses = 0
    for mine, theirs in zip(scores, baseline, strict=True):
        if mine is None or theirs is None:
            continue
        if math.isclose(mine, theirs, rel_tol=0.0, abs_tol=_TIE_TOLERANCE):
            ties += 1
        elif mine > theirs:
            wins += 1
        else:
            losses += 1
    return _win_rate(wins, ties, losses)


def pairwise_rate(outcomes: Sequence[float | None]) -> WinRate:
    """Tally judge verdicts: 1.0 win, 0.5 tie, 0.0 loss, None (unparsed reply) skipped."""
    counts = {1.0: 0, 0.5: 0, 0.0: 0}
    for outcome in outcomes:
        if outcome is None:
            continue
        if outcome not in counts:
            raise ValueError(f"pairwise_rate: outcome {outcome!r} is not 0.0, 0.5 or 1.0")
        counts[outcome] += 1
    return _win_rate(counts[1.0], counts[0.5], counts[0.0])


def _win_rate(wins: int, ties: int, losses: int) -> WinRate:
    compared = wins + ties + losses
    rate = (wins + ties / 2) / compared if compared else None
    return WinRate(wins=wins, ties=ties, losses=losses, rate=rate)

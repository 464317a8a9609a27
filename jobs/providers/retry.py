"""When to retry and how long to wait, following the conventions of OpenAI's own SDK."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

RETRYABLE_STATUSES = frozenset({408, 409, 429})
# Answers by which the server says it did not act on the request: a timeout waiting for it,
# a conflict, a rate limit. Any other retryable status (5xx) may come after the work was done.
NOT_ACTED_STATUSES = RETRYABLE_STATUSES


def status_is_retryable(status: int, headers: Mapping[str, str]) -> bool:
    # The server may know better than the status code (OpenAI sends it on some 4xx/5xx).
    override = headers.get("x-should-retry", "").strip().lower()
    if override == "true":
        return True
    if override == "false":
        return False
    return status in RETRYABLE_STATUSES or status >= 500


def status_leaves_outcome_unknown(status: int) -> bool:
    """Whether a failed answer leaves it open if the server acted (it may have done the work
    and failed afterwards); the statuses that say "not done" and other 4xx do not."""
    return status >= 500 and status not in NOT_ACTED_STATUSES


def retry_after_seconds(
    headers: Mapping[str, str], *, cap: float, now: float | None = None
) -> float | None:
    """The wait the server asked for, capped; None when it asked for nothing usable.

    ``retry-after-ms`` wins over ``retry-after`` because it is more precise; ``retry-after``
    may be seconds (possibly fractional) or an HTTP date.
    """
    delay: float | None = None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            delay = float(millis) / 1000
        except ValueError:
            delay = None
    if delay is None:
        raw = headers.get("retry-after", "").strip()
        if raw:
            try:
                delay = float(raw)
            except ValueError:
                delay = _seconds_until_http_date(raw, now)
    if delay is None or delay != delay or delay < 0:  # delay != delay: NaN
        return None
    return min(delay, cap)


def _seconds_until_http_date(raw: str, now: float | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT by definition
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def backoff_seconds(attempt: int, *, base: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(maximum, base * 2**attempt)].

    Full jitter spreads retries of many workers hit by the same outage instead of having
    them return in lockstep.
    """
    ceiling = min(maximum, base * (2 ** min(attempt, 32)))
    return rng.uniform(0, max(0.0, ceiling))

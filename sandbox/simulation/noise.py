"""Stateless seeded randomness.

Every draw is a pure function of ``(seed, stream, index)``: a step's metrics cost O(1), do not
depend on which other steps were computed first, and are identical across processes and
machines (``hashlib`` is not salted per process the way ``hash()`` is).
"""

from __future__ import annotations

import hashlib
from statistics import NormalDist

_STANDARD_NORMAL = NormalDist()
# 52 bits per uniform: (k + 0.5) / 2**52 stays strictly inside (0, 1) in float arithmetic,
# which inv_cdf needs; 53 or 64 bits could round the top value up to exactly 1.0.
_BITS = 52
_SCALE = 2.0**-_BITS


def uniforms(seed: int, stream: str, index: int) -> tuple[float, float, float, float]:
    """Four independent uniforms in (0, 1) for one (seed, stream, index)."""
    digest = hashlib.blake2b(f"{seed}|{stream}|{index}".encode(), digest_size=32).digest()
    words = (int.from_bytes(digest[i : i + 8], "big") >> (64 - _BITS) for i in range(0, 32, 8))
    a, b, c, d = ((word + 0.5) * _SCALE for word in words)
    return a, b, c, d


def uniform(seed: int, stream: str, index: int) -> float:
    return uniforms(seed, stream, index)[0]


def normal(seed: int, stream: str, index: int, *, clip: float = 2.5) -> float:
    """A standard normal draw, clipped so that one unlucky step cannot look like a spike."""
    z = _STANDARD_NORMAL.inv_cdf(uniform(seed, stream, index))
    return max(-clip, min(clip, z))


def between(seed: int, name: str, low: float, high: float) -> float:
    """A run-level constant drawn once per seed, e.g. the initial loss."""
    return low + (high - low) * uniform(seed, f"param:{name}", 0)

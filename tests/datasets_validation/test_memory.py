"""Requirement 1: memory does not grow with the size of the file."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from datasets.validation import tokens, validate_stream

_WORDS = " ".join(f"w{j}" for j in range(3000))


def synthetic_chunks(n_examples: int) -> Iterator[bytes]:
    """Distinct ~1.5 KB chat examples, produced lazily in ~256 KB chunks."""
    buffer: list[bytes] = []
    size = 0
    for i in range(n_examples):
        start = (i * 37) % 10_000
        line = (
            json.dumps(
                {
                    "messages": [
                        {"role": "system", "content": "You are terse."},
                        {"role": "user", "content": f"{i}: {_WORDS[start : start + 1500]}"},
                        {"role": "assistant", "content": f"reply {i}"},
                    ]
                }
            ).encode()
            + b"\n"
        )
        buffer.append(line)
        size += len(line)
        if size > 1 << 18:
            yield b"".join(buffer)
            buffer, size = [], 0
    yield b"".join(buffer)


def peak_bytes(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_is_flat_as_the_file_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    # Smaller batches and caches than the defaults, so both runs pass through many batches
    # and fill the caches while staying quick under tracemalloc: same code, smaller constants.
    monkeypatch.setattr(tokens, "BATCH_CHARS", 1 << 17)
    monkeypatch.setattr(tokens, "_SHORT_CACHE_ENTRIES", 256)
    validate_stream(b"{}\n")  # load the BPE tables outside the measurement
    small = peak_bytes(lambda: validate_stream(synthetic_chunks(1_000)))  # ~1.6 MB of JSONL
    large = peak_bytes(lambda: validate_stream(synthetic_chunks(4_000)))  # ~6.4 MB of JSONL
    # Only the duplicate index grows with the number of examples (12 bytes a slot, 1.4–2.9
    # slots an example, doubled briefly while it resizes).
    assert large - small < 64 * 3_000, (small, large)
    assert large < 4 << 20

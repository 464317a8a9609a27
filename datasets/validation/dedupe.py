"""Exact-duplicate detection in compact memory.

Lines are remembered by a 64-bit hash in an open-addressing table made of two arrays (hash and
first line number): 12 bytes a slot, at most 70% full, so roughly 17–34 bytes per distinct
example instead of the ~100+ a set of Python ints or strings would take. The key is Python's
own hash of the line's bytes: SipHash-1-3, a 64-bit function keyed with a secret drawn when
the interpreter starts, so two different lines collide with probability ~n²/2⁶⁵ (negligible
next to the cost of storing the lines) and, unless PYTHONHASHSEED fixes the secret, no file
can be crafted to collide. It is about five times faster than a BLAKE2b digest. Keys are
compared only within one validation, whose worker processes are forks of the process that
merges their keys (``processes``): they share its secret, so a line has the same key in every
one of them.
"""

from __future__ import annotations

from array import array

_EMPTY = 0
_MAX_LOAD = 0.7


def line_key(data: bytes) -> int:
    """The 64-bit key of a line, the same in this process and its forks (never 0: 0 marks an
    empty slot)."""
    return (hash(data) & 0xFFFF_FFFF_FFFF_FFFF) or 1


class SeenLines:
    def __init__(self, capacity: int = 1024) -> None:
        capacity = max(8, 1 << (capacity - 1).bit_length())
        self._keys = array("Q", bytes(8 * capacity))
        self._lines = array("I", bytes(4 * capacity))
        self._mask = capacity - 1
        self._used = 0
        self._limit = int(capacity * _MAX_LOAD)

    def __len__(self) -> int:
        return self._used

    @property
    def nbytes(self) -> int:
        return self._keys.itemsize * len(self._keys) + self._lines.itemsize * len(self._lines)

    def add(self, data: bytes, line: int) -> int | None:
        """Remember ``data`` as seen on ``line``; return the earlier line if already seen."""
        return self.add_key(line_key(data), line)

    def add_key(self, key: int, line: int) -> int | None:
        """``add`` for a line whose ``line_key`` is known."""
        keys, mask = self._keys, self._mask
        slot = key & mask
        while True:
            current = keys[slot]
            if current == _EMPTY:
                keys[slot] = key
                self._lines[slot] = min(line, 0xFFFFFFFF)
                self._used += 1
                if self._used > self._limit:
                    self._grow()
                return None
            if current == key:
                return self._lines[slot]
            slot = (slot + 1) & mask

    def _grow(self) -> None:
        old_keys, old_lines = self._keys, self._lines
        capacity = len(old_keys) * 2
        self._keys = keys = array("Q", bytes(8 * capacity))
        self._lines = lines = array("I", bytes(4 * capacity))
        self._mask = mask = capacity - 1
        self._limit = int(capacity * _MAX_LOAD)
        for key, line in zip(old_keys, old_lines, strict=True):
            if key == _EMPTY:
                continue
            slot = key & mask
            while keys[slot] != _EMPTY:
                slot = (slot + 1) & mask
            keys[slot] = key
            lines[slot] = line

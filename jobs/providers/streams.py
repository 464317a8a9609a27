"""Bounded-memory views over an upload's byte stream.

httpx reads a file field in 64 KB chunks, after calling ``seek(0)`` on it. A ``Window`` shows
httpx one slice of the caller's stream as if it were a whole file, so a part of a multi-part
upload is streamed straight from the source, and a retry can replay it by seeking back.
The ``SourceReader`` underneath hashes every byte once, in order, even across replays.
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import BinaryIO

# Upper bound on one read, whatever size a caller asks for: keeps memory flat.
MAX_READ = 1024 * 1024


class TruncatedStreamError(ValueError):
    """The stream ended before the number of bytes the caller declared."""


def is_seekable(stream: BinaryIO) -> bool:
    try:
        if not stream.seekable():
            return False
        stream.tell()
    except (AttributeError, OSError, ValueError):
        return False
    return True


class SourceReader:
    """Reads ``size`` bytes from ``stream`` (starting where it stands), hashing them with MD5."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self.size = size
        self.seekable = is_seekable(stream)
        self._origin = stream.tell() if self.seekable else 0
        self._position = 0  # relative to _origin
        self._hashed = 0  # bytes [0, _hashed) are in the digest
        self._digest = hashlib.md5()  # noqa: S324 - the Uploads API's checksum, not security

    def read_at(self, position: int, size: int) -> bytes:
        if position > self._hashed:
            self._hash_through(position)
        if position != self._position:
            if not self.seekable:
                raise io.UnsupportedOperation("the upload stream cannot be rewound")
            self._stream.seek(self._origin + position)
            self._position = position
        chunk = self._stream.read(min(size, MAX_READ, self.size - position))
        self._position += len(chunk)
        if self._position > self._hashed:
            self._digest.update(chunk[self._hashed - position :])
            self._hashed = self._position
        return chunk

    def _hash_through(self, end: int) -> None:
        # Reached only when bytes were skipped (never in our own flow): read them to hash them.
        while self._hashed < end:
            chunk = self.read_at(self._hashed, end - self._hashed)
            if not chunk:
                raise TruncatedStreamError(
                    f"the upload stream ended after {self._hashed} of {self.size} bytes"
                )

    def md5_hexdigest(self) -> str:
        """The MD5 of all ``size`` bytes; reads whatever was not hashed yet."""
        self._hash_through(self.size)
        return self._digest.hexdigest()


class Window:
    """A read-only, seekable file-like view of ``length`` bytes at ``offset`` in a source.

    No ``fileno``: httpx would otherwise ``fstat`` the underlying file and declare its whole
    size as the part's length.
    """

    def __init__(self, source: SourceReader, offset: int, length: int) -> None:
        self._source = source
        self._offset = offset
        self._length = length
        self._position = 0
        self._consumed = False

    @property
    def replayable(self) -> bool:
        return self._source.seekable or not self._consumed

    def read(self, size: int | None = -1) -> bytes:
        remaining = self._length - self._position
        if remaining <= 0:
            return b""
        wanted = remaining if size is None or size < 0 else min(size, remaining)
        chunk = self._source.read_at(self._offset + self._position, wanted)
        if not chunk:
            raise TruncatedStreamError(
                f"the upload stream ended after {self._offset + self._position} bytes; "
                f"expected {self._source.size}"
            )
        self._consumed = True
        self._position += len(chunk)
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        # The position is virtual until the next read, so httpx may measure the length
        # (seek to the end and back) even on a one-way stream; only re-reading needs the
        # source to be seekable, and the retry loop checks ``replayable`` first.
        if whence == os.SEEK_SET:
            target = offset
        elif whence == os.SEEK_CUR:
            target = self._position + offset
        elif whence == os.SEEK_END:
            target = self._length + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise ValueError("negative seek position")
        self._position = target
        return target

    def tell(self) -> int:
        return self._position

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

"""Static files as production serves them: WhiteNoise's hashed names (far-future, immutable cache
headers) with Brotli and gzip copies, compressed only when a copy is missing or out of date.

WhiteNoise compresses every collected file on every ``collectstatic``, and ``make run`` collects
at each start: Brotli alone takes about 9 s for each of plotly.js's two copies (its plain and
hashed names). Unpacking a copy takes milliseconds, so a copy that unpacks to the file as it is
now is kept; a missing one, one of an older version or one cut short (a start interrupted while
writing it) is made again. Modification times cannot tell: Django rewrites every .js and .css
file on each run (it rewrites the references between them).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable, Iterable, Iterator

from whitenoise.compress import brotli_installed
from whitenoise.storage import CompressedManifestStaticFilesStorage


def _unpackers() -> tuple[dict[str, Callable[[bytes], bytes]], tuple[type[Exception], ...]]:
    """The copies WhiteNoise writes next to a compressible file (when they save space), how
    each unpacks, and what unpacking a damaged one raises."""
    found: dict[str, Callable[[bytes], bytes]] = {".gz": gzip.decompress}
    damaged: tuple[type[Exception], ...] = (OSError, EOFError, zlib.error)  # BadGzipFile: OSError
    if brotli_installed:
        import brotli

        found[".br"] = brotli.decompress
        damaged += (brotli.error,)
    return found, damaged


class CompressedStaticFilesStorage(CompressedManifestStaticFilesStorage):  # type: ignore[misc]
    def compress_files(self, paths: Iterable[str]) -> Iterator[tuple[str, str]]:
        stale = [name for name in paths if not self._compressed_copies_current(name)]
        yield from super().compress_files(stale)

    def _compressed_copies_current(self, name: str) -> bool:
        source = self.path(name)
        unpackers, damaged = _unpackers()
        copies = {source + suffix: unpack for suffix, unpack in unpackers.items()}
        if not all(os.path.exists(path) for path in copies):
            return False
        with open(source, "rb") as file:
            content = file.read()
        for path, unpack in copies.items():
            try:
                with open(path, "rb") as file:
                    if unpack(file.read()) != content:
                        return False
            except damaged:
                return False
        # WhiteNoise's ETags come from the times: the copies keep their source's, as when made.
        made = os.stat(source)
        for path in copies:
            os.utime(path, ns=(made.st_atime_ns, made.st_mtime_ns))
        return True

"""Uploads stream the caller's file: memory stays flat whatever the file's size."""

from __future__ import annotations

import gc
import hashlib
import os
import threading
from pathlib import Path

import psutil
import pytest

from jobs.providers import OpenAICompatibleProvider

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024
FILE_SIZE = 30 * MB
MAX_GROWTH = 15 * MB


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("uploads") / "big.jsonl"
    digest = hashlib.md5()  # noqa: S324
    line = b'{"messages": [{"role": "user", "content": "' + b"x" * 1000 + b'"}]}\n'
    with open(path, "wb") as out:
        written = 0
        while written < FILE_SIZE:
            block = line * 1024
            out.write(block)
            digest.update(block)
            written += len(block)
    return path, digest.hexdigest()


class PeakRss:
    """Samples this process's RSS in a thread: a whole-file read is freed at once after the
    upload, so only the peak while it runs shows it."""

    def __init__(self, interval: float = 0.002) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        gc.collect()
        self.baseline = self.peak = self._process.memory_info().rss

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


@pytest.mark.parametrize(
    "adapter",
    [
        pytest.param({}, id="files-api"),
        pytest.param({"multipart_threshold": 8 * MB, "part_size": 8 * MB}, id="uploads-api"),
    ],
)
def test_uploading_30_mb_keeps_memory_flat(
    make_provider, big_file: tuple[Path, str], adapter: dict
) -> None:  # type: ignore[no-untyped-def]
    path, md5 = big_file
    provider: OpenAICompatibleProvider = make_provider(adapter=adapter)
    size = os.path.getsize(path)
    with open(path, "rb") as warm_up:  # first-use allocations are not what is measured
        provider.upload_file(filename="warm.jsonl", stream=warm_up, size=min(size, 9 * MB))
    with open(path, "rb") as stream, PeakRss() as memory:
        info = provider.upload_file(filename="big.jsonl", stream=stream, size=size)
    assert info.bytes == size
    assert memory.growth < MAX_GROWTH, f"peak RSS grew by {memory.growth / MB:.1f} MB"
    # The stored copy is the file, byte for byte (hashed server-side-independently here).
    assert hashlib.md5(provider.download_file(info.id)).hexdigest() == md5  # noqa: S324

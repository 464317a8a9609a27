"""A 20 MB upload through the live view keeps the process's memory flat (bench/upload.py
measures 50 and 200 MB the same way)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from django.test import Client
from django.test.client import ClientHandler

from datasets.models import Dataset
from tests.conftest import BASE_DIR
from tests.permissions import make_user

MB = 1_000_000


def _bench() -> object:
    spec = importlib.util.spec_from_file_location("bench_upload", BASE_DIR / "bench" / "upload.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.django_db
def test_20mb_upload_memory_stays_flat(tmp_path: Path) -> None:
    bench = _bench()
    path = tmp_path / "big.jsonl"
    bench.generate(path, 20 * MB, seed=7)  # type: ignore[attr-defined]
    small = tmp_path / "small.jsonl"
    bench.generate(small, MB // 2, seed=8)  # type: ignore[attr-defined]
    client = Client()
    client.force_login(make_user("member"))
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    handler = ClientHandler(enforce_csrf_checks=False)

    def post(file_path: Path) -> int:
        body = bench.MultipartStream(
            file_path, fields={"name": file_path.stem}, file_name=file_path.name
        )  # type: ignore[attr-defined]
        environ = bench.upload_environ(
            body, path="/datasets/upload/", cookie=cookie, csrf_token=None
        )  # type: ignore[attr-defined]
        response = handler(environ)
        body.close()
        return response.status_code

    assert post(small) == 302  # warm-up: imports and caches belong to the baseline
    with bench.rss_peak_sampler() as peak:  # type: ignore[attr-defined]
        assert post(path) == 302
    before, top = peak()
    growth = top - before
    stored = Dataset.objects.get(name="big")
    assert stored.size == path.stat().st_size > 20 * MB
    assert Path(stored.file.path).read_bytes()[:100] == path.read_bytes()[:100]
    # The whole file never sits in memory: growth stays a small fraction of its size.
    assert growth < 8 * MB, (
        f"RSS grew by {growth / MB:.1f} MB for a {stored.size / MB:.0f} MB upload"
    )

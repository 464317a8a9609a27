"""Benchmark of the streaming dataset upload: throughput and memory versus file size.

    python bench/upload.py [--sizes 50,200] [--keep DIR]

How it runs (no server, no browser, nothing to start by hand):

* PostgreSQL and Redis: with ``DATABASE_URL`` / ``CELERY_BROKER_URL`` unset, the script starts
  the same embedded services ``python -m runtime`` uses, in a temporary folder, runs
  ``migrate`` there and stops them at the end. With the variables set it uses those servers
  (it creates a user ``bench-uploader`` and deletes the datasets it uploads).
* For each size it generates a synthetic chat JSONL file on disk, then uploads it in a fresh
  Python process through the real WSGI stack (``django.core.handlers.wsgi.WSGIHandler``:
  every middleware, session login, CSRF, the upload view and its streaming handler). The
  request body is a file-like object that yields the multipart framing and then reads the
  file from disk in chunks, exactly as a WSGI server hands a socket to Django, so the only
  memory the upload can use is the server side's.
* Memory: a thread samples the process RSS every 2 ms during the request; the figure is the
  peak minus the RSS just before it (after a small warm-up upload, so imports and caches
  are already counted in the baseline).
* Baseline, measured in the same child: hashing and copying the same file from disk to disk
  in 1 MB chunks (the floor for any upload that stores and hashes), so the report gives
  the upload's throughput as a ratio of it.

Targets: RSS growth ≤ 150 MB at every size, and flat as the file grows (the ratio of the
growth at the largest size to the smallest should be near 1, not near the size ratio).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MB = 1_000_000
RSS_TARGET_MB = 150.0
BOUNDARY = "tuneboardBenchBoundary9f2c"
CHUNK = 1 << 20


# --- the request body ------------------------------------------------------------------------


class MultipartStream:
    """A ``wsgi.input`` that streams a multipart/form-data body whose file part is read
    from ``path`` on demand; ``length`` is the exact Content-Length."""

    def __init__(self, path: Path, *, fields: dict[str, str], file_name: str) -> None:
        head = b"".join(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        head += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{file_name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        self._pieces: list[bytes] = [head]
        self._tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self._file = open(path, "rb")  # noqa: SIM115 - closed when the body is exhausted
        self.length = len(head) + path.stat().st_size + len(self._tail)
        self.content_type = f"multipart/form-data; boundary={BOUNDARY}"

    def _more(self) -> bool:
        if self._file is not None:
            chunk = self._file.read(CHUNK)
            if chunk:
                self._pieces.append(chunk)
                return True
            self._file.close()
            self._file = None
            self._pieces.append(self._tail)
            return True
        return False

    def read(self, size: int | None = -1) -> bytes:
        out = bytearray()
        while size is None or size < 0 or len(out) < size:
            if not self._pieces and not self._more():
                break
            piece = self._pieces.pop(0)
            want = len(piece) if size is None or size < 0 else size - len(out)
            out += piece[:want]
            if want < len(piece):
                self._pieces.insert(0, piece[want:])
        return bytes(out)

    def readline(self, size: int | None = -1) -> bytes:
        out = bytearray()
        while not out.endswith(b"\n") and (size is None or size < 0 or len(out) < size):
            byte = self.read(1)
            if not byte:
                break
            out += byte
        return bytes(out)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def upload_environ(
    body: MultipartStream, *, path: str, cookie: str, csrf_token: str | None
) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": body.content_type,
        "CONTENT_LENGTH": str(body.length),
        "HTTP_COOKIE": cookie,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if csrf_token:
        environ["HTTP_X_CSRFTOKEN"] = csrf_token
    return environ


@contextmanager
def rss_peak_sampler(interval: float = 0.002) -> Iterator[Callable[[], tuple[int, int]]]:
    """Yields a function returning (RSS before, peak RSS so far) in bytes."""
    import psutil

    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: (before, peak[0])
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], process.memory_info().rss)


# --- synthetic data --------------------------------------------------------------------------

_WORDS = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "is",
    "in",
    "that",
    "for",
    "it",
    "with",
    "as",
    "on",
    "be",
    "this",
    "you",
    "are",
    "was",
    "model",
    "data",
    "train",
    "answer",
    "question",
    "support",
    "order",
    "refund",
    "shipping",
    "café",
    "Zürich",
    "データ",
    "🙂",
    "résumé",
]


def generate(path: Path, size_bytes: int, seed: int) -> int:
    rng = random.Random(seed)
    lines = 0
    with open(path, "wb") as out:
        written = 0
        while written < size_bytes:
            words = rng.choices(_WORDS, k=rng.randint(20, 120))
            example = {
                "messages": [
                    {"role": "system", "content": "You are a helpful support agent."},
                    {"role": "user", "content": f"#{lines} " + " ".join(words[: len(words) // 3])},
                    {"role": "assistant", "content": " ".join(words)},
                ]
            }
            line = json.dumps(example, ensure_ascii=False).encode() + b"\n"
            out.write(line)
            written += len(line)
            lines += 1
    return lines


# --- the child: one upload through the WSGI stack --------------------------------------------


def _baseline_copy(path: Path, dest: Path) -> float:
    start = time.perf_counter()
    digest = hashlib.sha256()
    with open(path, "rb") as src, open(dest, "wb") as out:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    elapsed = time.perf_counter() - start
    dest.unlink()
    return elapsed


def child(path: Path) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import Client

    from core import roles
    from datasets import services
    from datasets.models import Dataset

    User = get_user_model()
    user, _ = User.objects.get_or_create(username="bench-uploader")
    user.groups.add(Group.objects.get(name=roles.MEMBER))
    client = Client()
    client.force_login(user)
    token = "b" * 32  # an unmasked CSRF secret is a valid token for the same cookie
    cookie = (
        f"{client.cookies['sessionid'].key}={client.cookies['sessionid'].value}; csrftoken={token}"
    )
    handler = WSGIHandler()

    def post(file_path: Path) -> tuple[int, bytes]:
        body = MultipartStream(file_path, fields={"name": "bench"}, file_name=file_path.name)
        status: list[str] = []
        result = handler(
            upload_environ(body, path="/datasets/upload/", cookie=cookie, csrf_token=token),
            lambda s, headers, exc_info=None: status.append(s),
        )
        content = b"".join(result)
        if hasattr(result, "close"):
            result.close()
        body.close()
        return int(status[0].split()[0]), content

    def cleanup() -> None:
        for dataset in Dataset.objects.filter(uploaded_by=user):
            services.dataset_delete(dataset=dataset)

    cleanup()
    warm = path.with_name("warm-up.jsonl")
    generate(warm, 1 * MB, seed=99)
    code, content = post(warm)
    assert code == 302, (code, content[:500])
    cleanup()

    baseline = _baseline_copy(path, path.with_suffix(".copy"))
    with rss_peak_sampler() as peak:
        start = time.perf_counter()
        code, content = post(path)
        elapsed = time.perf_counter() - start
    before, top = peak()
    assert code == 302, (code, content[:500])
    stored = Dataset.objects.get(uploaded_by=user)
    assert stored.size == path.stat().st_size
    cleanup()
    return {
        "bytes": path.stat().st_size,
        "seconds": elapsed,
        "baseline_seconds": baseline,
        "rss_before": before,
        "rss_growth": top - before,
    }


# --- the parent: services, files, one child per size -----------------------------------------


@contextmanager
def services_env(workdir: Path) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("TUNEBOARD_VAR_DIR", str(workdir / "var"))
    env.setdefault("MEDIA_ROOT", str(workdir / "media"))
    env["SECURE_SSL_REDIRECT"] = "false"
    env["SECURE_COOKIES"] = "false"
    from runtime.embedded import EmbeddedServices
    from runtime.supervisor import apply_defaults

    apply_defaults(env)  # development secrets: settings refuse to start without them

    services = EmbeddedServices(workdir / "services", env)
    services.start()
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env, check=True
        )
        yield env
    finally:
        services.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,200", help="file sizes in MB, comma-separated")
    parser.add_argument("--keep", type=Path, help="work folder to use and keep")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="tuneboard-bench-upload-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        with services_env(workdir) as env:
            for size in sizes:
                path = workdir / f"bench-{size}mb.jsonl"
                lines = generate(path, size * MB, seed=size)
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(path)],
                    cwd=REPO, env=env, check=True, capture_output=True, text=True,
                )  # fmt: skip
                result = json.loads(out.stdout.strip().splitlines()[-1])
                result["lines"] = lines
                results.append(result)
                path.unlink()
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"{'file':>10} {'lines':>10} {'upload MB/s':>12} {'copy MB/s':>10} {'ratio':>6} {'RSS growth':>11}"
    )
    for r in results:
        upload_rate = r["bytes"] / MB / r["seconds"]
        copy_rate = r["bytes"] / MB / r["baseline_seconds"]
        print(
            f"{r['bytes'] / MB:>8.0f}MB {r['lines']:>10,} {upload_rate:>12.1f} {copy_rate:>10.1f} "
            f"{upload_rate / copy_rate:>6.2f} {r['rss_growth'] / MB:>9.1f}MB"
        )
    growths = [r["rss_growth"] / MB for r in results]
    flat = max(growths[-1], 0.1) / max(growths[0], 0.1)
    size_ratio = results[-1]["bytes"] / results[0]["bytes"]
    ok = all(g <= RSS_TARGET_MB for g in growths)
    print(
        f"RSS growth {growths[-1]:.1f} MB at {results[-1]['bytes'] / MB:.0f} MB vs "
        f"{growths[0]:.1f} MB at {results[0]['bytes'] / MB:.0f} MB: ratio {flat:.2f} for a "
        f"{size_ratio:.1f}× larger file (target ≤ {RSS_TARGET_MB:.0f} MB and flat): "
        f"{'OK' if ok else 'OVER TARGET'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

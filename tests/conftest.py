from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent
# API keys the sandbox accepts in tests (each key is its own organisation).
KEY = "sk-sandbox-contract-tests"
OTHER_KEY = "sk-sandbox-someone-else"


@pytest.fixture(autouse=True)
def _fast_and_plain(settings: object) -> None:
    # Hashing speed is not under test; manifest static storage needs collectstatic first.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def sandbox_url(live_server, settings) -> str:  # type: ignore[no-untyped-def]
    """The built-in sandbox served over real HTTP by the live test server (instant jobs)."""
    settings.SANDBOX_API_KEYS = [KEY, OTHER_KEY]
    settings.SANDBOX_SECONDS_PER_STEP = 0
    return live_server.url + "/sandbox/v1"


def database_url_for_current_db() -> str:
    """The URL of the database the tests run on (test_…), for processes we start."""
    params = connection.settings_dict
    host = params["HOST"] or "localhost"
    credentials = quote(params["USER"] or "", safe="")
    if params["PASSWORD"]:
        credentials += ":" + quote(params["PASSWORD"], safe="")
    port = f":{params['PORT']}" if params["PORT"] else ""
    return f"postgres://{credentials}@{quote(host, safe='')}{port}/{params['NAME']}"


def subprocess_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url_for_current_db()
    env["PYTHONUNBUFFERED"] = "1"
    # Workers started by tests poll providers every second and give up on hung calls fast.
    env.setdefault("POLL_INTERVAL", "1")
    env.setdefault("PROVIDER_READ_TIMEOUT", "3")
    env.update(overrides)
    return env


def start_worker(
    log: Path, hostname: str, *, queues: str = "default,polling,validation", **env_overrides: str
) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "INFO",
             "-Q", queues, "-c", "2", "--hostname", hostname,
             "--without-gossip", "--without-mingle"],
            cwd=BASE_DIR, env=subprocess_env(**env_overrides), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def wait_for_worker(process: subprocess.Popen[bytes], hostname: str, log: Path) -> None:
    from config.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"celery worker exited early:\n{log.read_text()[-3000:]}")
        if app.control.ping(destination=[hostname], timeout=0.5):
            return
    pytest.fail(f"celery worker did not answer within 60 s:\n{log.read_text()[-3000:]}")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup: None, django_db_blocker: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real `celery worker` process consuming the real broker, on the test database.

    Tests that use it need committed data: mark them ``django_db(transaction=True)``.
    """
    from config.celery import app

    hostname = f"test-worker-{os.getpid()}@localhost"
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    app.control.purge()
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        process = start_worker(log, hostname)
    try:
        wait_for_worker(process, hostname, log)
        yield hostname
    finally:
        stop_process(process)


def start_beat(folder: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "WARNING",
         "-s", str(folder / "beat-schedule"), "--pidfile", str(folder / "beat.pid")],
        cwd=BASE_DIR, env=subprocess_env(), start_new_session=True,
    )  # fmt: skip


@pytest.fixture
def celery_beat(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real `celery beat` (schedules every POLL_INTERVAL = 1 s) for tests of polling."""
    process = start_beat(tmp_path)
    try:
        yield process
    finally:
        stop_process(process)


def wait_until(predicate: object, timeout: float = 30.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return False

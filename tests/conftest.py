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


@pytest.fixture(autouse=True)
def _fast_and_plain(settings: object) -> None:
    # Hashing speed is not under test; manifest static storage needs collectstatic first.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def database_url_for_current_db() -> str:
    """The URL of the database the tests run on (test_…), for processes we start."""
    params = connection.settings_dict
    host = params["HOST"] or "localhost"
    credentials = quote(params["USER"] or "", safe="")
    if params["PASSWORD"]:
        credentials += ":" + quote(params["PASSWORD"], safe="")
    port = f":{params['PORT']}" if params["PORT"] else ""
    return f"postgres://{credentials}@{quote(host, safe='')}{port}/{params['NAME']}"


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url_for_current_db()
    env["PYTHONUNBUFFERED"] = "1"
    return env


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
    from dashboard.celery import app

    hostname = f"test-worker-{os.getpid()}@localhost"
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        env = subprocess_env()
    app.control.purge()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "dashboard", "worker", "-l", "INFO",
             "-Q", "default,polling,validation", "-c", "2", "--hostname", hostname,
             "--without-gossip", "--without-mingle"],
            cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"celery worker exited early:\n{log.read_text()[-3000:]}")
            replies = app.control.ping(destination=[hostname], timeout=0.5)
            if replies:
                break
        else:
            pytest.fail(f"celery worker did not answer within 60 s:\n{log.read_text()[-3000:]}")
        yield hostname
    finally:
        stop_process(process)


def wait_until(predicate: object, timeout: float = 30.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return False

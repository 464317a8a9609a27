from __future__ import annotations

import fcntl
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.signals import request_finished, request_started
from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent
# The queues the app routes to (CELERY_TASK_QUEUES) and the one the kill tests add.
APP_QUEUES = ("default", "polling", "validation", "provider")
TEST_QUEUES = (*APP_QUEUES, "doomed")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Repeat pytest-randomly's seed at the end (its header line is hidden by -q), so that a
    failing order can be replayed with ``--randomly-seed=N``."""
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int):
        terminalreporter.write_line(f"Random order: --randomly-seed={seed}")


@pytest.fixture(autouse=True)
def _fast_and_plain(settings: object) -> None:
    # Hashing speed is not under test; manifest static storage needs collectstatic first.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


# What production collects and serves (config/settings.py outside DEBUG; a test checks they agree).
PRODUCTION_STATIC_STORAGE = {"BACKEND": "core.staticstorage.CompressedStaticFilesStorage"}


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``collectstatic`` as production runs it (hashed names, Brotli and gzip copies), once per
    test run: compressing plotly.js with Brotli takes seconds. The test processes of one run
    share a folder (their temporary folders' parent); the first one collects, under a lock."""
    from django.conf import settings
    from django.core.management import call_command
    from django.test import override_settings

    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp().parent
    else:  # one process: its own temporary folder
        shared = tmp_path_factory.mktemp("static")
    root = shared / "collected-static"
    with open(shared / "collected-static.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "collected-static.done").exists():
            storages = {**settings.STORAGES, "staticfiles": PRODUCTION_STATIC_STORAGE}
            with override_settings(STATIC_ROOT=root, STORAGES=storages):
                call_command("collectstatic", "--noinput", "-v", "0")
            (shared / "collected-static.done").touch()
    return root


@pytest.fixture
def production_static(settings: Any, collected_static: Path) -> Path:
    """Static files as production has them: hashed URLs in the pages, and WhiteNoise (in a
    request handler created from now on) serving ``collected_static``."""
    settings.STATIC_ROOT = collected_static
    settings.STORAGES = {**settings.STORAGES, "staticfiles": PRODUCTION_STATIC_STORAGE}
    return collected_static


@pytest.fixture(autouse=True)
def _catalog(request: pytest.FixtureRequest) -> None:
    """The base-model catalog comes from a data migration, and transactional tests flush every
    table afterwards; put the seeded rows back when they are gone, whatever ran before."""
    import importlib

    from django.apps import apps as django_apps

    from datasets.models import BaseModel

    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = marker.kwargs.get("transaction", False)
    request.getfixturevalue("transactional_db" if transactional else "db")
    if not BaseModel.objects.exists():
        seed = importlib.import_module("datasets.migrations.0002_seed_base_models").seed
        seed(django_apps, None)


def wait_until(predicate: object, timeout: float = 30.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return False


# --- requests served by the live server (the sandbox runs there) -----------------------------


def _caller_key(environ: dict[str, Any]) -> str:
    key = environ.get("HTTP_API_KEY", "").strip()
    header = environ.get("HTTP_AUTHORIZATION", "")
    if not key and header.lower().startswith("bearer "):
        key = header[7:].strip()
    return key


@dataclass
class LiveRequests:
    """Requests being served in this process (the live server's threads, the test client),
    told apart by the API key they carry. Fed by Django's request signals; nothing patched."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    open: dict[int, tuple[str, str]] = field(default_factory=dict)  # thread → (key, path)
    peaks: dict[tuple[str, str], int] = field(default_factory=dict)  # (key, path) → most at once

    def started(self, environ: dict[str, Any]) -> None:
        key, path = _caller_key(environ), environ.get("PATH_INFO", "")
        with self.lock:
            self.open[threading.get_ident()] = (key, path)
            now = sum(1 for k, p in self.open.values() if (k, p) == (key, path))
            if now > self.peaks.get((key, path), 0):
                self.peaks[(key, path)] = now

    def finished(self) -> None:
        with self.lock:
            self.open.pop(threading.get_ident(), None)

    def in_flight(self) -> list[str]:
        """Paths of the requests being served now by other threads."""
        alive = {t.ident for t in threading.enumerate()} - {threading.get_ident()}
        with self.lock:
            return [path for thread, (_, path) in self.open.items() if thread in alive]

    def peak(self, key: str, path_suffix: str) -> int:
        """The most requests with ``key`` to a path ending with ``path_suffix`` served at once."""
        with self.lock:
            return max(
                (n for (k, p), n in self.peaks.items() if k == key and p.endswith(path_suffix)),
                default=0,
            )


LIVE_REQUESTS = LiveRequests()


def _on_request_started(sender: object, environ: dict[str, Any] | None = None, **kw: Any) -> None:
    if environ is not None:
        LIVE_REQUESTS.started(environ)


def _on_request_finished(sender: object, **kwargs: Any) -> None:
    LIVE_REQUESTS.finished()


request_started.connect(_on_request_started, dispatch_uid="tests.live_requests.started")
request_finished.connect(_on_request_finished, dispatch_uid="tests.live_requests.finished")


# --- the sandbox ----------------------------------------------------------------------------


def new_sandbox_key(settings: Any, label: str = "") -> str:
    """A fresh sandbox API key (so a fresh sandbox organisation: its own faults, files, jobs,
    profile and webhooks), accepted by the sandbox from now until the end of the test."""
    key = f"sk-sandbox-test-{label}{secrets.token_hex(12)}"
    settings.SANDBOX_API_KEYS = [*settings.SANDBOX_API_KEYS, key]
    return key


@pytest.fixture
def sandbox_key(settings: Any) -> str:
    """This test's own sandbox organisation. Faults injected with it hit only its requests."""
    return new_sandbox_key(settings)


@pytest.fixture
def other_sandbox_key(settings: Any) -> str:
    """A second organisation of this test's own."""
    return new_sandbox_key(settings, "other-")


@pytest.fixture
def sandbox_url(live_server, settings, sandbox_key: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The built-in sandbox served over real HTTP by the live test server (instant jobs).
    Only this test's keys are accepted; at the end, waits until the live server serves no
    request any more (one held by a fault, say), so none runs into the next test."""
    settings.SANDBOX_API_KEYS = [
        k for k in settings.SANDBOX_API_KEYS if k.startswith("sk-sandbox-test-")
    ]
    settings.SANDBOX_SECONDS_PER_STEP = 0
    yield live_server.url + "/sandbox/v1"
    assert wait_until(lambda: not LIVE_REQUESTS.in_flight(), timeout=60), (
        f"requests still being served: {LIVE_REQUESTS.in_flight()}"
    )


@dataclass(frozen=True)
class Sandbox:
    """This test's organisation at the sandbox: its API base URL and key, and its controls
    (faults, account profile and webhooks, completion log: sandbox/views/control.py)."""

    url: str  # …/sandbox/v1
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def control(self, path: str, body: dict | None = None, method: str = "POST") -> Any:
        import httpx

        response = httpx.request(
            method, f"{self.url.removesuffix('/v1')}/control/{path}", headers=self.auth, json=body
        )
        response.raise_for_status()
        return response.json()


@pytest.fixture
def sandbox(sandbox_url: str, sandbox_key: str) -> Sandbox:
    return Sandbox(sandbox_url, sandbox_key)


@pytest.fixture
def live_requests() -> LiveRequests:
    """Requests being served by this process (see LiveRequests)."""
    return LIVE_REQUESTS


# --- processes the tests start ----------------------------------------------------------------


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
    # Launches that met a fault are sent again after a second or two, not five to forty.
    env.setdefault("PROVIDER_TASK_RETRY_BACKOFF", "1")
    env.update(overrides)
    return env


def start_worker(
    log: Path, hostname: str, *, queues: str = ",".join(APP_QUEUES), **env_overrides: str
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
    """Stop a process we started in its own session, with everything in its group (a worker's
    pool processes too): SIGTERM, then SIGKILL after ``timeout`` or when the leader is gone."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def start_beat(folder: Path, **env_overrides: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "WARNING",
         "-s", str(folder / "beat-schedule"), "--pidfile", str(folder / "beat.pid")],
        cwd=BASE_DIR, env=subprocess_env(**env_overrides), start_new_session=True,
    )  # fmt: skip


# --- the broker -------------------------------------------------------------------------------


def broker_channel() -> Any:
    from config.celery import app

    conn = app.connection_for_write()
    return conn, conn.default_channel


def queue_lengths() -> dict[str, int]:
    """Messages waiting in each queue the tests use (all priority lists included)."""
    conn, channel = broker_channel()
    with conn:
        return {name: channel._size(name) for name in TEST_QUEUES}


def purge_broker() -> None:
    """Drop every message waiting in the queues the tests use, and forget deliveries left
    unacknowledged by a killed worker (else a later worker with a short visibility timeout
    would deliver them again, into another test). Only call it while no worker consumes."""
    conn, channel = broker_channel()
    with conn:
        for name in TEST_QUEUES:
            channel.queue_purge(name)
        channel.client.delete(
            channel.unacked_key, channel.unacked_index_key, channel.unacked_mutex_key
        )


# --- the shared test worker -------------------------------------------------------------------


class SharedWorker:
    """One real ``celery worker`` process for the session, that consumes the app's queues only
    while a test that asked for it runs.

    Started with a private queue of its own and nothing else. A test using ``celery_worker``
    empties the broker, then makes it consume the app's queues; at the end of the test it stops
    consuming them, proves it (a marker task sent to its private queue comes back done: every
    read from the broker since then asked only for that queue), revokes the tasks it holds for
    later (retries), waits until it runs none (or stops it when it cannot get there), and
    empties the broker again. So it never takes a task enqueued by a test that did not ask for
    it, and no task of one test runs in another. One process instead of one per test or module:
    starting a worker takes seconds, and about forty tests use one.
    """

    IDLE_TIMEOUT = 20.0

    def __init__(self, folder: Path, blocker: Any) -> None:
        self.folder = folder
        self.blocker = blocker
        self.hostname = f"test-worker-{os.getpid()}@localhost"
        self.private_queue = f"test-worker-{os.getpid()}-private"
        self.log = folder / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # Control commands, addressed to this worker alone, each answered or failing the test.
    def _reply(self, command: str, **arguments: Any) -> Any:
        from config.celery import app

        replies = app.control.broadcast(
            command, arguments=arguments, destination=[self.hostname], reply=True, timeout=5
        )
        for reply in replies:
            if self.hostname in reply:
                return reply[self.hostname]
        raise AssertionError(f"worker did not answer {command}:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def consumed_queues(self) -> set[str]:
        return {q["name"] for q in self._reply("active_queues")}

    def wait_for_queues(self, expected: set[str]) -> None:
        """add_consumer and cancel_consumer answer before the consumer has applied them (Celery
        schedules the change on the consumer's event loop), so the outcome is awaited."""
        assert wait_until(lambda: self.consumed_queues() == expected, timeout=15), (
            f"worker consumes {self.consumed_queues()}, expected {expected}:\n{self.log_tail()}"
        )

    def busy(self) -> bool:
        """Running a task, or holding one it is about to run."""
        return any(self._reply(command) for command in ("active", "reserved"))

    def drop_scheduled(self) -> None:
        """Tasks held for later (a retry's countdown) are never run: revoked, they are
        acknowledged and skipped when their time comes."""
        ids = [entry["request"]["id"] for entry in self._reply("scheduled")]
        if ids:
            self._reply("revoke", task_id=ids)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure_running(self) -> None:
        if self.alive():
            return
        self.stop()
        with self.blocker.unblock():
            self.process = start_worker(self.log, self.hostname, queues=self.private_queue)
        self.starts += 1
        wait_for_worker(self.process, self.hostname, self.log)

    def consume(self) -> None:
        self.ensure_running()
        purge_broker()
        for queue in APP_QUEUES:
            self._reply("add_consumer", queue=queue)
        self.wait_for_queues({self.private_queue, *APP_QUEUES})

    def release(self) -> None:
        """Stop consuming the app's queues and drop all work; see the class docstring."""
        try:
            if self.alive():
                for queue in APP_QUEUES:
                    self._reply("cancel_consumer", queue=queue)
                self.wait_for_queues({self.private_queue})
                self.marker_round_trip()
                self.drop_scheduled()
                if not wait_until(lambda: not self.busy(), timeout=self.IDLE_TIMEOUT):
                    self.stop()  # a task still running (held by a fault, say): start afresh
        except Exception:
            self.stop()
            raise
        finally:
            purge_broker()

    def marker_round_trip(self) -> None:
        from config.celery import app

        def done() -> int:
            return self._reply("stats")["total"].get("celery.accumulate", 0)

        before = done()
        app.send_task("celery.accumulate", args=(1,), queue=self.private_queue)
        assert wait_until(lambda: done() > before, timeout=30), self.log_tail()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


@pytest.fixture(scope="session")
def shared_worker(
    django_db_setup: None, django_db_blocker: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedWorker]:
    """The session's worker process (see SharedWorker); tests use ``celery_worker``."""
    worker = SharedWorker(tmp_path_factory.mktemp("worker"), django_db_blocker)
    try:
        yield worker
    finally:
        worker.stop()
        purge_broker()


@pytest.fixture
def celery_worker(shared_worker: SharedWorker) -> Iterator[str]:
    """A real `celery worker` process consuming the real broker, on the test database, for
    this test only (see SharedWorker). Returns its hostname.

    Tests that use it need committed data: mark them ``django_db(transaction=True)``.
    """
    shared_worker.consume()
    try:
        yield shared_worker.hostname
    finally:
        shared_worker.release()


@pytest.fixture
def celery_beat(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real `celery beat` (schedules every POLL_INTERVAL = 1 s) for tests of polling."""
    process = start_beat(tmp_path)
    try:
        yield process
    finally:
        stop_process(process)
        purge_broker()  # what it scheduled and nobody took


@dataclass
class Spawned:
    """A worker or beat a test started for itself (see ``spawn``)."""

    process: subprocess.Popen[bytes]
    log: Path | None = None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log else ""

    def kill(self) -> None:
        """SIGKILL for the process and its children at once (a worker dying mid-task)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Spawned]]:
    """Start workers and beats of a test's own: ``spawn("worker", name, queues=…, **env)``
    (returns once the worker answers) or ``spawn("beat", **env)``. When the test ends, however it
    ends, each is stopped with its whole process group and the broker is emptied."""
    started: list[Spawned] = []

    def start(
        kind: str, name: str = "", *, queues: str = ",".join(APP_QUEUES), **env: str
    ) -> Spawned:
        if kind == "beat":
            spawned = Spawned(start_beat(tmp_path, **env))
            started.append(spawned)
            return spawned
        log = tmp_path / f"{name}.log"
        spawned = Spawned(start_worker(log, f"{name}@localhost", queues=queues, **env), log)
        started.append(spawned)
        wait_for_worker(spawned.process, f"{name}@localhost", log)
        return spawned

    try:
        yield start
    finally:
        for spawned in reversed(started):
            stop_process(spawned.process)
        purge_broker()

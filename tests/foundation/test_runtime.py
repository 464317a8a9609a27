"""`make run`'s supervisor for real: embedded PostgreSQL and Redis, gunicorn, a worker and beat,
then Ctrl-C. Runs `python -m runtime run` exactly as the Makefile does."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from runtime.embedded import EmbeddedServices
from tests.conftest import BASE_DIR, wait_until

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Launch:
    """A `run` supervisor in the background with its output collected line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runtime", "run"],
            cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 90) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} not seen; output:\n{self.output[-4000:]}")

    def tree(self) -> set[int]:
        parent = psutil.Process(self.process.pid)
        return {p.pid for p in parent.children(recursive=True)}

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(60)


def base_env(var_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        TUNEBOARD_VAR_DIR=str(var_dir), PORT=str(port), WEB_CONCURRENCY="1", CELERY_CONCURRENCY="1"
    )
    env.pop("TUNEBOARD_ADMIN_USER", None)
    env.pop("TUNEBOARD_ADMIN_PASSWORD", None)
    return env


def login(base_url: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=60) as client:
        page = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return client.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        )


def postgres_pid(var_dir: Path) -> int:
    return int((var_dir / "postgres" / "postmaster.pid").read_text().split()[0])


@pytest.fixture
def var_root() -> Iterator[Path]:
    """A folder for embedded PostgreSQL outside pytest's base temp: pytest resets that folder's
    parent to mode 0700 whenever another pytest session starts, and PostgreSQL runs as its own
    system user when the tests run as root, so it would lose access to its data mid-test."""
    root = Path(tempfile.mkdtemp(prefix="tuneboard-runtime-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_run_serves_stops_cleanly_and_reuses_var(var_root: Path) -> None:
    var_dir, port = var_root / "var", free_port()
    env = base_env(var_dir, port)
    first = Launch(env)
    try:
        url = first.wait_for(r"Tuneboard is running at (http://localhost:\d+/)").group(1)
        assert url == f"http://localhost:{port}/"
        password = re.search(
            r"password: (\S+)", (var_dir / "admin-password.txt").read_text()
        ).group(1)
        assert f"Created admin account 'admin' with password: {password}" in first.output
        assert (var_dir / "admin-password.txt").stat().st_mode & 0o777 == 0o600

        assert httpx.get(url + "accounts/login/", timeout=60).status_code == 200
        assert login(url, "admin", password).status_code == 302
        assert login(url, "admin", "wrong").status_code == 200
        health = httpx.get(url + "healthz", timeout=60).json()
        assert health["database"]["ok"] and health["broker"]["ok"]

        # A second `make run` on the same var/ fails fast with a clear message.
        second = subprocess.run(
            [sys.executable, "-m", "runtime", "run"],
            cwd=BASE_DIR, env=base_env(var_dir, free_port()), capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert second.returncode == 1
        assert "Tuneboard is already running from" in second.stderr
        assert "Traceback" not in second.stderr + second.stdout

        started = first.tree() | {postgres_pid(var_dir)}
        names = {psutil.Process(pid).name() for pid in started}
        assert {"postgres", "redis-server"} <= names
        assert (
            len(started) >= 6
        )  # gunicorn master+worker, celery worker+child, beat, redis, postgres
        # Provider-bound work has a worker of its own (a hanging provider holds up nothing else).
        commands = [" ".join(psutil.Process(pid).cmdline()) for pid in started]
        assert any("-Q provider " in c for c in commands), commands
        assert any("-Q default,polling,validation " in c for c in commands), commands
    finally:
        code = first.interrupt()
    assert code == 0, first.output[-3000:]
    assert "Tuneboard stopped." in first.output

    def survivors() -> list[int]:
        alive = []
        for pid in started:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        return alive

    # Every process the supervisor started goes away (reaped by now or very soon).
    assert wait_until(lambda: not survivors(), timeout=10), [
        psutil.Process(pid).cmdline() for pid in survivors()
    ]

    # Restart on the same var/: data reused, no new admin, the same password still works.
    again = Launch(env)
    try:
        again.wait_for(r"Tuneboard is running at")
        assert "Created admin account" not in again.output
        assert login(f"http://localhost:{port}/", "admin", password).status_code == 302
    finally:
        assert again.interrupt() == 0


def test_run_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "runtime", "run"],
            cwd=BASE_DIR, env=base_env(tmp_path / "var", port), capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    # Nothing was started: no database directory was created.
    assert not (tmp_path / "var" / "postgres").exists()


def test_configured_servers_start_nothing(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgres://u@db.example/x", "CELERY_BROKER_URL": "redis://r.example/0"}
    services = EmbeddedServices(tmp_path, env)
    services.start()
    assert services.postgres is None and services.redis is None
    assert env == {
        "DATABASE_URL": "postgres://u@db.example/x",
        "CELERY_BROKER_URL": "redis://r.example/0",
    }
    assert list(tmp_path.iterdir()) == []
    services.stop()


def test_bad_configuration_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    env = base_env(tmp_path / "var", free_port())
    env["DEBUG"] = "maybe"
    result = subprocess.run(
        [sys.executable, "-m", "runtime", "run"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Configuration error: DEBUG='maybe' is not a boolean" in result.stderr

"""`make run` keeps running when one of its children dies: the real supervisor
(`python -m runtime run`), each child killed with SIGKILL in turn and seen coming back; pages
answer 503 while PostgreSQL is away and work again by themselves when it is back. And the
supervisor's restart rules through its API, with children that crash on purpose."""

from __future__ import annotations

import io
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from runtime.children import GaveUp, Supervisor
from tests.conftest import wait_until
from tests.foundation.test_runtime import Launch, base_env, free_port, postgres_pid

CHILDREN = ("web", "worker", "beat", "redis", "postgres")


class Running(Launch):
    """A `runtime run` of this module, with what its output says about its children."""

    def __init__(self, env: dict[str, str], var_dir: Path) -> None:
        super().__init__(env)
        self.var_dir = var_dir
        self.url = ""

    def pid_of(self, name: str) -> int:
        """The pid the supervisor last reported for ``name``."""
        found = re.findall(rf"(?:started|restarted) {name} \(pid (\d+)\)", self.output)
        assert found, self.tail()
        return int(found[-1])

    def tail(self) -> str:
        return self.output[-3000:]

    def restarts_of(self, name: str) -> int:
        return len(re.findall(rf"restarted {name} \(pid \d+\)", self.output))

    def health(self) -> dict | None:
        try:
            response = httpx.get(self.url + "healthz", timeout=5)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def heartbeat(self) -> str | None:
        health = self.health()
        return health["beat"]["last_seen"] if health else None


@pytest.fixture(scope="module")
def tuneboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One `runtime run` for the module (starting one takes seconds): a heartbeat every
    second, so that each part of the chain (beat → Redis → worker → PostgreSQL → web) shows
    it works within a second or two of coming back."""
    var_dir = tmp_path_factory.mktemp("restarts") / "var"
    env = base_env(var_dir, free_port())
    env.update(HEARTBEAT_INTERVAL="1", HEARTBEAT_GRACE="5")
    running = Running(env, var_dir)
    try:
        running.url = running.wait_for(r"Tuneboard is running at (http://localhost:\d+/)").group(1)
        assert wait_until(lambda: running.heartbeat() is not None, timeout=60), running.tail()
        yield running
    finally:
        if running.process.poll() is None:
            assert running.interrupt() == 0, running.output[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", CHILDREN)
def test_a_killed_child_is_restarted(tuneboard: Running, name: str) -> None:
    before = tuneboard.pid_of(name)
    restarts = tuneboard.restarts_of(name)
    os.kill(before, signal.SIGKILL)

    tuneboard.wait_for(rf"tuneboard \| {name} was killed by SIGKILL; restarting it in \d+ s")
    assert wait_until(lambda: tuneboard.restarts_of(name) > restarts, timeout=60), tuneboard.tail()
    after = tuneboard.pid_of(name)
    assert after != before and psutil.pid_exists(after)
    # Everything works again: a new heartbeat went from beat through Redis to the worker,
    # which stored it in PostgreSQL, and the web server reports it.
    seen = tuneboard.heartbeat()
    assert wait_until(
        lambda: (now := tuneboard.heartbeat()) is not None and (seen is None or now > seen),
        timeout=60,
    ), tuneboard.tail()
    assert tuneboard.process.poll() is None
    # Every line of a child carries its label.
    assert re.search(rf"^{name} +\| ", tuneboard.output, re.M)


@pytest.mark.slow
def test_pages_answer_503_while_the_database_is_away(tuneboard: Running) -> None:
    password = re.search(
        r"password: (\S+)", (tuneboard.var_dir / "admin-password.txt").read_text()
    ).group(1)
    with httpx.Client(base_url=tuneboard.url, timeout=10) as client:
        page = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        client.post(
            "/accounts/login/",
            data={"username": "admin", "password": password, "csrfmiddlewaretoken": token},
        )
        assert client.get("/").status_code == 200
        web = tuneboard.pid_of("web")
        # The supervisor, stopped, cannot start PostgreSQL again until it is continued: the
        # database stays away for as long as the test needs.
        os.kill(tuneboard.process.pid, signal.SIGSTOP)
        try:
            os.kill(postgres_pid(tuneboard.var_dir), signal.SIGKILL)
            assert wait_until(lambda: client.get("/").status_code == 503, timeout=30)
            page = client.get("/")
            assert page.status_code == 503 and page.headers["Retry-After"]
            assert "cannot reach its database" in page.text and "Traceback" not in page.text
            assert len(page.content) < 2000
            # Scripts polling JSON get JSON; /healthz still reports (the database as down).
            live = client.get("/system/", headers={"Accept": "application/json"})
            assert live.status_code == 503
            assert live.json()["error"]["type"] == "database_unavailable"
            health = client.get("/healthz")
            assert health.status_code == 503 and health.json()["database"]["ok"] is False
        finally:
            os.kill(tuneboard.process.pid, signal.SIGCONT)
        # Back by itself: the same web server (not restarted) opens new connections.
        assert wait_until(lambda: client.get("/").status_code == 200, timeout=60), tuneboard.tail()
        assert tuneboard.pid_of("web") == web and psutil.pid_exists(web)
        assert "Tuneboard" in client.get("/").text


# --- the restart rules, through the supervisor's API --------------------------------------------


def crashing(code: int = 3) -> list[str]:
    return [sys.executable, "-c", f"print('about to fail'); raise SystemExit({code})"]


def sleeping() -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(120)"]


def test_repeated_crashes_make_it_give_up_and_stop_everything() -> None:
    out = io.StringIO()
    supervisor = Supervisor(
        dict(os.environ), out=out, crash_limit=3, first_backoff=0.01, max_backoff=0.01
    )
    try:
        steady = supervisor.spawn("steady", sleeping())
        supervisor.spawn("flaky", crashing())
        with pytest.raises(GaveUp, match="flaky crashed 3 times within 60 s; giving up"):
            supervisor.watch()
    finally:
        supervisor.stop_children()
    assert steady.process is not None and steady.process.poll() is not None
    text = out.getvalue()
    assert text.count("flaky     | about to fail") == 3
    assert "flaky exited with code 3; restarting it in 0.01 s (crash 1 of 3" in text
    assert "flaky exited with code 3; restarting it in 0.01 s (crash 2 of 3" in text
    assert text.count("restarted flaky") == 2


def test_crashes_older_than_the_window_are_forgiven_and_pauses_grow() -> None:
    out = io.StringIO()
    supervisor = Supervisor(dict(os.environ), out=out, crash_limit=3, crash_window=60)
    child = supervisor.spawn("flaky", crashing())
    try:
        clock = 1000.0

        def crash_and_restart() -> str:
            """Wait for the child to exit, let the supervisor see it and restart it."""
            nonlocal clock
            assert child.process is not None
            child.process.wait(30)
            supervisor.check(now=clock)
            pause = child.restart_at - clock if child.restart_at else None
            supervisor.check(now=clock + 100)  # past any pause: restarted
            return f"{pause:g}"

        assert crash_and_restart() == "1"
        clock += 10
        assert crash_and_restart() == "2"  # second crash within a minute: twice the pause
        clock += 61  # both earlier crashes are now more than a minute old
        assert crash_and_restart() == "1"
        clock += 1
        assert crash_and_restart() == "2"
        clock += 1
        assert child.process is not None
        child.process.wait(30)
        with pytest.raises(GaveUp):
            supervisor.check(now=clock)
    finally:
        supervisor.stop_children()

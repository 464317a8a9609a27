"""The processes `make run` keeps alive: each child is restarted when it dies, with a growing
pause, until it has crashed too often within a minute; every line a child prints is shown
with its label.

Children run in their own sessions so that Ctrl-C reaches only the supervisor, which then stops
them in order. They are only ever started from the main thread: the "die with the parent"
signal (``embedded.die_with_parent``) is tied to the thread that forked the child.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

from runtime.embedded import EmbeddedServer, die_with_parent

STOP_TIMEOUT = 20.0
# A child that crashes this many times within the window makes the supervisor give up.
CRASH_LIMIT = 5
CRASH_WINDOW = 60.0
# Pause before the first restart, doubled for each further crash within the window.
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 16.0
TICK = 0.2
OWN_LABEL = "tuneboard"


class GaveUp(Exception):
    """A child crashed CRASH_LIMIT times within CRASH_WINDOW seconds."""


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


@dataclass
class Child:
    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    # Servers (PostgreSQL, Redis) stop last, with their own signal, once their clients are gone.
    service: bool = False
    stop: Callable[[], None] | None = None
    process: subprocess.Popen[bytes] | None = None
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None
    starts: int = 0


@dataclass
class Supervisor:
    env: dict[str, str]
    cwd: Path | None = None
    out: TextIO = field(default_factory=lambda: sys.stdout)
    crash_limit: int = CRASH_LIMIT
    crash_window: float = CRASH_WINDOW
    first_backoff: float = FIRST_BACKOFF
    max_backoff: float = MAX_BACKOFF
    children: list[Child] = field(default_factory=list)
    _write_lock: threading.RLock = field(default_factory=threading.RLock)
    _readers: list[threading.Thread] = field(default_factory=list)

    @property
    def _width(self) -> int:
        return max([len(OWN_LABEL), *(len(c.name) for c in self.children)])

    def _write(self, label: str, text: str) -> None:
        with self._write_lock:
            self.out.write(f"{label:<{self._width}} | {text.rstrip()}\n")
            self.out.flush()

    def say(self, text: str) -> None:
        """A line of the supervisor's own, labelled like the children's."""
        self._write(OWN_LABEL, text)

    def _relay(self, name: str, stream: IO[bytes]) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                self._write(name, raw.decode("utf-8", errors="replace"))

    def _attach(self, child: Child, process: subprocess.Popen[bytes]) -> None:
        child.process = process
        child.starts += 1
        if process.stdout is not None:
            reader = threading.Thread(
                target=self._relay, args=(child.name, process.stdout), daemon=True
            )
            reader.start()
            self._readers.append(reader)

    def _popen(self, argv: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    # --- starting -----------------------------------------------------------------------------

    def spawn(self, name: str, argv: list[str]) -> Child:
        """Start a command now and keep it running."""
        child = Child(name, start=lambda: self._popen(argv))
        self.children.append(child)
        self._attach(child, child.start())
        self.say(f"started {name} (pid {child.process.pid if child.process else '?'})")
        return child

    def adopt(self, server: EmbeddedServer) -> Child:
        """Keep an embedded server that is already running (its output piped) alive."""
        assert server.process is not None

        def start() -> subprocess.Popen[bytes]:
            return server.launch(output=subprocess.PIPE)

        child = Child(server.name, start=start, service=True, stop=server.stop)
        self.children.append(child)
        self._attach(child, server.process)
        self.say(f"started {server.name} (pid {server.process.pid})")
        return child

    # --- watching -----------------------------------------------------------------------------

    def check(self, now: float | None = None) -> None:
        """One round: notice the children that died, restart those whose pause is over.
        Raises GaveUp when one has crashed too often."""
        now = time.monotonic() if now is None else now
        for child in self.children:
            process = child.process
            if child.restart_at is None and process is not None and process.poll() is not None:
                self._crashed(child, process, now)
            if child.restart_at is not None and now >= child.restart_at:
                self._restart(child, now)

    def _crashed(self, child: Child, process: subprocess.Popen[bytes], now: float) -> None:
        self._kill_group(process)  # what it leaves behind (gunicorn or celery pool processes)
        child.crashes.append(now)
        while child.crashes and now - child.crashes[0] > self.crash_window:
            child.crashes.popleft()
        count = len(child.crashes)
        how = describe_exit(process.returncode)
        if count >= self.crash_limit:
            self.say(f"{child.name} {how}")
            raise GaveUp(
                f"{child.name} crashed {count} times within {self.crash_window:.0f} s; "
                "giving up and stopping Tuneboard."
            )
        pause = min(self.max_backoff, self.first_backoff * 2 ** (count - 1))
        child.restart_at = now + pause
        self.say(
            f"{child.name} {how}; restarting it in {pause:g} s "
            f"(crash {count} of {self.crash_limit} allowed within {self.crash_window:.0f} s)"
        )

    def _restart(self, child: Child, now: float) -> None:
        child.restart_at = None
        try:
            process = child.start()
        except Exception as exc:  # a start step failed: count it like a crash
            self.say(f"could not restart {child.name}: {exc}")
            child.process = None
            child.crashes.append(now)
            if len(child.crashes) >= self.crash_limit:
                raise GaveUp(
                    f"{child.name} could not be restarted {len(child.crashes)} times; "
                    "giving up and stopping Tuneboard."
                ) from exc
            child.restart_at = now + min(
                self.max_backoff, self.first_backoff * 2 ** (len(child.crashes) - 1)
            )
            return
        self._attach(child, process)
        self.say(f"restarted {child.name} (pid {process.pid})")

    def watch(self, keep_going: Callable[[], bool] = lambda: True) -> None:
        """Check every TICK seconds while ``keep_going()``; raises GaveUp."""
        while keep_going():
            self.check()
            time.sleep(TICK)

    # --- stopping -----------------------------------------------------------------------------

    @staticmethod
    def _kill_group(process: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop_children(self) -> None:
        """The application processes first (SIGTERM to each group, then SIGKILL for what is
        left), then the servers, newest first, each with its own stop."""
        apps = [c for c in reversed(self.children) if not c.service and c.process is not None]
        for child in apps:
            assert child.process is not None
            if child.process.poll() is None:
                try:
                    os.killpg(child.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in apps:
            assert child.process is not None
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in time; killing it")
            self._kill_group(child.process)
            child.process.wait()
        for child in reversed(self.children):
            if child.service and child.stop is not None:
                child.stop()
        for reader in self._readers:
            reader.join(timeout=2)
        self.children.clear()
        self._readers.clear()

"""The parallel validator's worker processes are forks: what they must not inherit or do."""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from datasets.validation.processes import WorkerDied, WorkerPool

ROOT = Path(__file__).resolve().parents[2]


def answer_each(tasks: BinaryIO, replies: BinaryIO) -> None:
    """A worker that answers each task with what the task names about the worker."""
    while True:
        try:
            task = pickle.load(tasks)  # noqa: S301 - from the test
        except EOFError:
            return
        if task == "fds":
            value: object = _open_fds()
        elif task == "pid":
            value = os.getpid()
        else:
            value = task
        pickle.dump(("ok", value), replies)
        replies.flush()


def _open_fds() -> dict[int, str]:
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:  # the listing's own descriptor, closed by now
            pass
    return out


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    workers = WorkerPool(1, answer_each)
    try:
        yield workers
    finally:
        workers.close(kill=True)


def test_a_worker_holds_its_two_pipes_and_stderr_and_nothing_of_the_parent(
    tmp_path: Path,
) -> None:
    # Opened before the fork: a file and a listening socket (a Celery child holds the
    # broker's and the database's sockets).
    with (tmp_path / "open.txt").open("w") as held, socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        workers = WorkerPool(1, answer_each)
        try:
            fds = workers.submit("fds").result(30)  # type: ignore[union-attr]
        finally:
            workers.close()
        assert held.fileno() >= 0 and sock.fileno() >= 0  # still open here
    assert fds[0] == os.devnull and fds[1] == os.devnull
    assert 2 in fds
    rest = {fd: target for fd, target in fds.items() if fd > 2}
    assert len(rest) == 2 and all(t.startswith("pipe:") for t in rest.values()), fds
    assert str(tmp_path / "open.txt") not in fds.values()
    assert not any(t.startswith("socket:") for t in fds.values())


def test_a_worker_answers_in_order_and_is_a_child_of_this_process(pool: WorkerPool) -> None:
    futures = [pool.submit(n) for n in range(2)]
    assert [f.result(30) for f in futures if f is not None] == [0, 1]
    pid = pool.submit("pid").result(30)  # type: ignore[union-attr]
    assert pid == pool.workers[0].pid != os.getpid()


def test_a_worker_does_not_run_this_process_signal_handlers(pool: WorkerPool) -> None:
    # A Python SIGTERM handler installed before the fork (Celery installs its own): in the
    # worker SIGTERM does what it does by default, so the worker ends and says so.
    handled: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: handled.append(signum))
    try:
        workers = WorkerPool(1, answer_each)
    finally:
        signal.signal(signal.SIGTERM, previous)
    try:
        (worker,) = workers.workers
        os.kill(worker.pid, signal.SIGTERM)
        future = worker.submit("after the signal")
        with pytest.raises(WorkerDied, match=r"exit status -15"):
            future.result(30)
    finally:
        workers.close(kill=True)
    assert handled == []


def test_a_failing_worker_never_runs_the_parents_code_exit_handlers_or_buffered_output(
    tmp_path: Path,
) -> None:
    script = textwrap.dedent(
        """
        import atexit, os, sys
        from datasets.validation.processes import WorkerDied, WorkerPool

        exits = sys.argv[1]
        atexit.register(lambda: open(exits, "a").write(f"{os.getpid()}\\n"))
        sys.stdout.write("written before the fork, not flushed\\n")

        def serve(tasks, replies):
            raise SystemExit("a worker must not leave through the parent's code")

        pool = WorkerPool(1, serve)
        future = pool.submit("task")
        try:
            future.result(30)
        except WorkerDied as exc:
            sys.stdout.write(f"worker: {exc}\\n")
        pool.close()
        sys.stdout.write(f"parent {os.getpid()} done\\n")
        """
    )
    exits = tmp_path / "exits.txt"
    done = subprocess.run(
        [sys.executable, "-c", script, str(exits)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "written before the fork, not flushed"
    assert lines[1] == "worker: the worker process exited (exit status 1)"
    parent = lines[2].split()[1]
    assert len(lines) == 3
    assert exits.read_text().split() == [parent]  # the parent's handler, once

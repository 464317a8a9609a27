"""Worker processes for the parallel validator: plain child interpreters fed over pipes.

Each worker is ``python -c …`` running ``main()`` of a module of this package: it reads pickled
tasks from its stdin and writes pickled replies to its stdout, one reply per task, in order.
In the parent, a writer thread feeds each worker (so handing over a block never waits for the
worker to finish the one before) and a reader thread turns its replies into futures.

Why not ``multiprocessing`` or ``ProcessPoolExecutor``:

* when the parent is killed (Celery's hard time limit sends SIGKILL), a pool's workers wait
  forever on a queue whose write end they hold themselves, each keeping a tokenizer's tables
  (~70 MB) alive. Here a worker holds only its own ends of two pipes, so it reads EOF and
  exits as soon as the parent is gone;
* the 'spawn' and 'forkserver' methods re-import the parent's ``__main__`` (Celery's, the test
  runner's) in every worker; 'fork' would copy a Celery child's sockets and threads. A worker
  here starts clean and imports nothing but the pure validation package.

Workers are trusted code of ours: their replies are unpickled as they come.
"""

from __future__ import annotations

import pickle
import queue
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

# The folder holding the ``datasets`` package, for the worker's import path.
_ROOT = Path(__file__).resolve().parents[2]
_BOOT = "import sys, importlib; sys.path.insert(0, sys.argv[1]); importlib.import_module(sys.argv[2]).main()"
_CLOSE = object()
_EXIT_SECONDS = 10.0


class WorkerDied(Exception):
    """A worker process exited, could not start, or failed on a task."""


class Worker:
    """One worker process; ``submit`` returns a future for the reply to a task."""

    def __init__(self, module: str, settings: Callable[[], object]) -> None:
        if not sys.executable:
            raise WorkerDied("no Python executable to start a worker with")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(_ROOT), module],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
            )
        except OSError as exc:
            raise WorkerDied(f"cannot start a worker process ({exc})") from exc
        self._lock = threading.Lock()
        self._waiting: deque[Future[Any]] = deque()
        self._failure: str | None = None
        # Set once the worker has said it can take tasks (its tokenizer is built).
        self.ready = threading.Event()
        self._outbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        # Made by the writer thread: the process boots meanwhile instead of after it.
        self._settings = settings
        self._writer = threading.Thread(target=self._write, name="validation-feed", daemon=True)
        self._reader = threading.Thread(target=self._read, name="validation-replies", daemon=True)
        self._writer.start()
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def failed(self) -> bool:
        return self._failure is not None

    @property
    def outstanding(self) -> int:
        return len(self._waiting)

    def submit(self, task: object) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._failure is not None:
                future.set_exception(WorkerDied(self._failure))
                return future
            self._waiting.append(future)
        self._outbox.put(task)
        return future

    def close(self, *, kill: bool = False) -> None:
        """Stop the worker: at once with ``kill``, else once it has answered every task."""
        if kill:
            self.process.kill()
        self._outbox.put(_CLOSE)
        try:
            self.process.wait(_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._writer.join()
        self._reader.join()
        assert self.process.stdout is not None
        self.process.stdout.close()

    # --- threads ---------------------------------------------------------------------

    def _write(self) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            pickle.dump(self._settings(), stdin, protocol=pickle.HIGHEST_PROTOCOL)
            stdin.flush()
            while (item := self._outbox.get()) is not _CLOSE:
                pickle.dump(item, stdin, protocol=pickle.HIGHEST_PROTOCOL)
                stdin.flush()
        except (OSError, ValueError):
            pass  # the worker is gone: the reader reports it
        finally:
            try:
                stdin.close()  # EOF: the worker exits once it has answered what it has
            except OSError:
                pass

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        reason = "the worker process exited"
        try:
            while True:
                status, value = pickle.load(stdout)  # noqa: S301 - our own worker
                if status == "ready":
                    self.ready.set()
                    continue
                with self._lock:
                    future = self._waiting.popleft()
                if status == "ok":
                    future.set_result(value)
                else:
                    future.set_exception(WorkerDied(value))
        except EOFError:
            pass
        except Exception as exc:  # a truncated reply: the worker died while writing
            reason = f"unreadable reply from the worker process ({type(exc).__name__}: {exc})"
        code = self.process.poll()
        if code is not None:
            reason += f" (exit status {code})"
        with self._lock:
            self._failure = reason
            waiting, self._waiting = self._waiting, deque()
        for future in waiting:
            future.set_exception(WorkerDied(reason))


class WorkerPool:
    """``size`` workers, each holding at most ``depth`` tasks (one running, the rest queued in
    its pipe), so none waits between tasks while the parent is busy."""

    def __init__(
        self, size: int, module: str, settings: Callable[[], object], depth: int = 2
    ) -> None:
        self.depth = depth
        self.workers: list[Worker] = []
        try:
            for _ in range(size):
                self.workers.append(Worker(module, settings))
        except WorkerDied:
            self.close(kill=True)
            raise

    def submit(self, task: object) -> Future[Any] | None:
        """Hand ``task`` to the least busy live worker, or None when all are full, still
        starting or gone."""
        live = [
            w
            for w in self.workers
            if not w.failed and w.ready.is_set() and w.outstanding < self.depth
        ]
        if not live:
            return None
        return min(live, key=lambda w: w.outstanding).submit(task)

    def close(self, *, kill: bool = False) -> None:
        workers, self.workers = self.workers, []
        for worker in workers:
            worker.close(kill=kill)

"""Worker processes for the parallel validator: forks of this process, fed over pipes.

A worker is a fork of the validating process made when a validation starts. It starts at once
and with nothing to load: the tokenizer's tables (~70 MB, built here before the fork) are
shared with this process, copy-on-write, and so is everything else it needs. It reads pickled
tasks from one pipe and writes pickled replies to another, one reply per task, in order. In
the parent, a writer thread feeds each worker (so handing over a block never waits for the
worker to finish the one before) and a reader thread turns its replies into futures.

What makes a fork of a Celery child or a test runner safe to use here:

* right after the fork the child closes every file descriptor but its two pipes and stderr
  (its stdin and stdout become /dev/null), so it holds none of the parent's sockets and no
  write end of its own task pipe: when the parent dies (Celery's hard time limit sends
  SIGKILL) the child reads EOF and exits instead of lingering with the tables;
* the child runs only the validation code (pure Python, json and tiktoken, none of which
  takes a lock another thread of the parent might have held at the fork), resets the
  parent's signal handlers, freezes the inherited objects out of the garbage collector (so
  collecting never writes to, and copies, the parent's pages), and always ends in
  ``os._exit``: no atexit handler, finaliser or buffered output of the parent runs twice.

Why not ``multiprocessing``: its 'fork' pool keeps the queue's write ends in every worker (a
killed parent leaves them waiting forever), and 'spawn'/'forkserver' start a new interpreter
and load the tokenizer again, about a quarter of a second of CPU per worker and per file.
"""

from __future__ import annotations

import fcntl
import gc
import os
import pickle
import queue
import signal
import threading
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, BinaryIO, NoReturn

# serve(tasks, replies) runs in the child; it returns when ``tasks`` reaches EOF.
Serve = Callable[[BinaryIO, BinaryIO], None]

_CLOSE = object()
_EXIT_SECONDS = 10.0
_PIPE_BYTES = 1 << 20
# Signals a Celery child or a test runner may handle in Python: in a worker they do what they
# do by default. SIGINT reaches the whole process group; the parent decides when a worker stops.
_RESET_SIGNALS = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD")


class WorkerDied(Exception):
    """A worker process exited, could not start, or failed on a task."""


class Worker:
    """One forked worker process; ``submit`` returns a future for the reply to a task.
    ``start`` starts the parent's feeding threads (after every worker of a pool is forked, so
    no worker is forked while a thread of another holds a lock)."""

    def __init__(self, serve: Serve) -> None:
        if not hasattr(os, "fork"):
            raise WorkerDied("this platform cannot fork worker processes")
        tasks_r, tasks_w = os.pipe()
        replies_r, replies_w = os.pipe()
        _widen(tasks_w)
        # Signals wait until the child has put its own handlers in place: one arriving in
        # between would run the parent's Python handler in the child.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            for fd in (tasks_r, tasks_w, replies_r, replies_w):
                os.close(fd)
            raise WorkerDied(f"cannot start a worker process ({exc})") from exc
        if pid == 0:
            _child(serve, tasks_r, replies_w)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(tasks_r)
        os.close(replies_w)
        self.pid = pid
        self._tasks = os.fdopen(tasks_w, "wb")
        self._replies = os.fdopen(replies_r, "rb")
        self._status: int | None = None
        self._process_lock = threading.Lock()
        self._lock = threading.Lock()
        self._waiting: deque[Future[Any]] = deque()
        self._failure: str | None = None
        self._outbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name="validation-feed", daemon=True)
        self._reader = threading.Thread(target=self._read, name="validation-replies", daemon=True)

    def start(self) -> None:
        self._writer.start()
        self._reader.start()

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
            self._kill()
        if self._reader.ident is None:  # never started: its pipes are ours to close
            self._tasks.close()
            self._kill()
        else:
            self._outbox.put(_CLOSE)
            self._reader.join(_EXIT_SECONDS)  # the child closes its replies only by exiting
            if self._reader.is_alive():
                self._kill()
                self._reader.join()
            self._writer.join()
        self._reap()
        self._replies.close()

    # --- the process -----------------------------------------------------------------

    def _kill(self) -> None:
        # Under the lock that reaps: a reaped worker's pid may be another process's already.
        with self._process_lock:
            if self._status is None:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _reap(self) -> int:
        """The worker's exit status, waiting for it to exit; -1 when someone else reaped it
        (the parent ignoring SIGCHLD)."""
        with self._process_lock:
            if self._status is None:
                try:
                    _, status = os.waitpid(self.pid, 0)
                except ChildProcessError:
                    self._status = -1
                else:
                    self._status = os.waitstatus_to_exitcode(status)
            return self._status

    # --- threads ---------------------------------------------------------------------

    def _write(self) -> None:
        tasks = self._tasks
        try:
            while (item := self._outbox.get()) is not _CLOSE:
                pickle.dump(item, tasks, protocol=pickle.HIGHEST_PROTOCOL)
                tasks.flush()
        except (OSError, ValueError):
            pass  # the worker is gone: the reader reports it
        finally:
            try:
                tasks.close()  # EOF: the worker exits once it has answered what it has
            except OSError:
                pass

    def _read(self) -> None:
        replies = self._replies
        reason = "the worker process exited"
        try:
            while True:
                status, value = pickle.load(replies)  # noqa: S301 - our own worker
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
            self._kill()  # it may still be running: the wait below must not hang
        code = self._reap()
        if code != -1:
            reason += f" (exit status {code})"
        with self._lock:
            self._failure = reason
            waiting, self._waiting = self._waiting, deque()
        for future in waiting:
            future.set_exception(WorkerDied(reason))


def _widen(fd: int) -> None:
    """A pipe holding a whole block's worth of the default 64 KB would make the writer thread
    and the worker take turns some thirty times a block, each turn taking the GIL from the
    parent's validating thread. 1 MB is the size an unprivileged process may ask for."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (AttributeError, OSError):  # not Linux, or a lower system limit: the default
        pass


def _child(serve: Serve, tasks_fd: int, replies_fd: int) -> NoReturn:
    """The forked worker: never returns into the parent's code."""
    code = 1
    try:
        gc.freeze()
        for name in _RESET_SIGNALS:
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Blocked by the parent around the fork (and perhaps by the forking thread before).
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:
            pass
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        keep = sorted({2, tasks_fd, replies_fd})
        low = 3
        for fd in keep:
            if fd >= low:
                os.closerange(low, fd)
                low = fd + 1
        os.closerange(low, os.sysconf("SC_OPEN_MAX"))
        with os.fdopen(tasks_fd, "rb") as tasks, os.fdopen(replies_fd, "wb") as replies:
            serve(tasks, replies)
        code = 0
    except BaseException:  # whatever happens, the parent's code must not run
        code = 1
        try:
            traceback.print_exc()  # to the parent's stderr: the worker's last word
        except BaseException:  # noqa: S110 - nothing left to tell it with
            pass
    finally:
        os._exit(code)


class WorkerPool:
    """``size`` workers, each holding at most ``depth`` tasks (one running, the rest queued in
    its pipe), so none waits between tasks while the parent is busy."""

    def __init__(self, size: int, serve: Serve, depth: int = 2) -> None:
        self.depth = depth
        self.workers: list[Worker] = []
        try:
            for _ in range(size):
                self.workers.append(Worker(serve))
        except WorkerDied:
            self.close(kill=True)
            raise
        for worker in self.workers:
            worker.start()

    def submit(self, task: object) -> Future[Any] | None:
        """Hand ``task`` to the least busy live worker, or None when all are full or gone."""
        live = [w for w in self.workers if not w.failed and w.outstanding < self.depth]
        if not live:
            return None
        return min(live, key=lambda w: w.outstanding).submit(task)

    def close(self, *, kill: bool = False) -> None:
        workers, self.workers = self.workers, []
        for worker in workers:
            worker.close(kill=kill)

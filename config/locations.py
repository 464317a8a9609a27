"""Where the embedded services live under ``var/``; imported by settings, so no heavy imports."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from urllib.parse import quote

DATABASE_NAME = "tuneboard"
# AF_UNIX socket paths are limited to 108 bytes on Linux (107 usable).
MAX_SOCKET_PATH = 100


def postgres_dir(var_dir: Path) -> Path:
    return var_dir / "postgres"


def redis_dir(var_dir: Path) -> Path:
    return var_dir / "redis"


def redis_socket(var_dir: Path) -> Path:
    candidate = redis_dir(var_dir) / "redis.sock"
    if len(str(candidate)) <= MAX_SOCKET_PATH:
        return candidate
    digest = hashlib.sha256(str(var_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"tuneboard-{digest}" / "redis.sock"


def database_url(socket_dir: Path, name: str = DATABASE_NAME) -> str:
    return f"postgres://postgres@{quote(str(socket_dir), safe='')}/{name}"


def broker_url(socket: Path) -> str:
    return f"redis+socket://{socket}"


def default_database_url(var_dir: Path) -> str:
    # pgserver puts the socket in the data directory when the path is short enough; the
    # launcher always exports the exact URL, this default only serves ad-hoc manage.py use.
    return database_url(postgres_dir(var_dir))


def default_broker_url(var_dir: Path) -> str:
    return broker_url(redis_socket(var_dir))

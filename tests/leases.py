"""Another worker's database session, for tests of leases (core/leases.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from django.db import connection


@dataclass
class ForeignOwner:
    """An owner id held by a database session other than the test's, as a worker on another
    machine holds its own. ``die()`` drops its owner lock at once, as the server does when the
    session's process dies."""

    owner: str
    _conn: psycopg.Connection
    _key: int

    def die(self) -> None:
        self._conn.execute("SELECT pg_advisory_unlock(%s)", [self._key])


@contextmanager
def foreign_owner() -> Iterator[ForeignOwner]:
    params = connection.settings_dict
    conn = psycopg.connect(
        dbname=params["NAME"],
        user=params["USER"] or None,
        password=params["PASSWORD"] or None,
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        autocommit=True,
    )
    key = secrets.randbits(62)
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", [key])
        yield ForeignOwner(f"{key:x}@elsewhere/4242", conn, key)
    finally:
        conn.close()

"""Session-level PostgreSQL advisory locks: held across provider calls without holding a
transaction open, and released by the server when the process holding them dies."""

from __future__ import annotations

import zlib

from django.db import connection


def lock_key(namespace: str, ident: object) -> int:
    return zlib.crc32(f"{namespace}:{ident}".encode()) - 2**31


class AdvisoryLock:
    """``with AdvisoryLock("jobs.sync", job.pk) as held:`` — ``held`` is False when another
    session has it (nothing waits)."""

    def __init__(self, namespace: str, ident: object) -> None:
        self.key = lock_key(namespace, ident)
        self.held = False

    def __enter__(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [self.key])
            self.held = bool(cursor.fetchone()[0])
        return self.held

    def __exit__(self, *exc: object) -> None:
        if self.held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [self.key])
            self.held = False

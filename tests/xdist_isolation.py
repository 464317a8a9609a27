"""Each pytest-xdist worker gets a broker and a media folder of its own.

Loaded with ``-p tests.xdist_isolation`` (pyproject's addopts), so it runs before Django's
settings are read. pytest-django already gives each xdist worker its own test database; the
broker is the other thing tests share: one worker's celery process must never take a task
another worker's test enqueued, and emptying the broker in one must not drop the other's work.
Redis keeps them apart by logical database (xdist's ``gw0`` uses database 1, ``gw1`` 2, ...).
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def broker_url_for_worker(url: str, number: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "redis+socket":
        # urlunsplit would drop the empty host ("redis+socket:/path"): rebuild it by hand.
        query = dict(parse_qsl(parts.query))
        query["virtual_host"] = str(number)
        return f"{parts.scheme}://{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{number}"))


def _isolate() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    match = re.fullmatch(r"gw(\d+)", worker)
    if not match:
        return
    number = int(match.group(1)) + 1
    if number > 15:
        raise RuntimeError("Redis has 16 databases: run at most 15 xdist workers")
    if broker := os.environ.get("CELERY_BROKER_URL"):
        os.environ["CELERY_BROKER_URL"] = broker_url_for_worker(broker, number)
    if media := os.environ.get("MEDIA_ROOT"):
        os.environ["MEDIA_ROOT"] = os.path.join(media, worker)


_isolate()

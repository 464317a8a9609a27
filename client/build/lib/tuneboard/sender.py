"""The background thread that delivers a spool to the server, in order, in batches, with
retries and backoff. It never raises into the training: what it cannot send stays spooled."""

from __future__ import annotations

import logging
import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tuneboard import spool

log = logging.getLogger("tuneboard")
MAX_BATCH = 1000
TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})


class Refused(Exception):
    """The server refuses the token (401/403): retrying cannot help until it is replaced."""


class Transient(Exception):
    pass


class Sender:
    def __init__(
        self,
        directory: Path,
        *,
        url: str,
        token: str,
        interval: float = 1.0,
        backoff_max: float = 30.0,
        timeout: float = 10.0,
    ) -> None:
        self.directory = directory
        self.interval = interval
        self.backoff_max = backoff_max
        self.client = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}", "User-Agent": "tuneboard-client/1"},
            timeout=timeout,
        )
        self.run_id: str | None = None
        self.stop_requested = False
        self.refused = ""
        self.failures = 0
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None

    # --- the thread ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="tuneboard-sender", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self, timeout: float) -> bool:
        """Send what is left, for up to ``timeout`` seconds; True when all of it arrived."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        done = not spool.unsent(self.directory)
        if self._thread is None or not self._thread.is_alive():
            self.client.close()
        return done

    def _loop(self) -> None:
        while True:
            try:
                progressed = self.deliver_once()
            except Refused as exc:
                self.refused = str(exc)
                log.warning("Tuneboard refused the token (%s); reports stay spooled in %s", exc,
                            self.directory)  # fmt: skip
                return
            except Exception as exc:
                self.failures += 1
                delay = min(self.backoff_max, 0.5 * 2 ** min(self.failures, 10))
                delay *= 0.5 + random.random() / 2  # noqa: S311 - jitter, not secrecy
                log.debug("Tuneboard unreachable (%s); retrying in %.1f s", exc, delay)
                self._wake.wait(delay)
                self._wake.clear()
                continue
            self.failures = 0
            if progressed:
                continue
            if self._closing:
                return
            self._wake.wait(self.interval)
            self._wake.clear()

    # --- one delivery -------------------------------------------------------------------

    def deliver_once(self) -> bool:
        """Send the next batch of unsent reports; False when there was none."""
        offset = spool.sent_offset(self.directory)
        pending = spool.pending(self.directory, offset, limit=MAX_BATCH)
        if not pending:
            return False
        if self.run_id is None:
            self._create(self._first_create(pending, offset))
        end, batch = self._group(pending)
        self._send(batch)
        spool.set_sent_offset(self.directory, end)
        return True

    def _first_create(
        self, pending: list[tuple[int, dict[str, Any]]], offset: int
    ) -> dict[str, Any]:
        if pending[0][1].get("op") == "create":
            return pending[0][1]
        head = spool.pending(self.directory, 0, limit=1)
        if not head or head[0][1].get("op") != "create":
            raise Refused("the spool does not start with the run's creation")
        return head[0][1]

    def _create(self, op: dict[str, Any]) -> None:
        answer = self._post("/runs", op["body"])
        if "id" not in answer:
            raise Refused("the server would not create the run")
        self.run_id = str(answer["id"])

    @staticmethod
    def _group(pending: list[tuple[int, dict[str, Any]]]) -> tuple[int, list[dict[str, Any]]]:
        """The longest run of reports of the first one's kind (metrics and events go in one
        request), as (spool offset after it, reports)."""
        kind = pending[0][1].get("op")
        batch: list[dict[str, Any]] = []
        end = pending[0][0]
        for position, op in pending:
            if op.get("op") != kind or (batch and kind not in ("metrics", "event")):
                break
            batch.append(op)
            end = position
        return end, batch

    def _send(self, batch: list[dict[str, Any]]) -> None:
        kind = batch[0].get("op")
        run = f"/runs/{self.run_id}"
        if kind == "create":
            return  # sent by _create
        if kind == "metrics":
            points = [{"step": op["step"], "values": op["values"]} for op in batch]
            self._post(run + "/metrics", {"points": points})
        elif kind == "event":
            self._post(run + "/events", {"events": [op["body"] for op in batch]})
        elif kind == "checkpoint":
            self._post(run + "/checkpoints", batch[0]["body"])
        elif kind == "status":
            self._post(run + "/status", batch[0]["body"])

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.client.post(path, json=body)
        except httpx.TransportError as exc:
            raise Transient(str(exc)) from exc
        if response.status_code in TRANSIENT:
            raise Transient(f"HTTP {response.status_code}")
        if response.status_code in (401, 403):
            raise Refused(_detail(response))
        if response.status_code >= 400:
            # The server will never take this report (409: the run finished meanwhile):
            # it is skipped rather than blocking every report after it.
            log.warning("Tuneboard rejected a report to %s: %s", path, _detail(response))
            return {}
        answer = response.json()
        control = answer.get("control") if isinstance(answer, dict) else None
        if isinstance(control, dict) and control.get("stop"):
            self.stop_requested = True
        return answer if isinstance(answer, dict) else {}


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail") or response.status_code)
    except ValueError:
        return f"HTTP {response.status_code}"


def deliver(directory: Path, *, url: str, token: str, deadline: float) -> bool:
    """Send a spool left behind by an earlier process; True when all of it arrived."""
    sender = Sender(directory, url=url, token=token)
    try:
        while time.monotonic() < deadline:
            try:
                if not sender.deliver_once():
                    return True
            except Transient:
                time.sleep(1.0)
    finally:
        sender.client.close()
    return not spool.unsent(directory)

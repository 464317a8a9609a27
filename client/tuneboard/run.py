"""A run as the training script sees it: ``init``, ``log``, ``checkpoint``, ``event``,
``finish``. Each call appends to the spool and returns at once; a background thread sends."""

from __future__ import annotations

import atexit
import datetime
import logging
import math
import os
import re
import sys
import threading
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from tuneboard import spool
from tuneboard.sender import Sender, deliver

log = logging.getLogger("tuneboard")
_current: Run | None = None
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _finite(values: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[str(key)] = float(value)
    return out


class Run:
    def __init__(
        self,
        *,
        external_id: str,
        body: dict[str, Any],
        url: str,
        token: str,
        spool_root: Path,
        flush_timeout: float,
    ) -> None:
        self.external_id = external_id
        self.flush_timeout = flush_timeout
        self.directory = spool_root / _SAFE.sub("_", external_id)[:150]
        self.finished = False
        self._spool = spool.Spool(self.directory)
        if not (self.directory / spool.OPS).stat().st_size:
            self._spool.append({"op": "create", "body": body})
        self.sender = Sender(
            self.directory,
            url=url,
            token=token,
            interval=_env_float("TUNEBOARD_FLUSH_INTERVAL", 1.0),
            backoff_max=_env_float("TUNEBOARD_RETRY_MAX", 30.0),
        )
        self.sender.start()
        _deliver_leftovers(spool_root, self.directory, url=url, token=token)

    @property
    def id(self) -> str | None:
        """Tuneboard's id of the run, once the server has been reached."""
        return self.sender.run_id

    @property
    def should_stop(self) -> bool:
        """Tuneboard asked this run to stop (a guardrail, or a person on the run page)."""
        return self.sender.stop_requested

    def log(self, metrics: dict[str, Any], step: int) -> None:
        values = _finite(metrics)
        if values and not self.finished:
            self._spool.append({"op": "metrics", "step": int(step), "values": values})

    def checkpoint(self, step: int, uri: str = "", metrics: dict[str, Any] | None = None) -> None:
        body = {"step": int(step), "uri": str(uri)[:300], "metrics": _finite(metrics or {})}
        self._spool.append({"op": "checkpoint", "body": body})
        self.sender.wake()

    def event(self, message: str, level: str = "info", **data: Any) -> None:
        body = {
            "id": uuid.uuid4().hex,
            "message": str(message)[:10_000] or "-",
            "level": level if level in ("info", "warn", "error") else "info",
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
            "data": {k: v for k, v in data.items() if isinstance(v, str | int | float | bool)},
        }
        self._spool.append({"op": "event", "body": body})

    def status(self, status: str, message: str = "", total_steps: int | None = None) -> None:
        body: dict[str, Any] = {"status": status, "message": str(message)[:10_000]}
        if total_steps:
            body["total_steps"] = int(total_steps)
        self._spool.append({"op": "status", "body": body})
        self.sender.wake()

    def finish(
        self, status: str = "succeeded", message: str = "", timeout: float | None = None
    ) -> bool:
        """Report the final status and wait up to ``timeout`` seconds (TUNEBOARD_FLUSH_TIMEOUT,
        default 30) for everything to arrive. True when it did; otherwise it stays spooled
        and is sent by ``python -m tuneboard sync`` or the next run using this spool."""
        global _current
        if self.finished:
            return not spool.unsent(self.directory)
        self.status(status, message)
        self.finished = True
        if _current is self:
            _current = None
        done = self.sender.close(self.flush_timeout if timeout is None else timeout)
        if not done:
            log.warning(
                "Tuneboard could not be reached; the run's reports are spooled in %s "
                "(python -m tuneboard sync delivers them).",
                self.directory,
            )
        self._spool.close()
        return done


def _deliver_leftovers(root: Path, mine: Path, *, url: str, token: str) -> None:
    """Spools of earlier runs that did not get through, sent in the background."""
    others = [d for d in root.iterdir() if d.is_dir() and d != mine and spool.unsent(d)]
    if not others:
        return

    def send() -> None:
        for directory in others:
            deliver(directory, url=url, token=token, deadline=_monotonic() + 600)

    threading.Thread(target=send, name="tuneboard-leftovers", daemon=True).start()


def _monotonic() -> float:
    import time

    return time.monotonic()


def init(
    run: str | None = None,
    *,
    name: str = "",
    base_model: str = "",
    method: str = "supervised",
    hyperparameters: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    training_dataset: int | None = None,
    validation_dataset: int | None = None,
    total_steps: int | None = None,
    epochs: float | None = None,
    notes: str = "",
    connection: str = "",
    url: str | None = None,
    token: str | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
) -> Run:
    """Start (or, with the same ``run`` id, continue) a run. Returns at once, whether or not
    Tuneboard is reachable."""
    global _current
    url = url or os.environ.get("TUNEBOARD_URL", "")
    token = token or os.environ.get("TUNEBOARD_TOKEN", "")
    if not url or not token:
        raise ValueError("Set TUNEBOARD_URL and TUNEBOARD_TOKEN (or pass url= and token=).")
    external_id = run or f"run-{uuid.uuid4().hex}"
    body: dict[str, Any] = {
        "external_id": external_id[:100],
        "name": name[:200],
        "base_model": base_model[:300],
        "method": method,
        "hyperparameters": _plain(hyperparameters or {}),
        "tags": [str(t)[:50] for t in (tags or [])][:20],
        "notes": notes,
        "connection": connection,
    }
    for key, value in (
        ("training_dataset", training_dataset),
        ("validation_dataset", validation_dataset),
        ("total_steps", total_steps),
        ("epochs", epochs),
    ):
        if value:
            body[key] = value
    root = Path(spool_dir) if spool_dir else spool.default_root()
    _current = Run(
        external_id=external_id,
        body=body,
        url=url,
        token=token,
        spool_root=root,
        flush_timeout=_env_float("TUNEBOARD_FLUSH_TIMEOUT", 30.0),
    )
    _watch_exit(_current)
    return _current


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe hyperparameters: numbers (finite), strings, booleans, None, lists of them."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if value is None or isinstance(value, str | bool | int | float):
            out[str(key)] = value
        elif isinstance(value, list | tuple) and all(
            isinstance(v, str | bool | int | float) for v in value
        ):
            out[str(key)] = list(value)
        else:
            out[str(key)] = str(value)[:500]
    return out


def _watch_exit(run: Run) -> None:
    """An uncaught exception fails the run with its message; a process that ends without
    ``finish`` succeeded (as a script that ran to its end did)."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if not run.finished:
            run.finish("failed", f"{kind.__name__}: {exc}")
        previous(kind, exc, tb)

    sys.excepthook = hook

    def at_exit() -> None:
        if not run.finished:
            run.finish("succeeded")

    atexit.register(at_exit)


def current() -> Run:
    if _current is None:
        raise RuntimeError("Call tuneboard.init() first.")
    return _current


def log_metrics(metrics: dict[str, Any], step: int) -> None:
    current().log(metrics, step)


def checkpoint(step: int, uri: str = "", metrics: dict[str, Any] | None = None) -> None:
    current().checkpoint(step, uri, metrics)


def finish(status: str = "succeeded", message: str = "", timeout: float | None = None) -> bool:
    return current().finish(status, message, timeout)


def upload_dataset(
    path: str | os.PathLike[str],
    *,
    name: str = "",
    description: str = "",
    url: str | None = None,
    token: str | None = None,
) -> int:
    """Upload a JSONL dataset file and return its id (for ``init(training_dataset=…)``). The
    same content uploaded before returns the stored dataset. Raises on failure: unlike
    reports, an upload is something the script waits for."""
    import httpx

    url = url or os.environ.get("TUNEBOARD_URL", "")
    token = token or os.environ.get("TUNEBOARD_TOKEN", "")
    source = Path(path)
    with source.open("rb") as handle:
        response = httpx.post(
            url.rstrip("/") + "/api/v1/datasets",
            headers={"Authorization": f"Bearer {token}"},
            data={"name": name or source.stem, "description": description},
            files={"file": (source.name, handle, "application/jsonl")},
            timeout=300,
        )
    if response.status_code not in (200, 201):
        raise RuntimeError(f"Tuneboard refused the dataset: {response.text[:500]}")
    return int(response.json()["id"])

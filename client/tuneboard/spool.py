"""The on-disk spool: every report is appended to ``ops.jsonl`` (flushed) before it is sent,
and ``sent`` holds how many bytes of it the server has acknowledged. A process that dies, or
a server that is away, loses nothing: the rest is sent later, in order, and every report is
idempotent at the server, so one sent twice (acknowledgement lost) changes nothing."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("tuneboard")
OPS = "ops.jsonl"
SENT = "sent"


def default_root() -> Path:
    configured = os.environ.get("TUNEBOARD_SPOOL")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "tuneboard" / "spool"


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / OPS
        self._lock = threading.Lock()
        self._warned = False
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open for the run's life

    def append(self, op: dict[str, Any]) -> bool:
        """Spool one report; False (and a warning, once) when the disk refuses it: a full or
        read-only disk loses reports, never the training."""
        line = json.dumps(op, separators=(",", ":"), allow_nan=False).encode() + b"\n"
        with self._lock:
            try:
                self._file.write(line)
                self._file.flush()
            except (OSError, ValueError) as exc:  # ValueError: the file was closed
                if not self._warned:
                    self._warned = True
                    log.warning("Tuneboard's spool %s refused a report: %s", self.path, exc)
                return False
        return True

    def close(self) -> None:
        with self._lock:
            self._file.close()


def sent_offset(directory: Path) -> int:
    try:
        return int((directory / SENT).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def set_sent_offset(directory: Path, offset: int) -> None:
    temporary = directory / (SENT + ".tmp")
    temporary.write_text(str(offset))
    os.replace(temporary, directory / SENT)


def pending(directory: Path, offset: int, limit: int = 2000) -> list[tuple[int, dict[str, Any]]]:
    """Unsent reports after byte ``offset``: (offset after the line, report), complete lines
    only (a line being written is left for the next read)."""
    out: list[tuple[int, dict[str, Any]]] = []
    try:
        with open(directory / OPS, "rb") as handle:
            handle.seek(offset)
            position = offset
            for line in handle:
                if not line.endswith(b"\n") or len(out) >= limit:
                    break
                position += len(line)
                try:
                    out.append((position, json.loads(line)))
                except ValueError:  # a torn line from a crash: skipped
                    continue
    except FileNotFoundError:
        pass
    return out


def unsent(directory: Path) -> bool:
    try:
        return (directory / OPS).stat().st_size > sent_offset(directory)
    except FileNotFoundError:
        return False

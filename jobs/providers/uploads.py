"""Getting a file to the provider without holding it in memory.

Up to the threshold, one multipart ``POST /files`` streams the caller's file object. Beyond
it (the Files API stops at 512 MB), the Uploads API takes it in parts: create the upload,
send each part (streamed from the source when it is seekable, else buffered one part at a
time), then complete it with the part ids in order and the MD5 computed on the way.

What a lost answer can duplicate here, and why it is handled as it is (a job create, which
trains and bills, is never repeated blindly: see ``OpenAICompatibleProvider.create_job``):

- ``POST /files`` is sent again after a dropped connection, a timeout or a 5xx, like any
  request. If the first attempt had in fact stored the file, that copy stays unused at the
  provider: nothing trains on it and Tuneboard records only the file it got an answer for.
  Files carry no metadata to look them up by, and matching on name and size could adopt
  someone else's data, so a rare unused copy is the lesser harm.
- ``POST /uploads`` and its parts are sent again likewise: an upload left behind expires
  within the hour, and a part sent twice is not listed when completing, so it is ignored.
- ``POST /uploads/{id}/complete`` is not repeated blindly: completing twice is refused once
  the upload is complete, which would fail the launch for good although the file exists. After
  an unknown outcome it is sent once more; if that is refused, the first one worked and its
  answer (with the file id) is lost, so a transient error makes the caller upload again (the
  first file stays unused, as above).
"""

from __future__ import annotations

import io
import logging
import mimetypes
from typing import Any, BinaryIO
from urllib.parse import quote

from jobs.providers.errors import (
    BadRequestError,
    OutcomeUnknownError,
    ProviderError,
    TransientProviderError,
)
from jobs.providers.http import HttpSession
from jobs.providers.records import FileInfo
from jobs.providers.streams import MAX_READ, SourceReader, TruncatedStreamError, Window

log = logging.getLogger("jobs.providers")

MB = 1024 * 1024
# The Files API accepts up to 512 MB; the Uploads API up to 8 GB in parts of at most 64 MB.
MULTIPART_THRESHOLD = 512 * MB
PART_SIZE = 64 * MB


def mime_type_for(filename: str) -> str:
    if filename.lower().endswith(".jsonl"):
        return "text/jsonl"  # what OpenAI documents for fine-tuning uploads
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def upload_single(
    session: HttpSession, *, filename: str, stream: BinaryIO, size: int, purpose: str
) -> FileInfo:
    window = Window(SourceReader(stream, size), 0, size)
    body = session.json(
        "POST",
        "files",
        files={"file": (filename, window, mime_type_for(filename))},
        data={"purpose": purpose},
        replayable=lambda: window.replayable,
    )
    return FileInfo.from_api(body)


def upload_in_parts(
    session: HttpSession,
    *,
    filename: str,
    stream: BinaryIO,
    size: int,
    purpose: str,
    part_size: int = PART_SIZE,
) -> FileInfo:
    if part_size <= 0:
        raise ValueError("part_size must be positive")
    source = SourceReader(stream, size)
    upload = session.json(
        "POST",
        "uploads",
        json={
            "bytes": size,
            "filename": filename,
            "mime_type": mime_type_for(filename),
            "purpose": purpose,
        },
    )
    upload_id = str(upload["id"])
    try:
        part_ids = [
            _send_part(session, upload_id, source, offset, min(part_size, size - offset))
            for offset in range(0, size, part_size)
        ]
        md5 = source.md5_hexdigest()
        completed = _complete(session, upload_id, {"part_ids": part_ids, "md5": md5})
    except (ProviderError, TruncatedStreamError, OSError):
        _cancel_quietly(session, upload_id)
        raise
    file = completed.get("file") if isinstance(completed, dict) else None
    if not isinstance(file, dict):
        raise ProviderError(
            f"Upload {upload_id} completed without a file object (status: "
            f"{completed.get('status') if isinstance(completed, dict) else 'unknown'})"
        )
    log.debug("upload %s completed in %d parts, md5 %s", upload_id, len(part_ids), md5)
    return FileInfo.from_api(file)


def _complete(session: HttpSession, upload_id: str, body: dict[str, Any]) -> Any:
    path = f"uploads/{quote(upload_id, safe='')}/complete"
    try:
        return session.json("POST", path, json=body, idempotent=False)
    except OutcomeUnknownError as exc:
        log.info("completing upload %s: %s; completing it again", upload_id, exc)
    try:
        return session.json("POST", path, json=body, idempotent=False)
    except BadRequestError as exc:
        raise TransientProviderError(
            f"Upload {upload_id} may have completed, but the answer with its file was lost; "
            f"the file must be uploaded again ({exc.message})"
        ) from exc


def _send_part(
    session: HttpSession, upload_id: str, source: SourceReader, offset: int, length: int
) -> str:
    window = Window(source, offset, length)
    body: Any = window
    if not source.seekable:
        # A one-way stream cannot be re-read if the part must be resent: hold this one part.
        buffer = io.BytesIO()
        while chunk := window.read(MAX_READ):
            buffer.write(chunk)
        buffer.seek(0)
        body = buffer
    part = session.json(
        "POST",
        f"uploads/{quote(upload_id, safe='')}/parts",
        files={"data": ("part", body, "application/octet-stream")},
        replayable=(lambda: window.replayable) if body is window else None,
    )
    return str(part["id"])


def _cancel_quietly(session: HttpSession, upload_id: str) -> None:
    # The upload would expire on its own within the hour; cancelling frees it at once.
    try:
        session.request("POST", f"uploads/{quote(upload_id, safe='')}/cancel", empty_json_body=True)
    except ProviderError as exc:
        log.info("could not cancel upload %s after a failure: %s", upload_id, exc)

"""Getting a file to the provider without holding it in memory, and only once.

Up to the threshold, one multipart ``POST /files`` streams the caller's file object. Beyond
it (the Files API stops at 512 MB), the Uploads API takes it in parts: create the upload,
send each part (streamed from the source when it is seekable, else buffered one part at a
time), then complete it with the part ids in order and the MD5 computed on the way.

What a lost answer could duplicate here, and how it is prevented (the same rule as a job
create, ``OpenAICompatibleProvider.create_job``: after an unknown outcome, look before
doing it again):

- Files carry no metadata, so the name does the marking: a caller that knows the content's
  SHA-256 (``upload_file(sha256=...)``) uploads under ``content_filename``, which ends in
  the first 12 hex digits of it (``train.1a2b3c4d5e6f.jsonl``). After a ``POST /files``
  whose outcome is unknown (the connection dropped after sending, a read timeout, a 5xx),
  ``find_file`` lists the provider's files of that purpose, newest first and a bounded
  number of pages, and adopts one whose name and size both match exactly; only when there
  is none is the file sent again. A name that carries 48 bits of the content's hash and a
  size that matches cannot be somebody else's data by accident; a provider that ignores
  the list's filters only makes the walk longer, never the match looser. Without a SHA-256
  the old behaviour stays: the request is retried, and a copy may be left unused.
- ``POST /uploads`` and its parts are sent again likewise: an upload left behind expires
  within the hour, and a part sent twice is not listed when completing, so it is ignored.
- ``POST /uploads/{id}/complete`` is not repeated blindly: completing twice is refused once
  the upload is complete, which would fail the launch for good although the file exists.
  After an unknown outcome the file is looked up by name and size as above; if it is not
  there the upload is completed once more, and if that is refused (the first one worked
  after all) the file is looked up again. Only when it still cannot be found does a
  transient error make the caller upload again.
"""

from __future__ import annotations

import abc
import io
import logging
import mimetypes
import time
from collections.abc import Callable
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from jobs.providers.errors import (
    BadRequestError,
    OutcomeUnknownError,
    ProviderError,
    TransientProviderError,
)
from jobs.providers.http import HttpSession, SessionClient, redact
from jobs.providers.paging import PageBudget, PagingError, paginate
from jobs.providers.records import FileInfo, Page
from jobs.providers.streams import MAX_READ, SourceReader, TruncatedStreamError, Window

log = logging.getLogger("jobs.providers")

MB = 1024 * 1024
# The Files API accepts up to 512 MB; the Uploads API up to 8 GB in parts of at most 64 MB.
MULTIPART_THRESHOLD = 512 * MB
PART_SIZE = 64 * MB
# Hex digits of the content's SHA-256 in an upload's name: 48 bits, short enough to read.
MARKER_HEX = 12
# Both APIs refuse longer names; the marker and extension must survive the cut.
MAX_FILENAME = 255
# How far ``find_file`` pages through the provider's files (newest first). A file sent
# moments ago is on the first page unless the provider ignores the order; ten pages of 100
# bound the cost of a provider that ignores every filter.
FIND_FILE_MAX_PAGES = 10
FIND_FILE_PAGE_SIZE = 100
FILE_UNUSABLE_STATUSES = frozenset({"error", "deleted"})

# The lookup ``upload_single``/``upload_in_parts`` run after an unknown outcome; None: no
# lookup (the caller gave no content hash), the old resend.
Lookup = Callable[[], FileInfo | None]


def mime_type_for(filename: str) -> str:
    if filename.lower().endswith(".jsonl"):
        return "text/jsonl"  # what OpenAI documents for fine-tuning uploads
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def content_filename(filename: str, sha256: str) -> str:
    """``filename`` with the first hex digits of the content's SHA-256 before its extension
    (``train.jsonl`` → ``train.1a2b3c4d5e6f.jsonl``): the name ``find_file`` recognises."""
    marker = sha256.strip().lower()[:MARKER_HEX]
    if len(marker) != MARKER_HEX or any(c not in "0123456789abcdef" for c in marker):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    name = filename.replace("/", "_").replace("\\", "_").strip() or "dataset.jsonl"
    # Fine-tuning files must end in .jsonl; any other name keeps its whole self as the stem.
    stem, extension = name, "jsonl"
    if name.lower().endswith(".jsonl") and len(name) > len(".jsonl"):
        stem, extension = name[: -len(".jsonl")], name[-len("jsonl") :]
    if stem.lower().endswith(f".{marker}"):
        stem = stem[: -(MARKER_HEX + 1)]  # already marked (a re-upload of a downloaded file)
    suffix = f".{marker}.{extension}"
    return stem[: MAX_FILENAME - len(suffix)] + suffix


def marked(
    filename: str,
    *,
    sha256: str | None,
    size: int,
    purpose: str,
    find: Callable[..., FileInfo | None],
) -> tuple[str, Lookup | None]:
    """The name to upload under and the lookup to run after an unknown outcome: with the
    content's ``sha256``, a content-marked name and a search for a file of that name and size
    (``find`` is the adapter's ``find_file``); without it, the name as given and no lookup."""
    if sha256 is None:
        return filename, None
    name = content_filename(filename, sha256)

    def lookup() -> FileInfo | None:
        return find(filename=name, size=size, purpose=purpose)

    return name, lookup


def list_files(
    session: HttpSession,
    *,
    purpose: str | None = None,
    after: str | None = None,
    limit: int = FIND_FILE_PAGE_SIZE,
    order: str = "desc",
) -> Page[FileInfo]:
    limit = max(1, limit)
    params: dict[str, Any] = {"limit": limit, "order": order}
    if purpose:
        params["purpose"] = purpose
    if after:
        params["after"] = after
    body = session.json("GET", "files", params=params)
    items = body.get("data") if isinstance(body, dict) else None
    data = (
        [FileInfo.from_api(item) for item in items if isinstance(item, dict)]
        if isinstance(items, list)
        else []
    )
    has_more = body.get("has_more") if isinstance(body, dict) else None
    if not isinstance(has_more, bool):
        has_more = bool(data) and len(data) >= limit
    return Page(data=data, has_more=has_more)


def find_file(
    session: HttpSession,
    *,
    filename: str,
    size: int,
    purpose: str,
    max_pages: int = FIND_FILE_MAX_PAGES,
    page_size: int = FIND_FILE_PAGE_SIZE,
) -> FileInfo | None:
    """The newest usable file named exactly ``filename`` holding exactly ``size`` bytes (and of
    ``purpose`` when the provider says), or None.

    Every listed file is checked: a provider that ignores ``purpose`` or ``order`` lists
    others, and none of them may be taken for this one. The walk ends after ``max_pages``
    pages, or earlier when the provider's paging does not advance (``paginate``)."""
    budget = PageBudget(max_pages, setting="FIND_FILE_MAX_PAGES")
    try:
        for info in paginate(
            lambda after: list_files(session, purpose=purpose, after=after, limit=page_size),
            what=f"files named {filename!r}",
            budget=budget,
        ):
            if (
                info.filename == filename
                and info.bytes == size
                and (info.purpose is None or info.purpose == purpose)
                and info.status not in FILE_UNUSABLE_STATUSES
            ):
                return info
    except PagingError as exc:
        log.warning("looking for the uploaded file %s: %s", filename, exc)
    return None


def _file_from(
    body: Any,
    status: int | None = None,
    parse: Callable[[dict[str, Any]], FileInfo] = FileInfo.from_api,
) -> FileInfo:
    info = parse(body) if isinstance(body, dict) else None
    if info is None or not info.id:
        # A success we cannot read may still have stored the file: as uncertain as a loss.
        raise OutcomeUnknownError(
            "The provider answered the upload with something that is not a file", status=status
        )
    return info


def upload_single(
    session: HttpSession,
    *,
    filename: str,
    stream: BinaryIO,
    size: int,
    purpose: str,
    lookup: Lookup | None = None,
    path: str = "files",
    fields: dict[str, str] | None = None,
    parse: Callable[[dict[str, Any]], FileInfo] = FileInfo.from_api,
) -> FileInfo:
    """One ``POST /files`` (or another provider's ``path``, with its form ``fields`` and its
    file shape ``parse``). With ``lookup``, a failure whose outcome is unknown is followed by
    the lookup, and the file is sent again only when the provider does not have it, at most
    ``max_retries`` times; without it such a failure is retried like any other."""
    window = Window(SourceReader(stream, size), 0, size)
    attempt = 0
    while True:
        try:
            body = session.json(
                "POST",
                path,
                files={"file": (filename, window, mime_type_for(filename))},
                data={"purpose": purpose, **(fields or {})},
                replayable=lambda: window.replayable,
                idempotent=lookup is None,
            )
            if lookup is not None:
                return _file_from(body, parse=parse)
            return parse(body if isinstance(body, dict) else {})
        except OutcomeUnknownError as exc:
            if lookup is None or attempt >= session.config.max_retries:
                raise
            log.info("upload of %s may have happened (%s): looking", filename, exc)
        session.pause(attempt)
        attempt += 1
        found = lookup()
        if found is not None:
            log.info("upload of %s had happened: adopting %s", filename, found.id)
            return found
        if not window.replayable:
            raise TransientProviderError(
                f"The upload of {filename} was lost and the stream cannot be sent again"
            )
        log.info("%s was not uploaded: uploading it again", filename)


def upload_in_parts(
    session: HttpSession,
    *,
    filename: str,
    stream: BinaryIO,
    size: int,
    purpose: str,
    part_size: int = PART_SIZE,
    lookup: Lookup | None = None,
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
        info = _complete(session, upload_id, {"part_ids": part_ids, "md5": md5}, lookup)
    except (ProviderError, TruncatedStreamError, OSError):
        _cancel_quietly(session, upload_id)
        raise
    log.debug("upload %s completed in %d parts, md5 %s", upload_id, len(part_ids), md5)
    return info


def _completed_file(upload_id: str, completed: Any) -> FileInfo:
    file = completed.get("file") if isinstance(completed, dict) else None
    if not isinstance(file, dict):
        raise ProviderError(
            f"Upload {upload_id} completed without a file object (status: "
            f"{completed.get('status') if isinstance(completed, dict) else 'unknown'})"
        )
    return FileInfo.from_api(file)


def _complete(
    session: HttpSession, upload_id: str, body: dict[str, Any], lookup: Lookup | None
) -> FileInfo:
    path = f"uploads/{quote(upload_id, safe='')}/complete"
    try:
        return _completed_file(upload_id, session.json("POST", path, json=body, idempotent=False))
    except OutcomeUnknownError as exc:
        log.info("completing upload %s: %s", upload_id, exc)
    if lookup is not None:
        session.pause(0)
        if (found := lookup()) is not None:
            log.info("upload %s had completed: adopting %s", upload_id, found.id)
            return found
    try:
        return _completed_file(upload_id, session.json("POST", path, json=body, idempotent=False))
    except BadRequestError as exc:
        # Refused: the first completion worked after all, and its answer was lost.
        found = lookup() if lookup is not None else None
        if found is not None:
            return found
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


def download_to(
    session: HttpSession, path: str, write: Callable[[bytes], object], *, what: str, chunk_size: int
) -> int:
    """Stream a file's content at ``path`` to ``write`` in chunks (bounded memory, whatever
    the size); returns the number of bytes. Retried like any call until the first byte is
    written; a failure after that raises TransientProviderError and the caller starts over."""
    response = session.request("GET", path, stream=True)
    total = 0
    try:
        for chunk in response.iter_bytes(chunk_size):
            write(chunk)
            total += len(chunk)
    except httpx.HTTPError as exc:
        raise TransientProviderError(
            redact(
                f"The download of {what} broke off after {total:,} bytes ({type(exc).__name__})",
                session.config.api_key,
            )
        ) from exc
    finally:
        response.close()
    return total


DOWNLOAD_CHUNK = 1 << 20


def segment(value: str) -> str:
    """An id as one URL path segment. Model ids contain colons, which the APIs expect
    unescaped; anything else odd is quoted."""
    return quote(value, safe=":@-._~")


class FileClient(SessionClient):
    """The file calls every adapter shares: its provider's ``files/{id}`` and
    ``files/{id}/content`` work alike; what a finished file's status is called differs."""

    file_done_statuses: frozenset[str] = frozenset({"processed", "error"})

    @abc.abstractmethod
    def retrieve_file(self, file_id: str) -> FileInfo: ...

    def wait_for_file(self, file_id: str, *, timeout: float = 600, poll: float = 1.0) -> FileInfo:
        deadline = time.monotonic() + timeout
        while True:
            info = self.retrieve_file(file_id)
            if info.status in self.file_done_statuses:
                return info
            if time.monotonic() + poll > deadline:
                raise TransientProviderError(
                    f"File {file_id} is still {info.status!r} after {timeout:g} s"
                )
            self._sleep(poll)

    def download_file(self, file_id: str) -> bytes:
        return self._session.request("GET", f"files/{segment(file_id)}/content").content

    def download_file_to(
        self, file_id: str, write: Callable[[bytes], object], *, chunk_size: int = DOWNLOAD_CHUNK
    ) -> int:
        """Stream a file's content to ``write`` (``download_to``)."""
        return download_to(
            self._session,
            f"files/{segment(file_id)}/content",
            write,
            what=file_id,
            chunk_size=chunk_size,
        )

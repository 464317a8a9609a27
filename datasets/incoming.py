"""Files on their way into storage: written chunk by chunk to ``MEDIA_ROOT/incoming``, hashed,
line-counted, line-indexed and checked on the way, so nothing reads them a second time.

The temporary file sits next to the final location (same file system), so storing it is a
rename. Whatever happens, ``IncomingUpload.close()`` removes the temporary file if it was not
moved into storage, and the request machinery closes uploaded files at the end of every
request, so failed uploads leave nothing behind.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import tempfile
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat

from datasets.lineindex import LineIndexer

HEAD_CHECK_BYTES = 64 * 1024
ALLOWED_SUFFIX = ".jsonl"
MAX_NAME_LENGTH = 255
CONTENT_TYPE = "application/jsonl"

_UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
# Direction overrides make "evil\u202elnosj.exe" display as "evil" + "exe.jsonl".
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_MAGIC = ((b"\x1f\x8b", "gzip-compressed"), (b"PK\x03\x04", "a zip archive"))


class UploadRejected(Exception):
    """The file cannot become a dataset; the message is shown to the user as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def incoming_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "incoming"


def check_file_name(name: str) -> None:
    """Refuse names that are paths or carry control characters, rather than quietly
    rewriting them: the user should know the name that will be shown is not theirs."""
    if not name:
        raise UploadRejected("The file has no name.")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise UploadRejected(
            f"The file name {name[:80]!r} looks like a path; upload a plain file name such as "
            "train.jsonl."
        )
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS for ch in name):
        raise UploadRejected("The file name contains control characters.")
    if len(name) > MAX_NAME_LENGTH:
        raise UploadRejected(f"The file name is longer than {MAX_NAME_LENGTH} characters.")
    if not name.lower().endswith(ALLOWED_SUFFIX) or len(name) == len(ALLOWED_SUFFIX):
        raise UploadRejected(
            f"Only JSON Lines files ending in {ALLOWED_SUFFIX} can be uploaded (got {name[:80]!r})."
        )


def _check_head(head: bytes, complete: bool) -> None:
    for bom, encoding in _OTHER_BOMS:
        if head.startswith(bom):
            raise UploadRejected(
                f"The file is {encoding} encoded; save it as UTF-8 and upload again."
            )
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            raise UploadRejected(
                f"The file is {kind}, not a JSON Lines text file; extract it first."
            )
    text = head.removeprefix(_UTF8_BOM)
    if b"\x00" in text:
        raise UploadRejected(
            "The file contains NUL bytes: it is binary or UTF-16 without a byte order mark, "
            "not UTF-8 text."
        )
    try:
        # An incremental decoder holds back a multi-byte character cut at the check limit.
        codecs.getincrementaldecoder("utf-8")().decode(text, final=complete)
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(head) - len(text)) + 1
        raise UploadRejected(
            f"The file is not UTF-8 text (invalid byte at position {offset:,}); save it as "
            "UTF-8 and upload again."
        ) from None
    if complete and not text.strip():
        raise UploadRejected("The file contains only whitespace.")


class IncomingFile:
    """Writes a stream of chunks to a temporary file in storage's file system."""

    def __init__(self, *, max_bytes: int | None = None, check_text: bool = True) -> None:
        directory = incoming_dir()
        directory.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=directory)
        self.path = Path(path)
        self._fh = os.fdopen(fd, "wb")
        self.max_bytes = max_bytes
        self.check_text = check_text
        self.size = 0
        self._sha = hashlib.sha256()
        self.indexer = LineIndexer()
        self._head = bytearray()
        self._head_checked = not check_text

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise UploadRejected(
                f"The file is larger than the {filesizeformat(self.max_bytes)} limit."
            )
        if not self._head_checked:
            self._head += chunk[: HEAD_CHECK_BYTES - len(self._head)]
            if len(self._head) >= HEAD_CHECK_BYTES:
                _check_head(bytes(self._head), complete=False)
                self._head_checked = True
                self._head = bytearray()
        self._sha.update(chunk)
        self.indexer.feed(chunk)
        self._fh.write(chunk)

    def finish(self, name: str) -> IncomingUpload:
        """Close the file and hand it over as an uploaded file (which owns it from then on)."""
        try:
            if self.size == 0:
                raise UploadRejected("The file is empty.")
            if not self._head_checked:
                _check_head(bytes(self._head), complete=True)
            self._fh.close()
        except BaseException:
            self.discard()
            raise
        return IncomingUpload(
            path=self.path,
            name=name,
            size=self.size,
            sha256=self._sha.hexdigest(),
            line_count=self.indexer.line_count,
            line_index=self.indexer.to_json(),
        )

    def discard(self) -> None:
        self._fh.close()
        self.path.unlink(missing_ok=True)


class IncomingUpload(UploadedFile):
    """A finished incoming file. Storage moves it into place (``temporary_file_path``);
    closing it deletes the temporary file if it is still there."""

    def __init__(
        self,
        *,
        path: Path,
        name: str,
        size: int,
        sha256: str,
        line_count: int,
        line_index: dict[str, list[int]],
    ) -> None:
        super().__init__(
            file=open(path, "rb"),  # noqa: SIM115 - owned by this object, closed in close()
            name=name,
            content_type=CONTENT_TYPE,
            size=size,
            charset="utf-8",
        )
        self.path = path
        self.sha256 = sha256
        self.line_count = line_count
        self.line_index = line_index

    def temporary_file_path(self) -> str:
        return str(self.path)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.path.unlink(missing_ok=True)


def incoming_from_chunks(
    chunks: Iterable[bytes], *, name: str, max_bytes: int | None, check_text: bool = True
) -> IncomingUpload:
    """Copy any stream of chunks (e.g. a file Django already spooled) into an incoming file,
    with the same checks as a streamed upload."""
    check_file_name(name)
    incoming = IncomingFile(max_bytes=max_bytes, check_text=check_text)
    try:
        for chunk in chunks:
            incoming.write(chunk)
    except BaseException:
        incoming.discard()
        raise
    return incoming.finish(name)

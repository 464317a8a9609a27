"""Streaming dataset uploads: the request body goes straight to an incoming file.

Django parses a multipart body the first time ``request.POST`` or ``request.FILES`` is read,
through ``request.upload_handlers``. ``install_upload_handler`` replaces those handlers
with one that writes each chunk to disk while hashing and checking it, so memory stays flat
whatever the file size. It must run before anything reads ``request.POST`` — CSRF checking
included — which is why upload views are ``csrf_exempt`` and run ``csrf_protect`` after
installing it.
"""

from __future__ import annotations

import html
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParser
from django.template.defaultfilters import filesizeformat

from datasets.incoming import IncomingFile, IncomingUpload, UploadRejected, check_file_name

FILE_FIELD = "file"
# Room for the other form fields and the multipart framing on top of the file itself.
FORM_OVERHEAD_BYTES = 1 << 20
CHUNK_SIZE = 1 << 20


def max_upload_bytes() -> int:
    return int(settings.DATASET_MAX_UPLOAD_BYTES)


def body_too_large(request: HttpRequest) -> str | None:
    """A message when the declared body cannot hold an acceptable file, decided before a
    single byte of it is read."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    limit = max_upload_bytes()
    if length > limit + FORM_OVERHEAD_BYTES:
        return f"The file is larger than the {filesizeformat(limit)} limit."
    return None


class _RawNameParser(MultiPartParser):
    def sanitize_file_name(self, file_name: str) -> str | None:
        # Django quietly cuts "../x.jsonl" down to "x.jsonl"; keeping the name as sent lets
        # the handler refuse it with a reason. The name is only ever displayed: storage
        # names are derived from the content hash.
        return html.unescape(file_name) or None


class DatasetUploadHandler(FileUploadHandler):
    chunk_size = CHUNK_SIZE

    def __init__(self, request: HttpRequest, *, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.error: str | None = None
        self.result: IncomingUpload | None = None
        self._incoming: IncomingFile | None = None
        self._parsing = False

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],  # Django passes it by this name
        content_length: int,
        boundary: bytes,
        encoding: str | None = None,
    ) -> tuple[Any, Any] | None:
        if self._parsing:
            return None
        self._parsing = True
        try:
            return _RawNameParser(META, input_data, [self], encoding).parse()
        except BaseException:
            # A client that disconnects mid-upload must not leave a partial file behind.
            self._discard()
            raise

    def new_file(
        self,
        field_name: str,
        file_name: str,
        content_type: str,
        content_length: int | None,
        charset: str | None = None,
        content_type_extra: dict[str, Any] | None = None,
    ) -> None:
        super().new_file(
            field_name, file_name, content_type, content_length, charset, content_type_extra
        )
        if field_name != FILE_FIELD or self.result is not None or self._incoming is not None:
            raise SkipFile
        try:
            check_file_name(file_name)
        except UploadRejected as exc:
            self.error = exc.message
            raise SkipFile from None
        self._incoming = IncomingFile(max_bytes=self.max_bytes)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self._incoming is None:
            return None
        try:
            self._incoming.write(raw_data)
        except UploadRejected as exc:
            # Stop writing at once; the parser skips the rest of this part.
            self.error = exc.message
            self._discard()
            raise SkipFile from None
        return None

    def file_complete(self, file_size: int) -> IncomingUpload | None:
        incoming, self._incoming = self._incoming, None
        if incoming is None:
            return None
        try:
            self.result = incoming.finish(self.file_name or "")
        except UploadRejected as exc:
            self.error = exc.message
            return None
        return self.result

    def upload_interrupted(self) -> None:
        self._discard()

    def _discard(self) -> None:
        if self._incoming is not None:
            self._incoming.discard()
            self._incoming = None


def install_upload_handler(request: HttpRequest) -> DatasetUploadHandler:
    handler = DatasetUploadHandler(request, max_bytes=max_upload_bytes())
    request.upload_handlers = [handler]
    return handler

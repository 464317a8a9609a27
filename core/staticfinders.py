"""Serves plotly.js from the installed plotly package, so its version always matches the
Python side that builds the figures and no CDN is ever involved."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, overload

import plotly
from django.contrib.staticfiles.finders import AppDirectoriesFinder, BaseFinder
from django.core.checks import CheckMessage
from django.core.files.storage import FileSystemStorage

PLOTLY_STATIC_PATH = "vendor/plotly.min.js"
_SOURCE_DIR = Path(plotly.__file__).resolve().parent / "package_data"


class PlotlyFinder(BaseFinder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=str(_SOURCE_DIR))

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        return []

    @overload
    def find(self, path: str, find_all: Literal[False] = False, **kwargs: Any) -> str: ...
    @overload
    def find(self, path: str, find_all: Literal[True], **kwargs: Any) -> list[str]: ...
    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        if path != PLOTLY_STATIC_PATH:
            return [] if find_all else ""
        match = str(_SOURCE_DIR / "plotly.min.js")
        return [match] if find_all else match

    def list(
        self, ignore_patterns: Iterable[str] | None
    ) -> Iterator[tuple[str, FileSystemStorage]]:
        # collectstatic copies storage.path(name) to the same name in STATIC_ROOT, so the
        # storage is rooted so that the vendored name resolves to the package file.
        yield PLOTLY_STATIC_PATH, _PrefixedStorage(self.storage)


class _PrefixedStorage(FileSystemStorage):
    def __init__(self, inner: FileSystemStorage) -> None:
        super().__init__(location=inner.location)

    def path(self, name: str) -> str:
        return (
            str(_SOURCE_DIR / "plotly.min.js") if name == PLOTLY_STATIC_PATH else super().path(name)
        )

    def open(self, name: str, mode: str = "rb") -> Any:
        return super().open("plotly.min.js" if name == PLOTLY_STATIC_PATH else name, mode)


class AppFilesFinder(AppDirectoriesFinder):
    """The apps' static files for collectstatic, without what no page loads: django-ninja's
    ReDoc bundle (the API docs page is swagger-ui) and swagger-ui's 2 MB source map (nothing
    refers to it). Each would be hashed and compressed at every deploy."""

    NOT_COLLECTED = ("redoc.standalone.js", "redoc.standalone.js.map", "swagger-ui-bundle.js.map")

    def list(
        self, ignore_patterns: Iterable[str] | None
    ) -> Iterator[tuple[str, FileSystemStorage]]:
        yield from super().list([*(ignore_patterns or []), *self.NOT_COLLECTED])

"""Cursor paging that always ends, whatever a provider answers.

OpenAI's lists page with ``after=<last id>`` and ``has_more``. A provider (or a proxy, or a
mock) that answers every cursor with the same page, repeats a cursor, or sends items without
ids would otherwise be asked forever. Every list Tuneboard walks (a job's events and
checkpoints, a connection's jobs) goes through ``paginate``: it yields each item once, and
stops with a ``PagingError`` when the cursor repeats or cannot be read, when a page brings
nothing new, or after ``max_pages`` pages that all said ``has_more``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

from jobs.providers.errors import ProviderError
from jobs.providers.records import Page


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=HasId)


class PagingError(ProviderError):
    """The provider's list did not end: ``str()`` says which list, how far, and why.

    Not transient: asking again gets the same answer, so callers record it and back off."""


class PageBudget:
    """Pages one piece of work may still request, shared by the lists it walks (a sync reads
    events, then checkpoints, under one cap)."""

    def __init__(self, pages: int, *, setting: str = "SYNC_MAX_PAGES") -> None:
        self.total = max(1, pages)
        self.left = self.total
        self.setting = setting


def paginate(
    fetch: Callable[[str | None], Page[T]],
    *,
    what: str,
    budget: PageBudget,
) -> Iterator[T]:
    """Every item of the list ``fetch(after)`` pages through, each id once, in the order
    served. The caller may stop early (a sync stops at the newest event it already has)."""
    seen: set[str] = set()
    cursors: set[str | None] = set()
    after: str | None = None
    pages = 0
    while True:
        if budget.left <= 0:
            raise PagingError(
                f"Paging through {what} stopped after {budget.total} pages, all saying more "
                f"was to come (the cap per sync is {budget.setting}={budget.total})."
            )
        budget.left -= 1
        cursors.add(after)
        page = fetch(after)
        pages += 1
        fresh = []
        for item in page.data:  # a page may hold an id twice, too
            if item.id not in seen:
                seen.add(item.id)
                fresh.append(item)
        yield from fresh
        if not page.has_more or not page.data:
            return
        if not fresh:
            raise PagingError(
                f"The provider's list of {what} did not advance: page {pages} "
                f"(after={after!r}) repeated only items already read; paging stopped."
            )
        after = page.data[-1].id or None
        if after is None:
            raise PagingError(
                f"The provider's list of {what} cannot go on: the last item of page {pages} "
                "has no id to continue after; paging stopped."
            )
        if after in cursors:
            raise PagingError(
                f"The provider's list of {what} did not advance: page {pages} pointed back "
                f"to the cursor {after!r} already read; paging stopped."
            )

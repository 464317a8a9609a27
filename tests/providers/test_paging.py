"""The one paginator every provider list goes through: it yields each item once and always ends.
Pages are handed to it as plain records (its input), nothing of ours is replaced."""

from __future__ import annotations

import pytest

from jobs.providers import EventInfo, Page
from jobs.providers.paging import PageBudget, PagingError, paginate


def event(event_id: str) -> EventInfo:
    return EventInfo(id=event_id, created_at=1, level="info", message="", type="message", data={})


def pages(*answers: tuple[list[str], bool]) -> tuple[list[str | None], object]:
    """A fetch answering with ``answers`` in turn (the last one forever); records cursors."""
    asked: list[str | None] = []

    def fetch(after: str | None) -> Page[EventInfo]:
        ids, has_more = answers[min(len(asked), len(answers) - 1)]
        asked.append(after)
        return Page(data=[event(i) for i in ids], has_more=has_more)

    return asked, fetch


def ids(fetch: object, budget: int = 100) -> list[str]:
    return [e.id for e in paginate(fetch, what="events", budget=PageBudget(budget))]  # type: ignore[arg-type]


def test_follows_the_cursor_to_the_end() -> None:
    asked, fetch = pages((["a", "b"], True), (["c"], True), (["d"], False))
    assert ids(fetch) == ["a", "b", "c", "d"]
    assert asked == [None, "b", "c"]


def test_an_empty_page_ends_the_list_even_with_has_more() -> None:
    asked, fetch = pages((["a"], True), ([], True))
    assert ids(fetch) == ["a"]
    assert len(asked) == 2


def test_the_same_page_again_stops_with_an_error() -> None:
    asked, fetch = pages((["a", "b"], True))
    items = paginate(fetch, what="events of ftjob-1", budget=PageBudget(100))  # type: ignore[arg-type]
    assert [next(items).id, next(items).id] == ["a", "b"]
    with pytest.raises(PagingError, match="events of ftjob-1 did not advance"):
        next(items)
    assert asked == [None, "b"]


def test_a_cursor_pointing_back_stops_with_an_error() -> None:
    asked, fetch = pages((["a", "b"], True), (["c", "b"], True), (["d", "c"], True))
    # Page two brings "c" (new) but ends on "b" again: its cursor was already followed.
    with pytest.raises(PagingError, match="pointed back"):
        ids(fetch)
    assert asked == [None, "b"]


def test_an_item_without_id_cannot_be_continued_after() -> None:
    asked, fetch = pages((["a", ""], True))
    with pytest.raises(PagingError, match="no id"):
        ids(fetch)
    assert len(asked) == 1


def test_duplicates_within_a_page_are_yielded_once() -> None:
    _, fetch = pages((["a", "a", "b"], False))
    assert ids(fetch) == ["a", "b"]


def test_the_budget_caps_pages_across_lists() -> None:
    counter = iter(range(10_000))

    def endless(after: str | None) -> Page[EventInfo]:
        return Page(data=[event(f"e{next(counter)}")], has_more=True)

    budget = PageBudget(7)
    with pytest.raises(PagingError, match="SYNC_MAX_PAGES=7"):
        list(paginate(endless, what="events", budget=budget))
    # What the first list used is gone for the next one.
    with pytest.raises(PagingError, match="after 7 pages"):
        list(paginate(endless, what="checkpoints", budget=budget))
    assert next(counter) == 7


def test_stopping_early_asks_for_no_more_pages() -> None:
    asked, fetch = pages((["a", "b"], True), (["c"], False))
    for item in paginate(fetch, what="events", budget=PageBudget(10)):  # type: ignore[arg-type]
        if item.id == "a":
            break
    assert asked == [None]

"""Walks the whole URLconf with hostile numbers: ids beyond any integer column in the path and
out-of-range or odd query values (dates at the end of the calendar, 30-digit numbers,
superscript digits that ``str.isdigit`` accepts and ``int`` refuses). No page answers 500."""

from __future__ import annotations

import re

import pytest

from tests.foundation.test_urlconf_login_required import PUBLIC, all_urls
from tests.permissions import client_for

pytestmark = pytest.mark.django_db

HUGE = "9" * 30
OUTSIDE = (*PUBLIC, re.compile(r"^/admin/"), re.compile(r"^/accounts/logout/"))
NAMES = (
    "page", "after", "after_step", "dataset", "connection", "job", "from", "provider", "creator",
    "created_from", "created_to", "line", "n", "smoothing", "col", "sort", "baseline", "runs",
)  # fmt: skip
VALUES = (HUGE, "-" + HUGE, "²", "9999-12-31", "0001-01-01", "1e308", "nan", "\x00")


@pytest.mark.parametrize("value", VALUES)
def test_no_page_fails_on_hostile_numbers(value: str) -> None:
    client = client_for("staff")
    query = "&".join(f"{name}={value}" for name in NAMES)
    failures = []
    for url in all_urls():
        if any(p.match(url) for p in OUTSIDE):
            continue
        for target in {url, re.sub(r"/1(?=/|\.|$)", f"/{HUGE}", url)}:
            try:
                status = client.get(f"{target}?{query}").status_code
            except Exception as exc:  # the test client re-raises what the view raised
                failures.append(f"GET {target}?…{value!r}: {type(exc).__name__}: {exc}"[:300])
                continue
            if status >= 500:
                failures.append(f"GET {target}?…{value!r}: {status}")
    assert not failures, "\n".join(failures)


def test_whole_number() -> None:
    from core.params import MAX_ID, whole_number

    assert whole_number("0") == 0 and whole_number("42") == 42
    assert whole_number(str(MAX_ID)) == MAX_ID
    for bad in ("", "²", "٣", "-1", "1.5", " 1", str(MAX_ID + 1), HUGE, None, 7):
        assert whole_number(bad) is None, bad
    assert whole_number("11", maximum=10) is None

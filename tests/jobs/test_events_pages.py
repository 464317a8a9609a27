"""Events beyond the newest 200 (issue 14, item 13): the job page links to older events, and
each older page links on by a cursor, without JavaScript, until the first event."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from jobs.models import JobEvent
from jobs.selectors import EVENTS_SHOWN
from jobs.services import connection_save
from tests.jobs.test_views import DEAD_URL, SECRET, add_events, make_job
from tests.permissions import LOGIN, assert_matrix, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def job():  # type: ignore[no-untyped-def]
    connection = connection_save(name="Offline", kind="sandbox", base_url=DEAD_URL, api_key=SECRET)
    return make_job(connection, None)


def _messages(html: str) -> list[str]:
    return re.findall(r'<td class="jb-wrap">([^<]*)</td>', html)


def _older_link(html: str) -> str | None:
    found = re.search(r'<a id="events-older" href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_every_event_is_reachable_once_through_older_pages(job) -> None:  # type: ignore[no-untyped-def]
    add_events(job, 2 * EVENTS_SHOWN + 50)
    # Ties on the timestamp are ordered by id, like the job page orders them.
    same = timezone.now() - timezone.timedelta(days=1)
    JobEvent.objects.filter(pk__in=JobEvent.objects.filter(job=job).order_by("created_at")
                            .values("pk")[:5]).update(created_at=same)  # fmt: skip
    viewer = client_for("viewer")
    html = viewer.get(f"/jobs/{job.pk}/").content.decode()
    seen = _messages(html)
    assert len(seen) == EVENTS_SHOWN
    link = _older_link(html)
    pages = 0
    while link:
        html = viewer.get(link).content.decode()
        # An event arriving meanwhile shifts nothing: the cursor is an event, not an offset.
        add_events(job, 1, start=10_000 + pages)
        seen += _messages(html)
        link = _older_link(html)
        pages += 1
    assert pages == 2
    assert "The last event above is the job's first." in html
    expected = list(
        JobEvent.objects.filter(job=job, provider_event_id__regex=r"-\d{1,3}$")
        .order_by("-created_at", "-id")
        .values_list("message", flat=True)
    )
    assert seen == expected and len(seen) == 2 * EVENTS_SHOWN + 50


def test_older_pages_keep_the_level_filter(job) -> None:  # type: ignore[no-untyped-def]
    add_events(job, EVENTS_SHOWN + 3, level="warn")
    add_events(job, 10, level="info", start=EVENTS_SHOWN + 3)
    viewer = client_for("viewer")
    html = viewer.get(f"/jobs/{job.pk}/", {"level": "warn"}).content.decode()
    link = _older_link(html)
    assert link is not None and "level=warn" in link
    older = viewer.get(link).content.decode()
    assert len(_messages(older)) == 3 and _older_link(older) is None
    assert _older_link(viewer.get(f"/jobs/{job.pk}/").content.decode()) is not None


def test_a_short_history_has_no_older_link(job) -> None:  # type: ignore[no-untyped-def]
    add_events(job, 5)
    assert _older_link(client_for("viewer").get(f"/jobs/{job.pk}/").content.decode()) is None


def test_bad_cursors_are_refused_not_500(job) -> None:  # type: ignore[no-untyped-def]
    other = make_job(job.connection, None)
    (foreign,) = add_events(other, 1)
    viewer = client_for("viewer")
    for before in ("", "abc", "-1", "1e3", "99999999999999999999999999", str(foreign.pk)):
        response = viewer.get(f"/jobs/{job.pk}/events/", {"before": before})
        assert response.status_code == 404, before
        assert "start again from the job" in response.content.decode()
    assert viewer.get(f"/jobs/{job.pk}/events/", {"before": "1", "level": "<x>"}).status_code == 404


def test_older_events_permission_matrix(job) -> None:  # type: ignore[no-untyped-def]
    (event,) = add_events(job, 1)
    url = f"/jobs/{job.pk}/events/?before={event.pk}"
    assert_matrix(url, {"anonymous": LOGIN, "norole": 403, "viewer": 200, "member": 200,
                        "staff": 200})  # fmt: skip
    assert_matrix(url, {"member": 405}, method="post")
    assert_matrix("/jobs/00000000-0000-0000-0000-000000000001/events/?before=1", {"viewer": 404})

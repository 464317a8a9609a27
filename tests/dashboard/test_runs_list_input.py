"""Hostile query strings on the runs list and the other dashboard pages: out-of-range dates
and numbers are refused with a message (the rest of the filters still apply), never a 500."""

from __future__ import annotations

import pytest
from django.utils import timezone

from jobs.models import Job
from tests.permissions import client_for

pytestmark = pytest.mark.django_db

HUGE = "9" * 30


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("created_to=9999-12-31", "created_to"),
        ("created_from=9999-12-31", "created_from"),
        ("created_from=0001-01-01", "created_from"),
        ("created_to=0001-01-01", "created_to"),
        (f"provider={HUGE}", "provider"),
        (f"dataset={HUGE}", "dataset"),
        (f"creator={HUGE}", "creator"),
        ("provider=9223372036854775808", "provider"),
        ("creator=-1", "creator"),
    ],
)
def test_out_of_range_filters_refused_with_a_message(query: str, field: str) -> None:
    response = client_for("viewer").get(f"/?{query}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Ignored invalid filter values" in page and f"{field} (" in page


def test_refused_filter_leaves_the_others_applied(make_job) -> None:  # type: ignore[no-untyped-def]
    kept = make_job(status="succeeded")
    make_job(status="failed")
    response = client_for("viewer").get("/?status=succeeded&created_to=9999-12-31")
    page = response.content.decode()
    assert response.status_code == 200 and "Ignored invalid filter values" in page
    assert str(kept.pk) in page
    assert Job.objects.count() == 2 and page.count('data-run="') == 1


def test_dates_at_the_edges_of_the_range_work(make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job(status="succeeded")
    today = timezone.localdate()
    response = client_for("viewer").get("/?created_from=1970-01-01&created_to=9998-12-31")
    page = response.content.decode()
    assert "Ignored invalid filter values" not in page and str(job.pk) in page
    assert today.year < 9998


@pytest.mark.parametrize(
    "query",
    [f"page={HUGE}", "page=-5", "page=abc", "sort=nope&dir=sideways", "q=" + "x" * 5000],
)
def test_other_list_parameters_never_fail(query: str) -> None:
    assert client_for("viewer").get(f"/?{query}").status_code == 200


def test_sorting_by_cost_with_an_empty_catalog_is_not_a_500(make_job) -> None:  # type: ignore[no-untyped-def]
    from datasets.models import BaseModel

    job = make_job(status="succeeded")
    BaseModel.objects.all().delete()
    page = client_for("viewer").get("/?sort=cost&dir=desc")
    assert page.status_code == 200
    assert f'href="/jobs/{job.pk}/"' in page.content.decode()

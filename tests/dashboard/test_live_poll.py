"""Issue 14, item 5: one poll of the job page brings everything it shows — status, progress,
events, the status-dependent sections, the charts' new points and the diagnosis — all as of
the same step, even when a sync has stored newer points meanwhile."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from jobs import metrics
from jobs.models import Job
from tests.dashboard.conftest import curve
from tests.permissions import client_for

pytestmark = pytest.mark.django_db


def test_one_poll_reports_one_step(make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job(steps=40, status="running", trained_tokens=None, finished_at=None,
                   fine_tuned_model="", last_synced_at=timezone.now())  # fmt: skip
    assert job.last_step == 40
    # A sync is storing steps 41-60 while the page polls: the points are in, the job row
    # (status, last step) not yet.
    metrics.upsert(job.pk, [curve(step, total=60) for step in range(41, 61)])
    viewer = client_for("viewer")
    data = viewer.get(f"/jobs/{job.pk}/live.json", {"after_step": 30}).json()
    assert data["status"] == "running" and data["progress"]["last_step"] == 40
    charts = data["charts"]
    assert [p["step"] for p in charts["points"]] == list(range(31, 41))
    assert charts["last_step"] == 40 and charts["status"] == "running"
    assert "Fit diagnosis" in charts["diagnosis_html"]
    # The sections come in the same answer (the page has no key yet) and show that status.
    sections = data["sections_html"]
    assert re.search(r'id="job-status" data-status="running"', sections)
    assert "Latest training loss" in sections and "Planned cost" in sections
    key = data["sections_key"]

    # The next poll, with the page's key: nothing changed in the sections, so none are sent.
    again = viewer.get(f"/jobs/{job.pk}/live.json", {"after_step": 40, "sections": key}).json()
    assert "sections_html" not in again and again["charts"]["points"] == []
    assert "diagnosis_html" not in again["charts"]  # nothing moved: not recomputed

    # The sync commits: step 60, succeeded. The next poll brings all of it together.
    Job.objects.filter(pk=job.pk).update(
        status="succeeded", last_step=60, trained_tokens=1_000_000,
        finished_at=timezone.now(), last_synced_at=timezone.now(),
    )  # fmt: skip
    done = viewer.get(f"/jobs/{job.pk}/live.json", {"after_step": 40, "sections": key}).json()
    assert done["status"] == "succeeded" and done["terminal"] is True
    assert done["progress"]["last_step"] == 60 == done["charts"]["last_step"]
    assert [p["step"] for p in done["charts"]["points"]] == list(range(41, 61))
    assert 'data-status="succeeded"' in done["sections_html"]
    assert "Final training loss" in done["sections_html"] and "$3.00" in done["sections_html"]
    assert done["sections_key"] != key


def test_without_charts_the_poll_sends_none(make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job(steps=5, status="running", finished_at=None)
    data = client_for("viewer").get(f"/jobs/{job.pk}/live.json").json()
    assert "charts" not in data
    bad = client_for("viewer").get(f"/jobs/{job.pk}/live.json", {"after_step": "x"})
    assert bad.status_code == 400


def test_figures_stop_at_the_step_the_page_shows(make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job(steps=40, status="running", finished_at=None)
    viewer = client_for("viewer")
    capped = viewer.get(f"/runs/{job.pk}/figures.json", {"up_to_step": 25}).json()
    assert capped["last_step"] == 25
    assert viewer.get(f"/runs/{job.pk}/figures.json").json()["last_step"] == 40
    assert viewer.get(f"/runs/{job.pk}/figures.json", {"up_to_step": "-1"}).status_code == 400
    # A finished run is drawn whole, whatever the page asks.
    Job.objects.filter(pk=job.pk).update(status="succeeded", finished_at=timezone.now())
    done = viewer.get(f"/runs/{job.pk}/figures.json", {"up_to_step": 25}).json()
    assert done["last_step"] == 40

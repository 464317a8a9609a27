"""Imports fed answers the sandbox never gives (tests/support/oddprovider.py): one odd job never
stops the import of the others, and a job listing that never advances ends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection as db

from jobs import bundles
from jobs.history import import_now
from jobs.models import ImportRun, Job, JobEvent, ProviderConnection
from jobs.services import connection_save
from tests.history.test_bundles import GOOD_JOB, _bundle
from tests.support.oddprovider import CREATED, OddProvider, event_object, job_object, list_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def odd() -> Iterator[OddProvider]:
    server = OddProvider()
    yield server
    server.close()


@pytest.fixture
def odd_connection(odd: OddProvider, settings: Any) -> ProviderConnection:
    settings.PROVIDER_MAX_RETRIES = 0
    return connection_save(
        name="Odd", kind="openai", base_url=odd.base_url, api_key="sk-odd-provider-key-1234"
    )


def run_import(connection: ProviderConnection) -> ImportRun:
    return import_now(connection=connection, user=None, max_failures=1, sleep=lambda s: None)


def test_an_unknown_long_status_does_not_stop_the_import(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    odd.add_job("ftjob-a", status="succeeded", finished_at=CREATED + 10)
    odd.add_job("ftjob-b", status="awaiting_safety_evaluation")
    odd.add_job("ftjob-c", status="succeeded", finished_at=CREATED + 30)
    odd.events["ftjob-c"] = [event_object("ftevent-c1", "The job has successfully completed")]
    run = run_import(odd_connection)
    assert run.status == "succeeded", run.last_error
    assert run.jobs_done == run.jobs_total == 3
    statuses = dict(Job.objects.values_list("provider_job_id", "status"))
    assert statuses == {
        "ftjob-a": "succeeded",
        "ftjob-b": "awaiting_safety_evaluation",
        "ftjob-c": "succeeded",
    }
    assert JobEvent.objects.filter(job__provider_job_id="ftjob-c").count() == 1
    unknown = Job.objects.get(provider_job_id="ftjob-b")
    assert unknown.next_poll_at is not None and not unknown.is_terminal


def test_an_imported_job_without_finished_at_gets_no_invented_time(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    odd.add_job("ftjob-old", status="succeeded", finished_at=None)
    run = run_import(odd_connection)
    assert run.status == "succeeded", run.last_error
    job = Job.objects.get(provider_job_id="ftjob-old")
    assert job.status == "succeeded" and job.finished_at is None


def test_a_job_listing_that_never_advances_ends(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    page = [job_object(f"ftjob-{i}", "succeeded", finished_at=CREATED + i) for i in range(3)]
    odd.routes["fine_tuning/jobs"] = lambda query: (200, list_body(page, True))
    for item in page:
        odd.jobs[item["id"]] = item
    run = run_import(odd_connection)
    assert odd.count("GET fine_tuning/jobs?") == 2
    assert run.status == "succeeded"
    assert run.jobs_total == 3 and Job.objects.count() == 3
    assert run.errors == 1 and "did not advance" in run.last_error


def test_a_job_whose_sync_fails_unexpectedly_does_not_stop_the_import(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    odd.add_job("ftjob-first", status="succeeded", finished_at=CREATED + 10)
    odd.events["ftjob-first"] = [event_object("ftevent-f1", "refuse me")]
    odd.add_job("ftjob-second", status="succeeded", finished_at=CREATED + 20)
    odd.events["ftjob-second"] = [event_object("ftevent-s1", "fine")]
    with db.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION odd_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.message = 'refuse me' THEN RAISE EXCEPTION 'row refused by a test trigger';
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER odd_refuse BEFORE INSERT ON jobs_jobevent
            FOR EACH ROW EXECUTE FUNCTION odd_refuse();
            """
        )
    run = run_import(odd_connection)
    assert run.status == "succeeded", run.last_error
    assert run.jobs_done == 2 and run.errors == 1
    assert "row refused by a test trigger" in run.last_error
    first = Job.objects.get(provider_job_id="ftjob-first")
    assert "row refused by a test trigger" in first.last_sync_error
    assert JobEvent.objects.filter(job__provider_job_id="ftjob-second").count() == 1


def test_a_bundle_keeps_an_unknown_long_status(tmp_path: Path) -> None:
    job = {**GOOD_JOB, "status": "awaiting_safety_evaluation"}
    path = tmp_path / "b.zip"
    path.write_bytes(_bundle(**{"jobs.jsonl": json.dumps(job).encode() + b"\n"}))
    assert bundles.bundle_import(source=path, actor=None).jobs_created == 1
    assert Job.objects.get().status == "awaiting_safety_evaluation"

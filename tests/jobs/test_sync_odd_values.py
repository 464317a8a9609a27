"""Syncs fed answers the sandbox never gives (tests/support/oddprovider.py): lists whose cursor
never advances, unknown statuses, missing fields, NUL characters, NaN. Each sync ends, stores
what can be stored, and records on the job whatever went wrong."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection as db
from django.utils import timezone

from jobs.models import Checkpoint, Job, JobEvent, MetricPoint, ProviderConnection
from jobs.services import connection_save
from jobs.sync import job_sync
from tests.permissions import client_for
from tests.support.oddprovider import (
    CREATED,
    OddProvider,
    checkpoint_object,
    error_body,
    event_object,
    list_body,
    metrics_event,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def odd() -> Iterator[OddProvider]:
    server = OddProvider()
    yield server
    server.close()


@pytest.fixture
def odd_connection(odd: OddProvider, settings: Any) -> ProviderConnection:
    settings.PROVIDER_MAX_RETRIES = 0
    settings.POLL_INTERVAL = 10
    return connection_save(
        name="Odd", kind="openai", base_url=odd.base_url, api_key="sk-odd-provider-key-1234"
    )


def tracked(connection: ProviderConnection, provider_job_id: str, **fields: Any) -> Job:
    defaults: dict[str, Any] = {
        "connection": connection,
        "provider_job_id": provider_job_id,
        "base_model": "gpt-4o-mini-2024-07-18",
        "status": "running",
        "next_poll_at": timezone.now(),
    }
    defaults.update(fields)
    return Job.objects.create(**defaults)


def repeating(body: dict[str, Any]) -> Any:
    """A list endpoint answering every ``after=`` with the same page."""
    return lambda query: (200, body)


def assert_backed_off(job: Job, failures: int = 1) -> None:
    job.refresh_from_db()
    assert job.poll_failures == failures
    # POLL_INTERVAL (10 s) × 2^failures, ±20 %: well after the sync.
    assert job.next_poll_at is not None
    assert (job.next_poll_at - timezone.now()).total_seconds() > 10


# --- paging always terminates -------------------------------------------------------------------


def test_events_answering_every_cursor_with_the_same_page_end_the_sync(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    odd.add_job("ftjob-loop")
    page = [event_object(f"ftevent-{i}", f"event {i}", CREATED + 3 - i) for i in range(3)]
    odd.routes["fine_tuning/jobs/ftjob-loop/events"] = repeating(list_body(page, True))
    job = tracked(odd_connection, "ftjob-loop", last_sync_error="stale")
    outcome = job_sync(job_id=job.pk)
    assert outcome.ran and "did not advance" in outcome.error
    assert odd.count("ftjob-loop/events") == 2  # the first page, and its repeat
    job.refresh_from_db()
    assert "did not advance" in job.last_sync_error and "events" in job.last_sync_error
    assert_backed_off(job)
    assert job.status == "running"
    page = client_for("viewer").get(f"/jobs/{job.pk}/").content.decode()
    assert "Last sync failed" in page and "did not advance" in page


def test_checkpoints_answering_every_cursor_with_the_same_page_end_the_sync(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    odd.add_job("ftjob-ckloop", status="succeeded", finished_at=CREATED + 100)
    page = [checkpoint_object(f"ftckpt-{s}", "ftjob-ckloop", s) for s in (30, 20, 10)]
    odd.routes["fine_tuning/jobs/ftjob-ckloop/checkpoints"] = repeating(list_body(page, True))
    job = tracked(odd_connection, "ftjob-ckloop")
    outcome = job_sync(job_id=job.pk)
    assert "did not advance" in outcome.error
    assert odd.count("ftjob-ckloop/checkpoints") == 2
    job.refresh_from_db()
    assert "checkpoints" in job.last_sync_error
    assert_backed_off(job)


def test_a_cursor_that_always_advances_stops_at_the_page_cap(
    odd: OddProvider, odd_connection: ProviderConnection, settings: Any
) -> None:
    settings.SYNC_MAX_PAGES = 5
    odd.add_job("ftjob-endless")
    pages = iter(range(1_000_000))

    def endless(query: dict[str, str]) -> tuple[int, Any]:
        n = next(pages)
        return 200, list_body([event_object(f"ftevent-{n}", f"event {n}", CREATED)], True)

    odd.routes["fine_tuning/jobs/ftjob-endless/events"] = endless
    job = tracked(odd_connection, "ftjob-endless")
    outcome = job_sync(job_id=job.pk)
    assert "SYNC_MAX_PAGES" in outcome.error
    assert odd.count("ftjob-endless/events") == 5
    job.refresh_from_db()
    assert "5 pages" in job.last_sync_error
    assert_backed_off(job)


# --- odd values -----------------------------------------------------------------------------------


def test_an_unknown_long_status_is_stored_as_it_comes_and_still_polled(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    odd.add_job("ftjob-safety", status="awaiting_safety_evaluation")
    job = tracked(odd_connection, "ftjob-safety")
    outcome = job_sync(job_id=job.pk)
    assert outcome.error == ""
    job.refresh_from_db()
    assert job.status == "awaiting_safety_evaluation"
    assert not job.is_terminal and job.next_poll_at is not None and job.last_sync_error == ""
    page = client_for("viewer").get(f"/jobs/{job.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-status="awaiting_safety_evaluation"' in html
    assert "awaiting_safety_evaluation</span>" in html
    assert "Tuneboard does not know this status" in html
    live = client_for("viewer").get(f"/jobs/{job.pk}/live.json").json()
    assert live["status_display"] == "awaiting_safety_evaluation" and not live["terminal"]
    # Then it finishes: an ordinary terminal status again.
    odd.jobs["ftjob-safety"].update(status="succeeded", finished_at=CREATED + 500)
    job_sync(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.finished_at == datetime.fromtimestamp(
        CREATED + 500, tz=UTC
    )


def test_checkpoints_404_while_the_job_answers_is_not_lost(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    odd.add_job("ftjob-nockpt")
    odd.events["ftjob-nockpt"] = [metrics_event("ftevent-1", 1, 10, train_loss=0.9)]
    odd.routes["fine_tuning/jobs/ftjob-nockpt/checkpoints"] = lambda q: (
        404,
        error_body("Not found", code="not_found"),
    )
    job = tracked(odd_connection, "ftjob-nockpt")
    outcome = job_sync(job_id=job.pk)
    assert outcome.error == ""
    job.refresh_from_db()
    assert job.status == "running" and job.next_poll_at is not None
    assert JobEvent.objects.filter(job=job).count() == 1
    assert MetricPoint.objects.get(job=job).train_loss == 0.9
    # Only a 404 on the job itself means the provider lost it.
    del odd.jobs["ftjob-nockpt"]
    job_sync(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "lost"


def test_the_same_checkpoint_twice_in_one_page(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    odd.add_job("ftjob-twice", status="succeeded", finished_at=CREATED + 100)
    first = checkpoint_object("ftckpt-a", "ftjob-twice", 10)
    again = checkpoint_object(
        "ftckpt-a", "ftjob-twice", 10, metrics={"step": 10, "train_loss": 0.4}
    )
    odd.checkpoints["ftjob-twice"] = [first, again, checkpoint_object("ftckpt-b", "ftjob-twice", 5)]
    job = tracked(odd_connection, "ftjob-twice")
    outcome = job_sync(job_id=job.pk)
    assert outcome.error == ""
    assert sorted(
        Checkpoint.objects.filter(job=job).values_list("provider_checkpoint_id", "step")
    ) == [
        ("ftckpt-a", 10),
        ("ftckpt-b", 5),
    ]


def test_an_event_without_created_at_keeps_its_place(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    odd.add_job("ftjob-notime")
    newest = event_object("ftevent-3", "newest", CREATED + 30)
    timeless = event_object("ftevent-2", "no time")
    del timeless["created_at"]
    oldest = event_object("ftevent-1", "Fine-tuning job started", CREATED + 10)
    odd.events["ftjob-notime"] = [newest, timeless, oldest]
    job = tracked(odd_connection, "ftjob-notime")
    outcome = job_sync(job_id=job.pk)
    assert outcome.error == ""
    stored = dict(JobEvent.objects.filter(job=job).values_list("provider_event_id", "created_at"))
    assert len(stored) == 3
    # Placed with the event before it, not at "now" (which would list it as the newest).
    assert stored["ftevent-2"] == datetime.fromtimestamp(CREATED + 10, tz=UTC)
    job.refresh_from_db()
    assert job.started_at == datetime.fromtimestamp(CREATED + 10, tz=UTC)


def test_nul_characters_are_stored_without_failing(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    odd.add_job("ftjob-nul", error={"code": "x\x00y", "message": "bad\x00", "param": None})
    odd.events["ftjob-nul"] = [
        event_object(
            "ftevent-nul", "before\x00after", data={"note\x00": "a\x00b", "n": [1, "\x00"]}
        )
    ]
    job = tracked(odd_connection, "ftjob-nul")
    outcome = job_sync(job_id=job.pk)
    assert outcome.error == ""
    event = JobEvent.objects.get(job=job)
    assert event.message == "before\ufffdafter"
    assert event.data == {"note\ufffd": "a\ufffdb", "n": [1, "\ufffd"]}
    job.refresh_from_db()
    assert job.error["message"] == "bad\ufffd"


def test_nan_and_infinity_in_event_data_and_metrics(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    nan, inf = float("nan"), float("inf")
    odd.add_job(
        "ftjob-nan",
        hyperparameters={"n_epochs": 3, "learning_rate_multiplier": nan},
    )
    odd.events["ftjob-nan"] = [
        metrics_event("ftevent-2", 2, inf, train_loss=nan, valid_loss=0.7),
        metrics_event("ftevent-1", 1, 10, train_loss=inf, train_mean_token_accuracy=0.5),
    ]
    odd.checkpoints["ftjob-nan"] = [
        checkpoint_object("ftckpt-1", "ftjob-nan", 1, metrics={"step": 1, "train_loss": -inf})
    ]
    job = tracked(odd_connection, "ftjob-nan")
    outcome = job_sync(job_id=job.pk)
    assert outcome.error == ""
    data = dict(JobEvent.objects.filter(job=job).values_list("provider_event_id", "data"))
    assert data["ftevent-2"] == {
        "step": 2,
        "total_steps": None,
        "train_loss": None,
        "valid_loss": 0.7,
    }
    points = {p.step: p for p in MetricPoint.objects.filter(job=job)}
    assert points[1].train_loss is None and points[1].train_accuracy == 0.5
    assert points[2].valid_loss == 0.7
    job.refresh_from_db()
    assert job.total_steps == 10
    assert job.hyperparameters["learning_rate_multiplier"] is None
    assert Checkpoint.objects.get(job=job).metrics == {"step": 1.0}


def test_a_checkpoint_without_step_number(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    odd.add_job("ftjob-nostep", status="succeeded", finished_at=CREATED + 100)
    from_metrics = checkpoint_object("ftckpt-m", "ftjob-nostep", 20)
    del from_metrics["step_number"]
    from_name = checkpoint_object("ftckpt-n", "ftjob-nostep", 10, metrics={})
    from_name["step_number"] = None
    nameless = checkpoint_object("ftckpt-x", "ftjob-nostep", 5, metrics={})
    del nameless["step_number"], nameless["fine_tuned_model_checkpoint"]
    odd.checkpoints["ftjob-nostep"] = [from_metrics, from_name, nameless]
    job = tracked(odd_connection, "ftjob-nostep")
    outcome = job_sync(job_id=job.pk)
    assert outcome.error == ""
    steps = dict(Checkpoint.objects.filter(job=job).values_list("provider_checkpoint_id", "step"))
    assert steps == {"ftckpt-m": 20, "ftckpt-n": 10}


def test_a_finished_job_without_finished_at_gets_no_invented_time(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    odd.add_job("ftjob-nofinish", status="succeeded", finished_at=None)
    job = tracked(odd_connection, "ftjob-nofinish", status="succeeded", origin="imported")
    job_sync(job_id=job.pk, full=True)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.finished_at is None


# --- every failed sync is recorded and backs off -----------------------------------------------


def test_a_sync_failing_for_a_non_provider_reason_records_it_and_backs_off(
    odd: OddProvider, odd_connection: ProviderConnection
) -> None:
    odd.add_job("ftjob-refused")
    odd.events["ftjob-refused"] = [event_object("ftevent-1", "refuse me")]
    # The database itself refuses the row: a failure no provider error describes.
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
    job = tracked(odd_connection, "ftjob-refused", last_sync_error="an old provider error")
    outcome = job_sync(job_id=job.pk)
    assert outcome.ran and "row refused by a test trigger" in outcome.error
    job.refresh_from_db()
    assert "row refused by a test trigger" in job.last_sync_error
    assert_backed_off(job)
    assert JobEvent.objects.filter(job=job).count() == 0
    outcome = job_sync(job_id=job.pk)
    assert_backed_off(job, failures=2)


def test_a_nan_or_infinite_loss_is_reported_by_its_step_and_never_stored() -> None:
    from jobs import metrics

    assert metrics.non_finite_loss_step({"step": 7, "train_loss": float("nan")}) == 7
    assert metrics.non_finite_loss_step({"step": 8, "full_valid_loss": "-inf"}) == 8
    assert metrics.non_finite_loss_step({"step": 9, "train_loss": 1.2,
                                         "train_accuracy": float("nan")}) is None  # fmt: skip
    assert metrics.non_finite_loss_step({"step": "x", "train_loss": float("nan")}) is None
    rows = metrics.csv_mappings("step,train_loss,valid_loss\n1,0.5,\n2,nan,0.7\n")
    assert [metrics.non_finite_loss_step(r) for r in rows] == [None, 2]
    assert [metrics.row_from_mapping(r) for r in rows] == [
        {"step": 1, "train_loss": 0.5, "extra": {}},
        {"step": 2, "valid_loss": 0.7, "extra": {}},
    ]

from __future__ import annotations

import pytest
from django.test import Client

from config.celery import app
from core.models import Heartbeat, TaskProbe
from core.services import probe_request
from tests.conftest import stop_process, wait_until
from tests.permissions import make_user


def test_registered_task_names_snapshot() -> None:
    app.loader.import_default_modules()
    names = sorted(name for name in app.tasks if not name.startswith("celery."))
    assert names == [
        "core.tasks.probe_complete",
        "core.tasks.work_reap",
        "core.tasks.worker_heartbeat",
        "dashboard.tasks.run_diagnosis_refresh_task",
        "datasets.tasks.dataset_validate",
        "evals.tasks.evaluation_run_task",
        "jobs.tasks.catalog_refresh_task",
        "jobs.tasks.catalogs_refresh_all",
        "jobs.tasks.guardrail_act_task",
        "jobs.tasks.import_run_task",
        "jobs.tasks.job_control_task",
        "jobs.tasks.job_launch_task",
        "jobs.tasks.job_sync_task",
        "jobs.tasks.notification_send_task",
        "jobs.tasks.poll_due_jobs",
        "jobs.tasks.price_quote_task",
        "jobs.tasks.sweep_advance_task",
        "jobs.tasks.sweeps_advance_due",
        "sandbox.tasks.webhook_deliver",
    ]


def test_configuration_is_strict_and_json_only() -> None:
    conf = app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit == 600 and conf.task_soft_time_limit == 540
    assert {q.name for q in conf.task_queues} == {"default", "polling", "validation", "provider"}
    scheduled = {entry["task"] for entry in conf.beat_schedule.values()}
    assert {"core.tasks.worker_heartbeat", "core.tasks.work_reap"} <= scheduled
    assert "jobs.tasks.catalogs_refresh_all" in scheduled
    # Longer than any task may run (no second delivery of a running task).
    assert conf.broker_transport_options["visibility_timeout"] == conf.task_time_limit + 60


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("core.tasks.probe_complete", "default"),
        ("core.tasks.worker_heartbeat", "default"),
        ("core.tasks.work_reap", "default"),
        ("jobs.tasks.job_sync_task", "provider"),
        ("jobs.tasks.job_launch_task", "provider"),
        ("jobs.tasks.import_run_task", "provider"),
        ("jobs.tasks.job_control_task", "provider"),
        ("evals.tasks.evaluation_run_task", "provider"),
        ("jobs.tasks.notification_send_task", "default"),
        ("jobs.tasks.poll_due_jobs", "polling"),
        ("datasets.tasks.dataset_validate", "validation"),
    ],
)
def test_routing(task: str, queue: str) -> None:
    route = app.amqp.router.route({}, task)
    assert route["queue"].name == queue


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_consumes_task_through_broker(celery_worker: str) -> None:
    user = make_user("member")
    probe = probe_request(user=user)  # enqueued on commit: autocommit commits at once
    assert wait_until(lambda: TaskProbe.objects.get(pk=probe.pk).completed_at is not None)
    probe.refresh_from_db()
    assert probe.worker == celery_worker
    assert probe.round_trip_seconds is not None and probe.round_trip_seconds >= 0


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_probe_from_the_page_round_trips(celery_worker: str) -> None:
    client = Client()
    client.force_login(make_user("member"))
    assert client.post("/system/probe/").status_code == 302
    assert wait_until(lambda: TaskProbe.objects.filter(completed_at__isnull=False).count() == 1)
    page = client.get("/system/")
    assert f"done by {celery_worker}".encode() in page.content


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_beat_heartbeat_reaches_healthz(celery_worker: str, spawn) -> None:  # type: ignore[no-untyped-def]
    assert Client().get("/healthz").status_code == 503
    beat = spawn("beat")
    # Beat records its own tick; the worker runs the heartbeat task beat sends.
    assert wait_until(
        lambda: Heartbeat.objects.filter(name__in=("beat", "worker")).count() == 2, timeout=30
    )
    stop_process(beat.process)
    response = Client().get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["beat"]["ok"] is True and response.json()["workers"]["ok"] is True

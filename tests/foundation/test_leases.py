"""Leases on background work (core/leases.py): who may claim a row, who is dead, what the
reaper sends again and what the health check calls stuck. A second database session plays
the other worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from core import leases
from core.services import heartbeat_record, work_reap
from datasets.models import Dataset
from tests.datasets.helpers import chat_file, create_dataset
from tests.leases import foreign_owner
from tests.permissions import client_for

pytestmark = pytest.mark.django_db
Status = Dataset.Status


@pytest.fixture(autouse=True)
def _media(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")


def held_by(dataset: Dataset, owner: str, *, expires_in: float = 60) -> None:
    Dataset.objects.filter(pk=dataset.pk).update(
        status=Status.VALIDATING,
        lease_owner=owner,
        lease_expires_at=timezone.now() + timedelta(seconds=expires_in),
        lease_heartbeat_at=timezone.now(),
    )


def claim(dataset: Dataset) -> bool:
    return leases.lease_claim(Dataset.objects.filter(pk=dataset.pk), progress_bytes=7)


def test_owner_id_names_this_session_and_its_lock_is_held() -> None:
    me = leases.lease_owner()
    assert me == leases.lease_owner()  # one id per session
    assert leases.owners_alive([me]) == {me}
    assert leases.owner_describe(me).endswith(f"/{__import__('os').getpid()}")


def test_a_live_owner_keeps_its_work_a_dead_one_loses_it() -> None:
    dataset = create_dataset(chat_file(5))
    with foreign_owner() as other:
        held_by(dataset, other.owner)
        assert leases.owners_alive([other.owner]) == {other.owner}
        assert claim(dataset) is False
        assert Dataset.objects.get(pk=dataset.pk).lease_owner == other.owner
        other.die()
        assert leases.owners_alive([other.owner]) == set()
        assert claim(dataset) is True
    row = Dataset.objects.get(pk=dataset.pk)
    assert row.lease_owner == leases.lease_owner() and row.progress_bytes == 7
    assert row.lease_expires_at > timezone.now()


def test_an_expired_lease_is_taken_over_even_from_a_live_owner() -> None:
    dataset = create_dataset(chat_file(5))
    with foreign_owner() as other:
        held_by(dataset, other.owner, expires_in=-1)
        assert claim(dataset) is True


def test_queued_and_own_work_is_claimable_renewal_needs_the_lease() -> None:
    dataset = create_dataset(chat_file(5))  # queued by the upload: no owner
    assert Dataset.objects.get(pk=dataset.pk).lease_owner == ""
    assert claim(dataset) is True
    assert claim(dataset) is True  # this session's own
    rows = Dataset.objects.filter(pk=dataset.pk)
    assert leases.lease_renew(rows) is True
    with foreign_owner() as other:
        held_by(dataset, other.owner)
        assert leases.lease_renew(rows) is False


def test_reaper_sends_again_work_of_dead_owners_and_expired_work_once_per_lease() -> None:
    sent: list[tuple[str, tuple]] = []

    def send(task: str, args) -> None:  # type: ignore[no-untyped-def]
        sent.append((task, tuple(args)))

    queued = create_dataset(chat_file(5), "queued.jsonl")
    expired = create_dataset(chat_file(6), "expired.jsonl")
    orphan = create_dataset(chat_file(7), "orphan.jsonl")
    alive = create_dataset(chat_file(8), "alive.jsonl")
    Dataset.objects.filter(pk=expired.pk).update(lease_expires_at=timezone.now() - timedelta(1))
    with foreign_owner() as dead, foreign_owner() as live:
        held_by(orphan, dead.owner)
        held_by(alive, live.owner)
        dead.die()
        requeued = leases.work_reap(send=send)
        assert {(r.pk, r.reason) for r in requeued} == {
            (expired.pk, "expired"),
            (orphan.pk, "owner dead"),
        }
        validate = "datasets.tasks.dataset_validate"
        assert sorted(sent) == sorted(
            (validate, (d.pk, d.requested_model_id)) for d in (expired, orphan)
        )
        assert Dataset.objects.get(pk=orphan.pk).lease_owner == ""  # free for the next claim
        assert Dataset.objects.get(pk=alive.pk).lease_owner == live.owner
        assert leases.work_reap(send=send) == []  # moved on by a lease: not sent twice
    assert queued.pk not in {r.pk for r in requeued}


def test_reaper_task_service_enqueues_through_the_broker() -> None:
    dataset = create_dataset(chat_file(5))
    Dataset.objects.filter(pk=dataset.pk).update(lease_expires_at=None)
    assert [(r.kind, r.pk) for r in work_reap()] == [("validation", dataset.pk)]


def test_healthz_and_system_page_report_work_stuck_longer_than_its_time_limit(
    settings,  # type: ignore[no-untyped-def]
) -> None:
    heartbeat_record(name="beat")
    heartbeat_record(name="worker")
    dataset = create_dataset(chat_file(5), "slow.jsonl")
    assert Client().get("/healthz").json()["work"] == {"ok": True}
    long_ago = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 5)
    with foreign_owner() as other:
        held_by(dataset, other.owner)
        Dataset.objects.filter(pk=dataset.pk).update(lease_heartbeat_at=long_ago)
        response = Client().get("/healthz")
        assert response.status_code == 503
        work = response.json()["work"]
        assert work["ok"] is False and work["stuck"] == {"validation": 1}
        assert work["oldest_seconds"] >= settings.CELERY_TASK_TIME_LIMIT
        page = client_for("viewer").get("/system/").content.decode()
        assert "Dataset validation" in page and f"dataset “slow” (#{dataset.pk})" in page
        assert "elsewhere/4242" in page
    Dataset.objects.filter(pk=dataset.pk).update(status=Status.VALID)
    assert Client().get("/healthz").status_code == 200


def test_reaper_never_launches_a_job_that_came_from_an_export_bundle(settings) -> None:  # type: ignore[no-untyped-def]
    from jobs.models import Job, ProviderConnection

    connection = ProviderConnection.objects.create(
        name="Elsewhere", kind="sandbox", base_url="http://127.0.0.1:9/v1"
    )
    dataset = create_dataset(chat_file(5))
    Dataset.objects.filter(pk=dataset.pk).update(status=Status.VALID)
    common = {"connection": connection, "base_model": "gpt-4o-mini", "training_dataset": dataset}
    bundled = Job.objects.create(origin=Job.Origin.BUNDLE, status="pending", **common)
    ours = Job.objects.create(origin=Job.Origin.LAUNCHED, status="pending", **common)
    sent: list[tuple[str, tuple]] = []
    leases.work_reap(send=lambda task, args: sent.append((task, tuple(args))))
    assert ("jobs.tasks.job_launch_task", (str(ours.pk),)) in sent
    assert all(str(bundled.pk) not in args for _, args in sent)

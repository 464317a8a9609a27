"""Deleting a fine-tuned model: a 404 means "already deleted" only when the provider says the
model does not exist, not for a 404 from some other route an odd model id reached."""

from __future__ import annotations

import pytest

from core.models import AuditEntry
from jobs.models import Job, ProviderConnection
from jobs.services import JobError, job_delete_model

pytestmark = pytest.mark.django_db(transaction=True)


def finished(connection: ProviderConnection, model: str) -> Job:
    return Job.objects.create(
        connection=connection, provider_job_id=f"ftjob-{abs(hash(model))}",
        base_model="gpt-4o-mini-2024-07-18", status="succeeded", fine_tuned_model=model,
    )  # fmt: skip


def test_a_404_from_another_route_is_not_a_deletion(sandbox_connection: ProviderConnection) -> None:
    # Suffixes like this are refused at launch now; a job imported from elsewhere may hold one.
    job = finished(sandbox_connection, "ft:gpt-4o-mini-2024-07-18:org:../../files:Zk29QmLa")
    with pytest.raises(JobError, match="The provider refused to delete the model") as refused:
        job_delete_model(job=job, user=None)
    assert "HTTP 404" in str(refused.value) and "unknown_url" in str(refused.value)
    assert Job.objects.get(pk=job.pk).model_deleted_at is None
    assert not AuditEntry.objects.filter(action="model_deleted").exists()


def test_a_model_the_provider_does_not_know_counts_as_deleted(
    sandbox_connection: ProviderConnection,
) -> None:
    job = finished(sandbox_connection, "ft:gpt-4o-mini-2024-07-18:org:gone:Zk29QmLa")
    job_delete_model(job=job, user=None)
    assert Job.objects.get(pk=job.pk).model_deleted_at is not None
    assert AuditEntry.objects.filter(action="model_deleted").count() == 1

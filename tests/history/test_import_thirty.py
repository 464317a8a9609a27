"""A connection holding thirty jobs in mixed states (succeeded with and without validation
files, failed, cancelled, paused, and two whose training file the provider deleted): one import
stores everything exactly once, a second adds nothing and changes nothing."""

from __future__ import annotations

from collections import Counter

import pytest

from datasets.models import Dataset
from jobs import history as history_service
from jobs.models import Checkpoint, ImportedFile, Job, JobEvent, MetricPoint
from tests.history.helpers import (
    assert_matches_provider,
    make_large_history,
    provider_view,
    settle_datasets,
    sha,
    snapshot,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_thirty_jobs_in_mixed_states_import_exactly_once(sandbox_connection, sdk) -> None:  # type: ignore[no-untyped-def]
    large = make_large_history(sdk)
    assert len(large.all) == len(set(large.all)) == 30

    run = history_service.import_now(connection=sandbox_connection, user=None)
    assert run.status == "succeeded", run.last_error
    assert run.jobs_total == run.jobs_done == run.jobs_created == 30
    # Six live files downloaded once each although 26 jobs use them; the deleted one is
    # recorded once as missing although two jobs name it.
    assert (run.files_downloaded, run.files_missing, run.errors) == (6, 1, 0)
    missing = ImportedFile.objects.get(provider_file_id=large.deleted_file)
    assert missing.status == "missing" and missing.dataset is None

    assert (
        Counter(Job.objects.values_list("status", flat=True))
        == {status: len(jobs) for status, jobs in large.by_status.items()}
        == {"succeeded": 21, "failed": 4, "cancelled": 3, "paused": 2}
    )
    # Per job: status, every event, every checkpoint and every results row, once.
    assert_matches_provider(sandbox_connection)
    theirs = provider_view(sandbox_connection)
    assert JobEvent.objects.count() == sum(p.events for p in theirs.values())
    assert Checkpoint.objects.count() == sum(len(p.checkpoints) for p in theirs.values())
    assert MetricPoint.objects.filter(job__status="succeeded").count() == sum(
        p.result_steps for p in theirs.values() if p.status == "succeeded"
    )
    assert not Job.objects.filter(status="succeeded", checkpoints__isnull=True).exists()

    live = {fid: content for fid, content in large.files.items() if fid != large.deleted_file}
    assert sorted(Dataset.objects.values_list("sha256", flat=True)) == sorted(
        sha(c) for c in live.values()
    )
    jobs = {j.provider_job_id: j for j in Job.objects.all()}
    for job_id in large.all:
        job = jobs[job_id]
        if job.training_file_id == large.deleted_file:
            assert job.training_dataset_id is None
        else:
            assert job.training_dataset.sha256 == sha(live[job.training_file_id])
        if job.validation_file_id:
            assert job.validation_dataset.sha256 == sha(live[job.validation_file_id])
    assert sum(1 for j in jobs.values() if j.validation_dataset_id) == 7
    settle_datasets()
    assert set(Dataset.objects.values_list("status", flat=True)) == {"valid"}

    before = snapshot()
    again = history_service.import_now(connection=sandbox_connection, user=None)
    assert again.status == "succeeded"
    assert (again.jobs_total, again.jobs_done, again.jobs_created) == (30, 30, 0)
    assert (again.files_downloaded, again.files_missing, again.errors) == (0, 0, 0)
    after = snapshot()
    changed = {
        (after["jobs"][k]["status"], f)
        for k, row in before["jobs"].items()
        for f, v in row.items()
        if after["jobs"][k][f] != v
    }
    # Paused jobs are alive at the provider, so the import looked at them again (and found
    # nothing new); that is all that moved. Finished jobs were not touched at all.
    assert changed <= {("paused", "last_synced_at"), ("paused", "next_poll_at")}
    for k, row in before["jobs"].items():
        if row["status"] == "paused":
            for moved in ("last_synced_at", "next_poll_at"):
                row[moved] = after["jobs"][k][moved]
    assert after == before  # otherwise not one row added or changed

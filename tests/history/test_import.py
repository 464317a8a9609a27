"""Importing a connection's history from the sandbox over real HTTP: everything the provider
lists arrives once, files become deduplicated datasets, a deleted file is recorded as missing,
a second import only adds what is new, and outages or concurrent imports leave no duplicates."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from core.models import AuditEntry
from datasets.models import Dataset
from jobs import history as history_service
from jobs.locks import AdvisoryLock
from jobs.models import ImportedFile, ImportRun, Job, Notification, ProviderFile
from jobs.services import JobError, LaunchRequest, connection_archive, job_launch, job_launch_run
from jobs.sync import job_sync
from tests.history.helpers import (
    Elsewhere,
    History,
    assert_matches_provider,
    settle_datasets,
    sha,
    snapshot,
)
from tests.permissions import make_user
from tests.sandbox.data import chat_examples, jsonl

pytestmark = pytest.mark.django_db(transaction=True)


def test_import_command_brings_in_the_whole_history(
    sandbox_connection, history: History, capsys
) -> None:  # type: ignore[no-untyped-def]
    sandbox_connection.notify_emails = "ops@example.com"  # someone who would be told
    sandbox_connection.save()
    call_command("import_jobs", connection="Sandbox")
    assert "succeeded" in capsys.readouterr().out
    run = ImportRun.objects.get()
    assert run.status == "succeeded" and run.started_by is None and run.finished_at
    assert run.jobs_total == run.jobs_done == run.jobs_created == len(history.all) == 6
    # train, valid and other are downloaded once each although five jobs use them.
    assert (run.files_downloaded, run.files_missing, run.errors) == (3, 1, 0)

    assert_matches_provider(sandbox_connection)
    jobs = {j.provider_job_id: j for j in Job.objects.select_related("training_dataset")}
    statuses = {j.status for j in jobs.values()}
    assert statuses == {"succeeded", "failed", "cancelled"}
    for job in jobs.values():
        assert job.origin == "imported" and job.created_by is None and job.name == ""
        assert job.display_name == job.provider_job_id
        assert job.created_at == job.provider_created_at  # the runs list orders by it
        assert job.notified_status == job.status  # finished history is not announced
    assert not Notification.objects.exists()

    first, second, third = (jobs[i] for i in history.succeeded)
    assert first.suffix == "hist" and first.seed == 1 and first.fine_tuned_model
    assert first.hyperparameters["n_epochs"] and first.best_full_valid_loss is not None
    assert first.training_dataset.sha256 == sha(history.files[first.training_file_id])
    assert first.validation_dataset.sha256 == sha(history.files[first.validation_file_id])
    assert second.training_dataset_id == first.training_dataset_id  # deduplicated by sha256
    assert third.hyperparameters["n_epochs"] == 2
    assert Dataset.objects.count() == 3
    assert {d.sha256 for d in Dataset.objects.all()} == {
        sha(c) for f, c in history.files.items() if f != history.deleted_file
    }
    # Validation was queued like an upload's; run it here (a worker may be doing it too).
    settle_datasets()
    assert set(Dataset.objects.values_list("status", flat=True)) == {"valid"}

    missing = jobs[history.deleted_file_job]
    assert missing.status == "succeeded" and missing.training_dataset is None
    record = ImportedFile.objects.get(provider_file_id=history.deleted_file)
    assert record.status == "missing" and "404" in record.error
    # Files Tuneboard now holds are known to the connection for later launches.
    assert ProviderFile.objects.filter(connection=sandbox_connection).count() == 3

    actions = list(
        AuditEntry.objects.filter(object_type="providerconnection")
        .order_by("at", "id")
        .values_list("action", flat=True)
    )
    assert actions[-2:] == ["import_requested", "import_succeeded"]


def test_second_import_only_adds_what_is_new(sandbox_connection, history: History, sdk) -> None:  # type: ignore[no-untyped-def]
    first = history_service.import_now(connection=sandbox_connection, user=None)
    assert first.status == "succeeded"
    settle_datasets()
    before = snapshot()

    again = history_service.import_now(connection=sandbox_connection, user=None)
    assert again.status == "succeeded" and again.pk != first.pk
    assert (again.jobs_total, again.jobs_done, again.jobs_created) == (6, 6, 0)
    assert (again.files_downloaded, again.files_missing, again.errors) == (0, 0, 0)
    assert snapshot() == before  # not one row added or changed, ids and updated_at included

    # A new job at the provider: only it (and its new file) arrive.
    new_file = sdk.files.create(
        file=("new.jsonl", io.BytesIO(jsonl(chat_examples(9, seed=11)))), purpose="fine-tune"
    ).id
    new_job = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=new_file).id
    sdk.fine_tuning.jobs.retrieve(new_job)
    third = history_service.import_now(connection=sandbox_connection, user=None)
    assert (third.jobs_total, third.jobs_created, third.files_downloaded) == (7, 1, 1)
    after = snapshot()
    for key in ("events", "checkpoints", "metrics"):
        assert set(before[key]) <= set(after[key])
    for job_id, row in before["jobs"].items():
        assert after["jobs"][job_id] == row
    assert Job.objects.get(provider_job_id=new_job).training_dataset is not None
    assert_matches_provider(sandbox_connection)


def test_outage_mid_import_then_rerun_completes_without_duplicates(
    settings, sandbox, sandbox_connection, history: History
) -> None:  # type: ignore[no-untyped-def]
    settings.PROVIDER_MAX_RETRIES = 0
    # The provider fails every request about the third job (oldest first) until it recovers.
    third = history.succeeded[2]
    sandbox.control("faults", {"kinds": ["503"], "path": third})
    with pytest.raises(CommandError, match="503"):
        call_command("import_jobs", connection="Sandbox", max_failures=1)
    failed = ImportRun.objects.get()
    assert failed.status == "failed" and "503" in failed.last_error
    assert failed.jobs_done == 2 and failed.jobs_total == 6
    # The jobs listed before the outage are stored; the third one is not synced yet.
    assert Job.objects.count() == 6
    assert Job.objects.get(provider_job_id=third).last_synced_at is None

    sandbox.control("faults", method="DELETE")
    call_command("import_jobs", connection="Sandbox")
    rerun = ImportRun.objects.order_by("-pk").first()
    assert rerun.status == "succeeded" and rerun.jobs_created == 0
    # What the failed run stored is not fetched again.
    assert failed.files_downloaded + rerun.files_downloaded == 3
    assert_matches_provider(sandbox_connection)
    assert Dataset.objects.count() == 3 and ImportedFile.objects.count() == 4


def test_one_import_per_connection(sandbox_connection, history: History) -> None:  # type: ignore[no-untyped-def]
    member = make_user("member")
    run = history_service.import_request(connection=sandbox_connection, user=member, enqueue=False)
    again = history_service.import_request(
        connection=sandbox_connection, user=member, enqueue=False
    )
    assert again.pk == run.pk and ImportRun.objects.count() == 1  # resumed, not doubled
    assert list(
        AuditEntry.objects.filter(action__startswith="import_").values_list("action", flat=True)
    ) == ["import_resumed", "import_requested"]
    with pytest.raises(IntegrityError), transaction.atomic():
        ImportRun.objects.create(connection=sandbox_connection)  # the database refuses too

    # While another process holds the connection's import lock, a step does nothing.
    with Elsewhere(history_service.IMPORT_LOCK, sandbox_connection.pk):
        assert history_service.import_step(run_id=run.pk).state == "busy"
        assert ImportRun.objects.get(pk=run.pk).status == "queued"
    assert history_service.import_step(run_id=run.pk, budget=None).state == "done"
    run.refresh_from_db()
    assert run.status == "succeeded" and Job.objects.count() == 6
    # A duplicate or late task for a finished run changes nothing.
    assert history_service.import_step(run_id=run.pk).state == "done"
    assert ImportRun.objects.get(pk=run.pk).jobs_done == 6
    with AdvisoryLock(history_service.IMPORT_LOCK, sandbox_connection.pk) as free:
        assert free  # and the step released the lock


def test_steps_resume_where_the_budget_ended(sandbox_connection, history: History) -> None:  # type: ignore[no-untyped-def]
    run = history_service.import_request(connection=sandbox_connection, user=None, enqueue=False)
    steps = []
    while True:
        step = history_service.import_step(run_id=run.pk, budget=0.0)
        steps.append(step.state)
        if step.state == "done":
            break
    run.refresh_from_db()
    # Listing happens first, then one job per step (the budget is spent after each one).
    assert steps.count("continue") == 5 and run.status == "succeeded"
    assert_matches_provider(sandbox_connection)


def test_import_is_refused_for_unusable_connections(sandbox_connection) -> None:  # type: ignore[no-untyped-def]
    connection_archive(connection=sandbox_connection, actor=None)
    with pytest.raises(JobError, match="archived"):
        history_service.import_request(connection=sandbox_connection, user=None)
    with pytest.raises(CommandError, match="archived"):
        call_command("import_jobs", connection="Sandbox")
    with pytest.raises(CommandError, match="no connection named"):
        call_command("import_jobs", connection="Nope")
    assert not ImportRun.objects.exists()


def test_archiving_during_an_import_stops_it(sandbox_connection, history: History) -> None:  # type: ignore[no-untyped-def]
    run = history_service.import_request(connection=sandbox_connection, user=None, enqueue=False)
    assert history_service.import_step(run_id=run.pk, budget=0.0).state == "continue"
    connection_archive(connection=sandbox_connection, actor=None)
    assert history_service.import_step(run_id=run.pk).state == "done"
    run.refresh_from_db()
    assert run.status == "failed" and "archived" in run.last_error


def test_jobs_launched_here_are_not_imported_twice(
    sandbox_connection, history: History, make_dataset
) -> None:  # type: ignore[no-untyped-def]
    member = make_user("member")
    dataset = make_dataset(chat_examples(12, seed=21))
    job = job_launch(
        request=LaunchRequest(
            connection=sandbox_connection, base_model="gpt-4o-mini", training_dataset=dataset
        ),
        user=member,
    )
    job_launch_run(job_id=job.pk)  # a worker may have done it already: the launch is idempotent
    job.refresh_from_db()
    assert job.provider_job_id
    job_sync(job_id=job.pk)
    job_sync(job_id=job.pk)
    history_service.import_now(connection=sandbox_connection, user=None)
    assert Job.objects.filter(provider_job_id=job.provider_job_id).count() == 1
    job.refresh_from_db()
    assert job.origin == "launched" and job.created_by == member
    assert job.training_dataset_id == dataset.pk  # the uploaded file is known by its sha256
    assert Job.objects.filter(origin="imported").count() == 6
    assert_matches_provider(sandbox_connection)


def test_launch_that_gave_up_is_adopted(sandbox_connection, make_dataset) -> None:  # type: ignore[no-untyped-def]
    dataset = make_dataset(chat_examples(12, seed=22))
    job = job_launch(
        request=LaunchRequest(
            connection=sandbox_connection, base_model="gpt-4o-mini", training_dataset=dataset
        ),
        user=None,
    )
    job_launch_run(job_id=job.pk)
    job.refresh_from_db()
    provider_id = job.provider_job_id
    # As if the launch task had given up after the provider created the job.
    Job.objects.filter(pk=job.pk).update(
        provider_job_id=None, status="launch_failed", launch_error="timed out"
    )
    history_service.import_now(connection=sandbox_connection, user=None)
    job.refresh_from_db()
    assert job.provider_job_id == provider_id and job.status == "succeeded"
    assert job.launch_error == "" and Job.objects.count() == 1

"""Export bundles: a connection's complete archive streamed as a zip, and its import into an
empty Tuneboard giving back the same runs (numbers, events, checkpoints, metrics, datasets);
importing twice changes nothing; damaged or foreign files are refused without a 500."""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from core.models import AuditEntry
from datasets.models import Dataset
from datasets.services import dataset_create_from_upload, dataset_delete
from jobs import bundles, curvestore
from jobs.history import import_now
from jobs.models import (
    Checkpoint,
    ImportedFile,
    ImportRun,
    Job,
    JobEvent,
    MetricPoint,
    ProviderConnection,
    ProviderFile,
)
from jobs.reduction import LEVELS
from tests.history.helpers import History, settle_datasets
from tests.permissions import LOGIN, assert_matrix, client_for

pytestmark = pytest.mark.django_db(transaction=True)

SUMMARY_FIELDS = (
    "provider_job_id", "name", "notes", "tags", "status", "base_model", "model", "method",
    "hyperparameters", "requested_hyperparameters", "suffix", "seed", "fine_tuned_model",
    "trained_tokens", "error", "result_files", "training_file_id", "validation_file_id",
    "created_at", "provider_created_at", "started_at", "finished_at", "total_steps", "last_step",
    "final_train_loss", "best_full_valid_loss", "best_full_valid_step", "archived",
    "provider_status",
)  # fmt: skip


def runs_as_numbers() -> dict[str, Any]:
    """Everything a run's pages show, keyed by job id (database ids of rows left out)."""
    runs = {}
    for job in Job.objects.select_related("connection", "training_dataset", "validation_dataset"):
        row = {name: getattr(job, name) for name in SUMMARY_FIELDS}
        row["connection"] = job.connection.name
        row["training"] = job.training_dataset.sha256 if job.training_dataset else None
        row["validation"] = job.validation_dataset.sha256 if job.validation_dataset else None
        row["events"] = list(
            JobEvent.objects.filter(job=job)
            .order_by("provider_event_id")
            .values_list("provider_event_id", "created_at", "level", "type", "message", "data")
        )
        row["checkpoints"] = list(
            Checkpoint.objects.filter(job=job)
            .order_by("provider_checkpoint_id")
            .values_list("provider_checkpoint_id", "step", "model_name", "metrics", "created_at")
        )
        row["metrics"] = list(
            MetricPoint.objects.filter(job=job)
            .order_by("step")
            .values("step", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy",
                    "full_valid_loss", "full_valid_accuracy", "extra")
        )  # fmt: skip
        # What the charts draw: ingested by syncs before the export, rebuilt by the import.
        row["curves"] = {level: curvestore.read([job.pk], level)[str(job.pk)] for level in LEVELS}
        runs[str(job.pk)] = row
    return runs


def live_pages(client: Any) -> dict[str, Any]:
    pages = {}
    for job_id in Job.objects.values_list("pk", flat=True):
        data = client.get(f"/jobs/{job_id}/live.json").json()
        for event in data.pop("events"):
            event.pop("id")
            pages.setdefault(str(job_id), []).append(event)
        data.pop("last_event_id")
        # The page's sections as HTML (links carry this database's ids) and their key: the
        # numbers they show are compared above through the runs list and here as JSON.
        data.pop("sections_html")
        data.pop("sections_key")
        pages[f"{job_id}:summary"] = data
    return pages


def download(client: Any, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, url
    assert response.streaming and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="tuneboard-')
    return b"".join(response.streaming_content)


def flush_everything() -> None:
    """What another, empty Tuneboard has: no jobs, datasets (nor their files) or connections."""
    Job.objects.all().delete()
    for model in (ImportRun, ImportedFile, ProviderFile):
        model.objects.all().delete()
    for dataset in Dataset.objects.all():
        dataset_delete(dataset=dataset)
    ProviderConnection.objects.all().delete()


def test_round_trip_through_a_bundle(sandbox_connection, history: History, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import_now(connection=sandbox_connection, user=None)
    settle_datasets()
    Job.objects.filter(provider_job_id=history.succeeded[0]).update(
        name="<b>first</b>", notes="keep me", tags=["kept", "ü"]
    )
    before = runs_as_numbers()
    reader = client_for("viewer")
    pages_before = live_pages(reader)
    datasets_before = sorted(Dataset.objects.values_list("sha256", "name", "size", "line_count"))

    content = download(reader, f"/jobs/connections/{sandbox_connection.pk}/export/")
    bundle = tmp_path / "sandbox.zip"
    bundle.write_bytes(content)
    with zipfile.ZipFile(bundle) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["format"] == "tuneboard-bundle" and manifest["version"] == 1
        assert manifest["counts"]["jobs"] == 6 and len(manifest["files"]) == 3
        assert manifest["counts"]["events"] == sum(len(r["events"]) for r in before.values())
        connection_rows = [json.loads(line) for line in zf.read("connections.jsonl").splitlines()]
        assert connection_rows == [
            {
                "name": "Sandbox", "kind": "sandbox", "base_url": sandbox_connection.base_url,
                "organization": "", "project": "", "api_version": "",
            }
        ]  # fmt: skip
        assert b"sk-sandbox" not in zf.read("jobs.jsonl")
    audit = AuditEntry.objects.get(action="bundle_exported")
    assert audit.actor.username == "viewer-user" and audit.detail["jobs"] == 6

    flush_everything()
    assert not Job.objects.exists() and not Dataset.objects.exists()
    call_command("import_bundle", str(bundle))
    settle_datasets()
    assert runs_as_numbers() == before
    assert live_pages(reader) == pages_before
    assert sorted(Dataset.objects.values_list("sha256", "name", "size", "line_count")) == (
        datasets_before
    )
    connection = ProviderConnection.objects.get()
    # Known only from the bundle: archived, without a key, never polled.
    assert connection.archived_at is not None and connection.api_key_encrypted == ""
    assert set(Job.objects.values_list("origin", flat=True)) == {"bundle"}
    assert not Job.objects.filter(next_poll_at__isnull=False).exists()
    for job in Job.objects.all():
        page = reader.get(f"/jobs/{job.pk}/")
        assert page.status_code == 200
        assert "&lt;b&gt;first&lt;/b&gt;" in page.content.decode() or job.name == ""

    # Twice: nothing changes (the upload form this time).
    rows_before = (
        sorted(Job.objects.values_list("pk", flat=True)),
        JobEvent.objects.count(),
        sorted(MetricPoint.objects.values_list("id", flat=True)),
        sorted(Dataset.objects.values_list("id", "updated_at")),
    )
    staff = client_for("staff")
    with bundle.open("rb") as handle:
        response = staff.post("/jobs/bundles/import/", {"bundle": handle}, follow=True)
    assert "0 job(s) imported, 6 already present" in response.content.decode()
    assert rows_before == (
        sorted(Job.objects.values_list("pk", flat=True)),
        JobEvent.objects.count(),
        sorted(MetricPoint.objects.values_list("id", flat=True)),
        sorted(Dataset.objects.values_list("id", "updated_at")),
    )
    assert runs_as_numbers() == before
    assert AuditEntry.objects.filter(action="bundle_imported").count() == 2


def test_export_a_selection_of_runs(sandbox_connection, history: History) -> None:  # type: ignore[no-untyped-def]
    import_now(connection=sandbox_connection, user=None)
    first = Job.objects.get(provider_job_id=history.succeeded[0])
    failed = Job.objects.get(provider_job_id=history.failed[0])
    reader = client_for("viewer")
    content = download(reader, f"/jobs/export/?job={first.pk}&job={failed.pk}&job={first.pk}")
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        jobs = [json.loads(line) for line in zf.read("jobs.jsonl").splitlines()]
        assert {row["id"] for row in jobs} == {str(first.pk), str(failed.pk)}
        events = [json.loads(line) for line in zf.read("events.jsonl").splitlines()]
        assert {row["job"] for row in events} == {str(first.pk), str(failed.pk)}
        assert len(events) == JobEvent.objects.filter(job__in=[first, failed]).count()
        shas = {first.training_dataset.sha256, first.validation_dataset.sha256}
        shas.add(failed.training_dataset.sha256)
        assert {n for n in zf.namelist() if n.startswith("datasets/")} == {
            f"datasets/{s}.jsonl" for s in shas
        }
        for sha256 in shas:
            assert Dataset.objects.get(sha256=sha256).file.read() == zf.read(
                f"datasets/{sha256}.jsonl"
            )

    assert reader.get("/jobs/export/").status_code == 400
    assert reader.get("/jobs/export/?job=not-a-uuid").status_code == 400
    missing = "00000000-0000-0000-0000-000000000009"
    assert reader.get(f"/jobs/export/?job={missing}").status_code == 404
    many = "&".join(f"job={first.pk}" for _ in range(501))
    assert reader.get(f"/jobs/export/?{many}").status_code == 400
    page = reader.get(f"/jobs/{first.pk}/").content.decode()
    assert f'href="/jobs/export/?job={first.pk}"' in page


def test_export_streams_in_chunks(sandbox_connection, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # About 3 MB of incompressible lines: the response arrives in many pieces.
    lines = [json.dumps({"text": secrets.token_hex(500)}).encode() for _ in range(3000)]
    dataset = dataset_create_from_upload(
        upload=SimpleUploadedFile("big.jsonl", b"\n".join(lines) + b"\n"),
        name="big",
        uploaded_by=None,
    ).dataset
    job = Job.objects.create(
        connection=sandbox_connection, base_model="gpt-4o-mini", training_dataset=dataset,
        provider_job_id="ftjob-big", status="succeeded",
    )  # fmt: skip
    response = client_for("member").get(f"/jobs/export/?job={job.pk}")
    chunks = list(response.streaming_content)
    assert len(chunks) >= 8 and max(len(c) for c in chunks) < 1_500_000
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as zf:
        assert zf.read(f"datasets/{dataset.sha256}.jsonl") == dataset.file.read()
        assert zf.testzip() is None


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


MANIFEST = json.dumps({"format": "tuneboard-bundle", "version": 1}).encode()
CONNECTION = b'{"name": "Elsewhere", "kind": "openai", "base_url": "https://api.openai.com/v1"}\n'
GOOD_JOB = {
    "id": "6f1c3c7e-0000-4000-8000-000000000001", "connection": "Elsewhere",
    "status": "succeeded", "created_at": "2025-01-02T03:04:05+00:00", "base_model": "gpt-4o-mini",
}  # fmt: skip


def _bundle(**overrides: bytes) -> bytes:
    members = {
        "manifest.json": MANIFEST,
        "connections.jsonl": CONNECTION,
        "datasets.jsonl": b"",
        "jobs.jsonl": json.dumps(GOOD_JOB).encode() + b"\n",
        "events.jsonl": b"",
        "checkpoints.jsonl": b"",
        "metrics.jsonl": b"",
    }
    members.update(overrides)
    return _zip({k: v for k, v in members.items() if v is not None})


BAD_BUNDLES = {
    "not a zip": (b"just some text", "not a zip archive"),
    "no manifest": (_zip({"jobs.jsonl": b""}), "no manifest.json"),
    "foreign manifest": (_bundle(**{"manifest.json": b'{"format": "other"}'}), "does not describe"),
    "future version": (
        _bundle(**{"manifest.json": b'{"format": "tuneboard-bundle", "version": 99}'}),
        "format version 99",
    ),
    "bad JSON line": (_bundle(**{"jobs.jsonl": b"{nope\n"}), "jobs.jsonl, line 1: not valid JSON"),
    "wrong type": (
        _bundle(**{"jobs.jsonl": json.dumps({**GOOD_JOB, "total_steps": "many"}).encode()}),
        "“total_steps” must be an integer",
    ),
    "unknown connection": (
        _bundle(**{"jobs.jsonl": json.dumps({**GOOD_JOB, "connection": "Nope"}).encode()}),
        "“connection” must be a connection listed",
    ),
    "bad event": (
        _bundle(**{"events.jsonl": json.dumps({"job": GOOD_JOB["id"]}).encode()}),
        "events.jsonl, line 1: “provider_event_id”",
    ),
    "damaged file": (
        _bundle(
            **{
                "datasets.jsonl": json.dumps({"sha256": "a" * 64, "name": "x"}).encode(),
                f"datasets/{'a' * 64}.jsonl": b'{"messages": []}\n',
            }
        ),
        "does not match its SHA-256",
    ),
}


@pytest.mark.parametrize("case", list(BAD_BUNDLES))
def test_bad_bundles_are_refused_with_a_reason(case: str, tmp_path: Path) -> None:
    content, message = BAD_BUNDLES[case]
    staff = client_for("staff")
    response = staff.post("/jobs/bundles/import/", {"bundle": SimpleUploadedFile("b.zip", content)})
    assert response.status_code == 200
    assert message in response.content.decode(), response.content.decode()[-2000:]
    assert not Job.objects.exists() and not JobEvent.objects.exists()
    path = tmp_path / "b.zip"
    path.write_bytes(content)
    with pytest.raises(CommandError):
        call_command("import_bundle", str(path))
    assert not Job.objects.exists()


def test_a_minimal_bundle_imports_once(tmp_path: Path) -> None:
    path = tmp_path / "b.zip"
    path.write_bytes(_bundle())
    outcome = bundles.bundle_import(source=path, actor=None)
    assert (outcome.jobs_created, outcome.connections_created) == (1, 1)
    job = Job.objects.get()
    assert str(job.pk) == GOOD_JOB["id"] and job.created_at.year == 2025
    assert job.notified_status == "succeeded" and job.origin == "bundle"
    again = bundles.bundle_import(source=path, actor=None)
    assert (again.jobs_created, again.jobs_present, again.connections_created) == (0, 1, 0)
    with pytest.raises(CommandError, match="is not a file"):
        call_command("import_bundle", str(tmp_path / "missing.zip"))


def test_bundle_pages_permissions(sandbox_connection) -> None:  # type: ignore[no-untyped-def]
    staff_only = {"anonymous": LOGIN, "norole": 403, "viewer": 403, "member": 403, "staff": 200}
    assert_matrix("/jobs/bundles/import/", staff_only)
    assert_matrix(
        "/jobs/bundles/import/", {**staff_only, "staff": 200}, method="post", data={}
    )  # the empty form comes back with its error
    readers = {"anonymous": LOGIN, "norole": 403, "viewer": 200, "member": 200, "staff": 200}
    assert_matrix(f"/jobs/connections/{sandbox_connection.pk}/export/", readers)
    assert_matrix("/jobs/connections/999999/export/", {"viewer": 404})
    assert_matrix(
        f"/jobs/connections/{sandbox_connection.pk}/export/", {"viewer": 405}, method="post"
    )


def test_export_command(sandbox_connection, history: History, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import_now(connection=sandbox_connection, user=None)
    path = tmp_path / "all.zip"
    call_command("export_bundle", str(path), connection="Sandbox")
    with zipfile.ZipFile(path) as zf:
        assert len(zf.read("jobs.jsonl").splitlines()) == 6
        assert json.loads(zf.read("manifest.json"))["selection"] == {"connection": "Sandbox"}
    one = Job.objects.get(provider_job_id=history.succeeded[2])
    call_command("export_bundle", str(tmp_path / "one.zip"), job=[str(one.pk)])
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        assert [json.loads(x)["id"] for x in zf.read("jobs.jsonl").splitlines()] == [str(one.pk)]
    for kwargs, message in (
        ({}, "either --connection"),
        ({"connection": "Sandbox", "job": [str(one.pk)]}, "either --connection"),
        ({"connection": "Nope"}, "no connection named"),
        ({"job": ["nope"]}, "not valid"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("export_bundle", str(tmp_path / "x.zip"), **kwargs)
    assert AuditEntry.objects.filter(action="bundle_exported").count() == 2

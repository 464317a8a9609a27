"""History at the provider made with the official SDK (as if launched before Tuneboard), what
the provider reports about it, and snapshots of what Tuneboard stored."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import openai
from django.db import connections

from datasets.models import Dataset
from datasets.services import dataset_validate
from jobs.connections import provider_for_connection
from jobs.locks import lock_key
from jobs.models import Checkpoint, ImportedFile, Job, JobEvent, MetricPoint, ProviderConnection
from tests.conftest import wait_until
from tests.sandbox.data import chat_examples, jsonl

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"tuneboard-history-tests-secret!!").decode()


@dataclass
class History:
    """Jobs at the provider, by what happened to them, and the content of their files."""

    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    deleted_file_job: str = ""
    files: dict[str, bytes] = field(default_factory=dict)  # provider file id -> content
    deleted_file: str = ""

    @property
    def all(self) -> list[str]:
        return [*self.succeeded, *self.failed, *self.cancelled, self.deleted_file_job]


def upload(sdk: openai.OpenAI, history: History, content: bytes, name: str) -> str:
    file_id = sdk.files.create(file=(name, io.BytesIO(content)), purpose="fine-tune").id
    history.files[file_id] = content
    return file_id


def make_history(sdk: openai.OpenAI) -> History:
    """Three succeeded jobs (two share a training file, one has a validation file), a failed
    one, a cancelled one, and one whose training file was deleted at the provider since."""
    history = History()
    train = upload(sdk, history, jsonl(chat_examples(12)), "train.jsonl")
    valid = upload(sdk, history, jsonl(chat_examples(10, seed=3)), "valid.jsonl")
    other = upload(sdk, history, jsonl(chat_examples(14, seed=5)), "other.jsonl")
    history.succeeded.append(
        sdk.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=train, validation_file=valid, suffix="hist", seed=1
        ).id
    )
    history.succeeded.append(
        sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=train, seed=2).id
    )
    history.succeeded.append(
        sdk.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=other, hyperparameters={"n_epochs": 2}, seed=3
        ).id
    )
    # Chat data sent as DPO: the provider fails the job when it validates the files.
    history.failed.append(
        sdk.fine_tuning.jobs.create(
            model="gpt-4o-mini",
            training_file=other,
            method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.1}}},
        ).id
    )
    slow = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=train, metadata={"sandbox_seconds_per_step": "5"}
    )
    sdk.fine_tuning.jobs.cancel(slow.id)
    history.cancelled.append(slow.id)
    gone = upload(sdk, history, jsonl(chat_examples(10, seed=9)), "gone.jsonl")
    history.deleted_file_job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=gone
    ).id
    for job_id in history.all:  # reading a job advances the simulation to its end
        sdk.fine_tuning.jobs.retrieve(job_id)
    sdk.files.delete(gone)
    history.deleted_file = gone
    return history


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class ProviderJob:
    status: str
    events: int
    checkpoints: set[str]
    result_steps: int


def provider_view(connection: ProviderConnection) -> dict[str, ProviderJob]:
    """Every job the provider lists, with its events, checkpoints and results rows."""
    provider = provider_for_connection(connection)
    view = {}
    for info in provider.list_jobs(limit=100).data:
        events, after = 0, None
        while True:
            page = provider.list_events(info.id, after=after, limit=100)
            events += len(page.data)
            if not page.has_more:
                break
            after = page.data[-1].id
        checkpoints = {c.id for c in provider.list_checkpoints(info.id, limit=100).data}
        rows = 0
        if info.result_files:
            rows = provider.download_results_csv(info.result_files[0]).count("\n") - 1
        view[info.id] = ProviderJob(info.status, events, checkpoints, rows)
    return view


def assert_matches_provider(connection: ProviderConnection) -> None:
    theirs = provider_view(connection)
    ours = {j.provider_job_id: j for j in Job.objects.filter(connection=connection)}
    assert set(ours) == set(theirs)
    for job_id, provider_job in theirs.items():
        job = ours[job_id]
        assert job.status == provider_job.status, job_id
        assert JobEvent.objects.filter(job=job).count() == provider_job.events, job_id
        assert (
            set(Checkpoint.objects.filter(job=job).values_list("provider_checkpoint_id", flat=True))
            == provider_job.checkpoints
        ), job_id
        points = MetricPoint.objects.filter(job=job).count()
        if provider_job.status == "succeeded":
            assert points == provider_job.result_steps == job.total_steps, job_id
            assert job.final_train_loss is not None and job.trained_tokens, job_id


def settle_datasets() -> None:
    """Validate the imported datasets now (a worker may already be doing it: then wait)."""
    for dataset in Dataset.objects.filter(status=Dataset.Status.UPLOADED):
        dataset_validate(dataset_id=dataset.pk, model_id=dataset.requested_model_id)
    assert wait_until(
        lambda: not Dataset.objects.filter(status__in=("uploaded", "validating")).exists(),
        timeout=60,
    )


def snapshot() -> dict[str, Any]:
    """Everything an import writes, row by row (ids included)."""
    return {
        "jobs": {str(j["id"]): j for j in Job.objects.values()},
        "events": sorted(JobEvent.objects.values_list("id", "job_id", "provider_event_id")),
        "checkpoints": sorted(
            (c.id, c.job_id, c.provider_checkpoint_id, json.dumps(c.metrics, sort_keys=True))
            for c in Checkpoint.objects.all()
        ),
        "metrics": sorted(MetricPoint.objects.values_list("id", "job_id", "step", "train_loss", "valid_loss", "full_valid_loss")),
        "datasets": sorted(Dataset.objects.values_list("id", "sha256", "updated_at", "status")),
        "files": sorted(ImportedFile.objects.values_list("id", "provider_file_id", "status", "dataset_id")),
    }  # fmt: skip


class Receiver:
    """A local HTTP endpoint recording POSTs (Slack-compatible webhooks); answers ``status``."""

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []
        self.received = received
        self.status = 200
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append((dict(self.headers.items()), body))
                self.send_response(owner.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self) -> list[str]:
        return [json.loads(body)["text"] for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Elsewhere:
    """A lock held by another database session (another worker's)."""

    def __init__(self, namespace: str, ident: object) -> None:
        self.key = lock_key(namespace, ident)
        self.connection = connections.create_connection("default")

    def __enter__(self) -> Elsewhere:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [self.key])
        return self

    def __exit__(self, *exc: object) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [self.key])
        self.connection.close()


@dataclass
class LargeHistory:
    """Thirty jobs at the provider in every state a finished or stopped job can be in."""

    by_status: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    deleted_file: str = ""

    @property
    def all(self) -> list[str]:
        return [job for jobs in self.by_status.values() for job in jobs]


def make_large_history(sdk: openai.OpenAI) -> LargeHistory:
    """21 succeeded (varied epochs, some with validation, two whose training file was deleted
    since), 4 failed, 3 cancelled and 2 paused mid-run: 30 jobs over 7 distinct files."""
    history = History()
    trains = [
        upload(sdk, history, jsonl(chat_examples(10 + i, seed=20 + i)), f"t{i}.jsonl")
        for i in range(4)
    ]
    valids = [
        upload(sdk, history, jsonl(chat_examples(10, seed=40 + i)), f"v{i}.jsonl") for i in range(2)
    ]
    gone = upload(sdk, history, jsonl(chat_examples(10, seed=60)), "gone.jsonl")
    create = sdk.fine_tuning.jobs.create
    large = LargeHistory(files=history.files, deleted_file=gone)
    succeeded = large.by_status.setdefault("succeeded", [])
    for i in range(19):
        succeeded.append(
            create(
                model="gpt-4o-mini",
                training_file=trains[i % 4],
                validation_file=valids[i % 2] if i % 3 == 0 else None,
                hyperparameters={"n_epochs": 1 + i % 3},
                suffix=f"h{i}",
                seed=i,
            ).id
        )
    succeeded += [create(model="gpt-4o-mini", training_file=gone, seed=s).id for s in (1, 2)]
    large.by_status["failed"] = [
        create(
            model="gpt-4o-mini",
            training_file=trains[i],
            method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.1}}},
        ).id
        for i in range(4)
    ]
    slow = {"sandbox_seconds_per_step": "0.3"}
    stopped = [
        create(model="gpt-4o-mini", training_file=trains[i % 4], metadata=slow).id for i in range(5)
    ]
    for job_id in stopped[:3]:
        sdk.fine_tuning.jobs.cancel(job_id)
    large.by_status["cancelled"] = stopped[:3]
    # Only a running job can be paused: wait for the queue phase to end. "paused" is outside
    # the SDK's status Literal, so a lenient client reads and pauses these two.
    lenient = sdk.with_options()
    lenient._strict_response_validation = False
    for job_id in stopped[3:]:
        assert wait_until(
            lambda j=job_id: lenient.fine_tuning.jobs.retrieve(j).status == "running", 15
        )
        assert lenient.fine_tuning.jobs.pause(job_id).status == "paused"
    large.by_status["paused"] = stopped[3:]
    for job_id in large.all:  # reading a job advances the simulation to its end
        lenient.fine_tuning.jobs.retrieve(job_id)
    sdk.files.delete(gone)
    return large

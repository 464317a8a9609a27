"""Benchmark: syncing many active jobs, and bulk metric ingest.

    .venv/bin/python bench/sync.py [--jobs 500] [--rows 20000]

Starts its own embedded PostgreSQL under var/bench (unless DATABASE_URL is set), serves the
built-in sandbox from a thread on loopback, creates N running sandbox jobs and reports, in one
run:

- catch-up sync throughput of one worker (jobs/minute, sequential `job_sync` calls);
- provider requests per sync of an idle running job (target ≤ 2) and idle-sync throughput;
- metric ingest rows/s of `jobs.metrics.upsert` (one statement) against row-by-row ORM saves of
  the same rows in the same run (target ≥ 20×).

The sandbox runs in the same process, so its server time is included in the sync figures.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))


def setup(var_dir: Path) -> object:
    from runtime.embedded import EmbeddedServices
    from runtime.supervisor import apply_defaults

    env = dict(os.environ)
    apply_defaults(env)
    env.setdefault("TUNEBOARD_VAR_DIR", str(var_dir))
    env.update(SANDBOX_API_KEYS="sk-bench", SECURE_SSL_REDIRECT="false", DATABASE_CONN_MAX_AGE="0")
    services = EmbeddedServices(var_dir, env)
    services.start()
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    return services


def serve() -> str:
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet)
    server.set_app(WSGIHandler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/sandbox/v1"


def make_jobs(count: int, base_url: str) -> list[object]:
    from jobs.connections import provider_for_connection
    from jobs.models import Job
    from jobs.providers import JobSpec
    from jobs.services import connection_save
    from tests.sandbox.data import chat_examples, jsonl

    connection = connection_save(
        name=f"bench-{time.time():.0f}", kind="sandbox", base_url=base_url, api_key="sk-bench"
    )
    provider = provider_for_connection(connection)
    content = jsonl(chat_examples(20))
    file = provider.upload_file(
        filename="bench.jsonl", stream=io.BytesIO(content), size=len(content)
    )
    rows = []
    for index in range(count):
        info = provider.create_job(
            JobSpec(
                model="gpt-4o-mini", training_file=file.id, seed=index,
                hyperparameters={"n_epochs": 50},
                metadata={"sandbox_seconds_per_step": "2"},
            )
        )  # fmt: skip
        rows.append(
            Job(
                connection=connection,
                provider_job_id=info.id,
                base_model="gpt-4o-mini",
                status=info.status,
            )
        )
    return Job.objects.bulk_create(rows), provider  # type: ignore[return-value]


def sync_all(jobs: list[object]) -> float:
    from jobs.sync import job_sync

    started = time.perf_counter()
    for job in jobs:
        job_sync(job_id=job.pk)  # type: ignore[attr-defined]
    return time.perf_counter() - started


def ingest(rows: int) -> tuple[float, float]:
    from jobs import metrics
    from jobs.models import Job, MetricPoint

    template = Job.objects.first()
    bulk_job = Job.objects.create(connection=template.connection, base_model="bench")  # type: ignore[union-attr]
    orm_job = Job.objects.create(connection=template.connection, base_model="bench")  # type: ignore[union-attr]
    data = [
        {
            "step": s,
            "train_loss": 2.0 / s,
            "train_accuracy": 0.5 + s / (4 * rows),
            "extra": {"lr": 0.1},
        }
        for s in range(1, rows + 1)
    ]
    started = time.perf_counter()
    metrics.upsert(bulk_job.pk, data)
    bulk_rate = rows / (time.perf_counter() - started)
    sample = data[: min(rows, 2000)]  # row-by-row is slow; its rate does not depend on volume
    started = time.perf_counter()
    for row in sample:
        MetricPoint(
            job=orm_job,
            step=row["step"],
            train_loss=row["train_loss"],
            train_accuracy=row["train_accuracy"],
            extra=row["extra"],
        ).save()
    orm_rate = len(sample) / (time.perf_counter() - started)
    return bulk_rate, orm_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    services = setup(BASE_DIR / "var" / "bench")
    try:
        base_url = serve()
        print(f"creating {args.jobs} running sandbox jobs…", flush=True)
        jobs, provider = make_jobs(args.jobs, base_url)
        time.sleep(8)  # let every job start running and accumulate a few steps
        catch_up = sync_all(jobs)
        for job in jobs:
            provider.pause_job(job.provider_job_id)
        sync_all(jobs)  # store the pause and the last steps
        before = provider.request_count
        idle = sync_all(jobs)
        per_idle_sync = (provider.request_count - before) / len(jobs)
        bulk_rate, orm_rate = ingest(args.rows)
        print(
            f"catch-up sync : {len(jobs) / catch_up * 60:8.0f} jobs/min ({catch_up:.1f} s for {len(jobs)} jobs)"
        )
        print(
            f"idle sync     : {len(jobs) / idle * 60:8.0f} jobs/min, {per_idle_sync:.2f} provider requests per sync (target ≤ 2)"
        )
        print(
            f"metric ingest : bulk {bulk_rate:10.0f} rows/s, row-by-row ORM {orm_rate:8.0f} rows/s, ratio {bulk_rate / orm_rate:.1f}× (target ≥ 20×)"
        )
    finally:
        services.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()

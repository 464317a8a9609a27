"""Benchmark: server time and response size of the dashboard pages on a large installation.

    .venv/bin/python bench/pages.py [--runs 10000] [--compare 20] [--steps 20000] [--cycles 5]

Starts its own embedded PostgreSQL and Redis under var/bench-pages (unless DATABASE_URL /
CELERY_BROKER_URL are set), with the production settings' persistent database connections
(DATABASE_CONN_MAX_AGE as `make run` and gunicorn have it), and measures exactly the schema
the migrations create: before
measuring, the indexes of its database are compared with those of a scratch database migrated
from nothing, and any other index (one left by an older version of this benchmark) is dropped.

Seeds --runs jobs with their summary fields (bulk_create, as a sync leaves them; reused by
later runs, --reseed starts over) and one running run of --steps rows for the live endpoint.
The --compare runs get their metrics through the sync's own storage step (``jobs.sync._store``:
events, metric rows and the curves the ingest keeps, checkpoints, the job's summary, and the
diagnosis stored when a run finishes), each sync of a running run followed by the diagnosis
refresh a worker runs after it (``dashboard.curves.warm``, timed on its own), with made-up
provider answers of --sync-steps steps
per sync while running, then the results file and the last sync once finished. Every
--cycles, the --compare runs are emptied and ingested again, so that each "cold" request is
the first one after its data was ingested (nothing is warmed up). Through the Django test
client, as a signed-in viewer, it reports median and p95 server time, response size and
queries of:

- the runs list (default order; sorted by cost; filtered + searched; page 100);
- the compare page of the --compare runs while they run, right after each round of syncs
  (cold), once finished right after the ingest (cold), and again (warm);
- a finished run's figures.json right after the ingest (cold) and again (warm), and a
  running run's right after a round of syncs and refreshes; and, for the record, a running
  run's figures asked up to an earlier step than its last (the job page's poll behind the
  sync), which computes the diagnosis from the rows;
- the live-update endpoint (metrics.json after_step = last - 10) of the running run;
- the ingest itself: server time of one sync of --sync-steps steps (median, p95), and of the
  diagnosis refresh that follows a running run's sync in a worker.

Targets: list p95 ≤ 50 ms; compare ≤ 300 ms cold and warm, ≤ 1 MB; run figures ≤ 100 ms
cold. The baseline measured in the same run is the smallest authenticated JSON view (the
live endpoint with nothing new): every figure is also given as a ratio to it.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

TAGS = ("baseline", "sweep-lr", "sweep-epochs", "prod", "candidate", "ablation", "dpo", "long")
STATUSES = (("succeeded", 80), ("failed", 8), ("cancelled", 5), ("running", 4), ("queued", 3))
PRISTINE = "tuneboard_bench_pristine"


def setup(var_dir: Path) -> object:
    from runtime.embedded import EmbeddedServices
    from runtime.supervisor import apply_defaults

    env = dict(os.environ)
    apply_defaults(env)
    env["TUNEBOARD_VAR_DIR"] = str(var_dir)
    env.update(
        SECURE_SSL_REDIRECT="false",
        SECURE_COOKIES="false",
        ALLOWED_HOSTS="testserver,localhost",
        SANDBOX_API_KEYS="sk-bench",
    )
    services = EmbeddedServices(var_dir, env)
    services.start()
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    # Unhashed static names: the pages render without a collectstatic manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    call_command("migrate", "--noinput", verbosity=0)
    return services


# --- The schema: exactly what the migrations create --------------------------------------------


def _indexes(cursor: Any) -> dict[str, str]:
    cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
    return dict(cursor.fetchall())


def production_schema() -> int:
    """Migrate a scratch database from nothing, drop every index of ours it lacks (reported),
    and fail when one of its indexes is missing here. Returns the number of indexes."""
    import psycopg
    from django.db import connection

    url = os.environ["DATABASE_URL"]
    parts = urlsplit(url)
    pristine_url = urlunsplit(parts._replace(path="/" + PRISTINE))
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {PRISTINE}")
        cursor.execute(f"CREATE DATABASE {PRISTINE}")
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=BASE_DIR,
            env={**os.environ, "DATABASE_URL": pristine_url},
            check=True,
        )
        with psycopg.connect(pristine_url) as pristine, pristine.cursor() as cursor:
            wanted = _indexes(cursor)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {PRISTINE}")
    with connection.cursor() as cursor:
        present = _indexes(cursor)
        missing = sorted(set(wanted) - set(present))
        if missing:
            raise SystemExit(f"indexes the migrations create are missing here: {missing}")
        for name in sorted(set(present) - set(wanted)):
            print(f"dropping {name}, which no migration creates: {present[name]}", flush=True)
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
        different = [name for name in wanted if present[name] != wanted[name]]
        if different:
            raise SystemExit(f"indexes differ from the migrations': {different}")
    return len(wanted)


# --- Seed: the runs list ------------------------------------------------------------------------


def curve_rows(steps: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    per_epoch = steps // 3
    rows = []
    for step in range(1, steps + 1):
        level = 2.2 * math.exp(-4 * step / steps) + 0.35 + 0.02 * seed
        row: dict[str, Any] = {
            "step": step,
            "train_loss": level * (1 + 0.08 * rng.uniform(-1, 1)),
            "train_accuracy": min(0.99, 0.45 + 0.45 * step / steps + 0.03 * rng.uniform(-1, 1)),
        }
        if step % 10 == 0:
            row["valid_loss"] = level * 1.05 + 0.02 * rng.uniform(-1, 1)
            row["valid_accuracy"] = min(0.99, 0.44 + 0.44 * step / steps)
        if step % per_epoch == 0:
            row["full_valid_loss"] = level * 1.04
            row["full_valid_accuracy"] = min(0.99, 0.44 + 0.45 * step / steps)
        rows.append(row)
    return rows


def seeded(runs: int) -> bool:
    from jobs.models import Job

    return (
        Job.objects.filter(name__startswith="bench ").count() == runs + 1
        and Job.objects.filter(name="bench compare 0").exists()
    )


def seed(runs: int, compare: int, steps: int) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from datasets.models import BaseModel, Dataset
    from jobs import metrics
    from jobs.models import Job
    from jobs.services import connection_save

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE jobs_providerconnection, jobs_job, jobs_metricpoint, jobs_checkpoint, "
            "jobs_jobevent, jobs_metriccurve, dashboard_rundiagnosis, dashboard_sharelink, "
            "datasets_dataset CASCADE"
        )
    rng = random.Random(42)
    User = get_user_model()
    creators = []
    for index in range(6):
        user, _ = User.objects.get_or_create(username=f"bench-member-{index}")
        user.groups.add(Group.objects.get(name="member"))
        creators.append(user)
    connections = [
        connection_save(
            name=f"bench-{kind}",
            kind=kind,
            base_url="https://bench.invalid/v1",
            api_key="sk-bench-unused-key",
        )
        for kind in ("openai", "azure_openai", "sandbox")
    ]
    datasets = Dataset.objects.bulk_create(
        Dataset(
            name=f"bench dataset {i}",
            file=f"datasets/bench-{i}.jsonl",
            size=1000,
            sha256=f"{i:064x}",
            line_count=100,
            status="valid",
            n_examples=100,
        )
        for i in range(40)
    )
    models = list(BaseModel.objects.values_list("pk", flat=True)) or ["gpt-4o-mini-2024-07-18"]
    statuses = [status for status, weight in STATUSES for _ in range(weight)]
    now = timezone.now()
    jobs = []
    for index in range(runs):
        is_compare = index < compare
        status = "succeeded" if is_compare else rng.choice(statuses)
        epochs = 3 if is_compare else rng.randint(1, 6)
        started = now - timedelta(days=rng.uniform(0, 365))
        finished = started + timedelta(minutes=rng.uniform(5, 300)) if status != "running" else None
        total = steps if is_compare else rng.randint(50, 3000)
        done = status in ("succeeded", "failed", "cancelled")
        jobs.append(
            Job(
                connection=connections[0] if is_compare else rng.choice(connections),
                provider_job_id=f"ftjob-bench{index:06d}",
                name=f"bench compare {index}" if is_compare else f"bench run {index}",
                notes=rng.choice(["", "", "tried a lower learning rate", "baseline for Q3"]),
                tags=rng.sample(TAGS, rng.randint(0, 3)),
                created_by=rng.choice(creators),
                base_model=rng.choice(models),
                requested_hyperparameters={"n_epochs": epochs} if rng.random() < 0.5 else {},
                hyperparameters={
                    "n_epochs": epochs,
                    "batch_size": rng.choice([1, 2, 4, 8, 16]),
                    "learning_rate_multiplier": rng.choice([0.5, 1.0, 1.8, 2.0]),
                },
                training_dataset=rng.choice(datasets),
                status=status,
                trained_tokens=rng.randint(10_000, 50_000_000) if done else None,
                started_at=started,
                finished_at=finished,
                total_steps=total,
                last_step=total if done else total // 2,
                final_train_loss=rng.uniform(0.2, 1.5),
                best_full_valid_loss=rng.uniform(0.3, 1.6) if rng.random() < 0.8 else None,
                best_full_valid_step=rng.randint(1, total),
                fine_tuned_model=f"ft:gpt-4o-mini-2024-07-18:bench::{index}"
                if status == "succeeded"
                else "",
                archived=rng.random() < 0.05 and not is_compare,
            )
        )
    jobs.append(
        Job(
            connection=connections[2], name="bench live run", base_model=models[0],
            status="running", hyperparameters={"n_epochs": 3}, total_steps=steps * 2,
            started_at=now - timedelta(hours=1), created_by=creators[0],
        )
    )  # fmt: skip
    created = Job.objects.bulk_create(jobs, batch_size=2000)
    with connection.cursor() as cursor:  # auto_now_add: spread creation dates over a year
        cursor.execute(
            "UPDATE jobs_job SET created_at = COALESCE(started_at, now()) - interval '10 minutes'"
        )
    metrics.upsert(created[-1].pk, curve_rows(steps, 99))


# --- Ingest: the compare runs through the sync's storage step -----------------------------------

EVENT_NAMES = {
    "train_loss": "train_loss",
    "train_accuracy": "train_mean_token_accuracy",
    "valid_loss": "valid_loss",
    "valid_accuracy": "valid_mean_token_accuracy",
    "full_valid_loss": "full_valid_loss",
    "full_valid_accuracy": "full_valid_mean_token_accuracy",
}


def _job_info(job: Any, *, status: str, steps: int, at: int) -> Any:
    from jobs.providers import JobInfo

    done = status == "succeeded"
    return JobInfo.from_api(
        {
            "id": job.provider_job_id,
            "object": "fine_tuning.job",
            "status": status,
            "model": job.base_model,
            "created_at": at - 3600,
            "finished_at": at if done else None,
            "fine_tuned_model": f"ft:{job.base_model}:bench::{job.provider_job_id}"
            if done
            else None,
            "hyperparameters": job.hyperparameters,
            "trained_tokens": 1000 * steps if done else None,
            "result_files": ["file-results"] if done else [],
        }
    )


def _events(job: Any, rows: list[dict[str, Any]], total: int, at: int) -> list[Any]:
    from jobs.providers import EventInfo

    events = []
    for row in rows:
        data = {"step": row["step"], "total_steps": total}
        data.update({EVENT_NAMES[k]: v for k, v in row.items() if k in EVENT_NAMES})
        events.append(
            EventInfo.from_api(
                {
                    "id": f"ftevent-{job.provider_job_id}-{row['step']}",
                    "created_at": at,
                    "level": "info",
                    "message": f"Step {row['step']}/{total}",
                    "type": "metrics",
                    "data": data,
                }
            )
        )
    return events[::-1]  # newest first, as providers list them


def _checkpoints(job: Any, steps: int, up_to: int, at: int) -> list[Any]:
    from jobs.providers import CheckpointInfo

    return [
        CheckpointInfo.from_api(
            {
                "id": f"ftckpt-{job.provider_job_id}-{epoch}",
                "created_at": at,
                "step_number": epoch * (steps // 3),
                "fine_tuned_model_checkpoint": f"ft:{job.base_model}:bench::ckpt-step-"
                f"{epoch * (steps // 3)}",
                "metrics": {"full_valid_loss": 0.5},
                "fine_tuning_job_id": job.provider_job_id,
            }
        )
        for epoch in (1, 2, 3)
        if epoch * (steps // 3) <= up_to
    ]


def _results_csv(rows: list[dict[str, Any]]) -> str:
    names = list(EVENT_NAMES.values())
    lines = [",".join(["step", *names])]
    for row in rows:
        values = [row.get(k) for k in EVENT_NAMES]
        lines.append(",".join([str(row["step"]), *("" if v is None else repr(v) for v in values)]))
    return "\n".join(lines) + "\n"


def reset(ids: list[str]) -> None:
    """The compare runs as just launched: no events, metrics, checkpoints or curves."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("jobs_jobevent", "jobs_metricpoint", "jobs_checkpoint", "jobs_metriccurve",
                      "dashboard_rundiagnosis"):  # fmt: skip
            cursor.execute(f"DELETE FROM {table} WHERE job_id = ANY(%s::uuid[])", [ids])  # noqa: S608
        cursor.execute(
            "UPDATE jobs_job SET status = 'running', finished_at = NULL, last_event_id = '', "
            "fine_tuned_model = '', trained_tokens = NULL, last_step = NULL, total_steps = NULL, "
            "final_train_loss = NULL, best_full_valid_loss = NULL, best_full_valid_step = NULL, "
            "started_at = NULL, next_poll_at = now() WHERE id = ANY(%s::uuid[])",
            [ids],
        )
        cursor.execute("ANALYZE jobs_jobevent, jobs_metricpoint, jobs_metriccurve")


REFRESH_TIMES: list[float] = []


def ingest(
    ids: list[str], steps: int, per_sync: int, *, after_round: Callable[[int], None] | None = None
) -> list[float]:
    """Every compare run synced round by round until it is finished; returns the server time
    of each sync (ms)."""
    from jobs.models import Job
    from jobs.sync import Fetched, _store

    curves = {job_id: curve_rows(steps, index) for index, job_id in enumerate(ids)}
    at = int(time.time())
    from dashboard.curves import warm

    times: list[float] = []

    def sync(job_id: str, fetched_of: Callable[[Any], Fetched]) -> None:
        started = time.perf_counter()
        job = Job.objects.select_related("connection").get(pk=job_id)
        _store(job, fetched_of(job))
        times.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        if warm(job_id) and job.status == "running":  # the task the sync enqueued
            REFRESH_TIMES.append((time.perf_counter() - started) * 1000)

    rounds = math.ceil(steps / per_sync)
    for round_ in range(rounds):
        lo, hi = round_ * per_sync, min(steps, (round_ + 1) * per_sync)
        for job_id in ids:
            rows = curves[job_id][lo:hi]
            sync(job_id, lambda job, rows=rows, hi=hi: Fetched(
                info=_job_info(job, status="running", steps=steps, at=at),
                events=_events(job, rows, steps, at),
                checkpoints=_checkpoints(job, steps, hi, at),
            ))  # fmt: skip
        if after_round is not None:
            after_round(round_)
    for job_id in ids:  # finished: the checkpoints and the results file, then the last sync
        sync(job_id, lambda job: Fetched(
            info=_job_info(job, status="succeeded", steps=steps, at=at),
            checkpoints=_checkpoints(job, steps, steps, at),
            results_csv=_results_csv(curves[str(job.pk)]),
        ))  # fmt: skip
        sync(
            job_id, lambda job: Fetched(info=_job_info(job, status="succeeded", steps=steps, at=at))
        )
    return times


# --- Measuring ----------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class Sample:
    """Requests to one kind of page: times, and the size and queries of the last one."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.bytes = self.gzip = self.queries = 0

    def get(self, client: Any, url: str) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (url, response.status_code)
        self.times.append(elapsed)
        self.bytes, self.queries = len(response.content), len(queries.captured_queries)
        self.gzip = len(gzip.compress(response.content, 6))

    def row(self) -> dict[str, Any]:
        return {
            "n": len(self.times),
            "median": statistics.median(self.times),
            "p95": percentile(self.times, 0.95),
            "bytes": self.bytes,
            "gzip": self.gzip,
            "queries": self.queries,
        }


def measure(client: Any, url: str, repeat: int) -> dict[str, Any]:
    sample = Sample()
    for _ in range(repeat):
        sample.get(client, url)
    return sample.row()


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--compare", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--sync-steps", type=int, default=500, help="steps per sync (ingest)")
    parser.add_argument("--cycles", type=int, default=5, help="ingests of the compare runs")
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    services = setup(BASE_DIR / "var" / "bench-pages")
    try:
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client

        from jobs.models import Job
        from tests.permissions import make_user

        print(f"load average at start: {load()}", flush=True)
        if args.reseed or not seeded(args.runs):
            print(f"seeding {args.runs:,} runs…", flush=True)
            started = time.perf_counter()
            seed(args.runs, args.compare, args.steps)
            print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)
        n_indexes = production_schema()
        viewer = get_user_model().objects.filter(username="bench-viewer").first() or make_user(
            "viewer", "bench-viewer"
        )
        client = Client()
        client.force_login(viewer)
        # As the WSGI entry point does once the application is loaded (core.startup).
        from core.startup import freeze_loaded_objects

        freeze_loaded_objects()
        compare_ids = [
            str(pk)
            for pk in Job.objects.filter(name__startswith="bench compare ")
            .order_by("provider_job_id")
            .values_list("pk", flat=True)
        ][: args.compare]
        live = Job.objects.get(name="bench live run")
        compare_url = "/compare/?runs=" + ",".join(compare_ids)

        # A server process that has served pages before: the compare page's code (templates,
        # imports) warmed on other runs, so that "cold" below is the data's, not the process's.
        other = Job.objects.exclude(pk__in=[*compare_ids, live.pk]).order_by("pk")[0]
        client.get(f"/compare/?runs={live.pk},{other.pk}")
        client.get(f"/runs/{live.pk}/figures.json")
        compare_running, compare_cold, figures_cold = Sample(), Sample(), Sample()
        figures_running, figures_behind, sync_times = Sample(), Sample(), []
        running_every = max(1, math.ceil(args.steps / args.sync_steps) // 10)
        for cycle in range(args.cycles):
            reset(compare_ids)

            def after_round(round_: int, cycle: int = cycle) -> None:
                # While the runs go: the first request after each (tenth) round of syncs.
                if cycle == 0 and round_ % running_every == running_every - 1:
                    compare_running.get(client, compare_url)
                    url = f"/runs/{compare_ids[round_ % len(compare_ids)]}/figures.json"
                    figures_running.get(client, url)
                    last = Job.objects.get(pk=compare_ids[round_ % len(compare_ids)]).last_step
                    figures_behind.get(client, f"{url}?up_to_step={max(0, last - 1)}")

            started = time.perf_counter()
            sync_times += ingest(compare_ids, args.steps, args.sync_steps, after_round=after_round)
            print(f"cycle {cycle + 1}/{args.cycles}: ingested {args.compare} × {args.steps:,} "
                  f"steps in {time.perf_counter() - started:.0f} s (load {load()})", flush=True)  # fmt: skip
            # Cold: the first requests after the ingest, nothing warmed up.
            compare_cold.get(client, compare_url)
            for offset in range(4):
                figures_cold.get(
                    client,
                    f"/runs/{compare_ids[(4 * cycle + offset) % len(compare_ids)]}/figures.json",
                )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

        repeat = args.repeat
        results: list[tuple[str, dict[str, Any]]] = []
        results.append(("baseline: live, nothing new", measure(
            client, f"/runs/{live.pk}/metrics.json?after_step={args.steps}", repeat)))  # fmt: skip
        list_urls = {
            "runs list, newest first": "/",
            "runs list, sorted by cost": "/?sort=cost&dir=desc",
            "runs list, filtered+search": "/?q=run&tag=sweep-lr&status=succeeded&sort=lr&dir=asc",
            "runs list, tag only": "/?tag=sweep-lr",
            "runs list, page 100": "/?page=100",
        }
        # Taken in turns, so that a slow minute of the shared machine falls on every kind.
        samples = {label: Sample() for label in list_urls}
        for _ in range(repeat):
            for label, url in list_urls.items():
                samples[label].get(client, url)
        results += [(label, sample.row()) for label, sample in samples.items()]
        results.append(("run figures.json, running, cold", figures_running.row()))
        results.append(("  (job page behind its last sync)", figures_behind.row()))
        results.append(("run figures.json, finished, cold", figures_cold.row()))
        results.append(("run figures.json, finished, warm", measure(
            client, f"/runs/{compare_ids[0]}/figures.json", repeat)))  # fmt: skip
        n = len(compare_ids)
        results.append((f"compare {n} running, cold", compare_running.row()))
        results.append((f"compare {n} finished, cold", compare_cold.row()))
        results.append((f"compare {n} finished, warm", measure(client, compare_url, repeat)))
        results.append(("live update (10 new points)", measure(
            client, f"/runs/{live.pk}/metrics.json?after_step={args.steps - 10}", repeat)))  # fmt: skip
        base = results[0][1]["median"]
        print(f"\n{Job.objects.count():,} runs; schema: the migrations' {n_indexes} indexes, "
              f"nothing added; compare: {n} runs × {args.steps:,} steps, ingested "
              f"{args.cycles} times in syncs of {args.sync_steps} steps; load {load()}")  # fmt: skip
        print(f"{'endpoint':36} {'n':>4} {'median ms':>10} {'p95 ms':>8} {'× base':>7} "
              f"{'bytes':>10} {'gzipped':>9} {'queries':>8}")  # fmt: skip
        for label, r in results:
            print(f"{label:36} {r['n']:4} {r['median']:10.1f} {r['p95']:8.1f} "
                  f"{r['median'] / base:7.1f} {r['bytes']:10,} {r['gzip']:9,} {r['queries']:8}")  # fmt: skip
        print(f"{'ingest: one sync of ' + str(args.sync_steps) + ' steps':36} "
              f"{len(sync_times):4} {statistics.median(sync_times):10.1f} "
              f"{percentile(sync_times, 0.95):8.1f}")  # fmt: skip
        print(f"{'  then its diagnosis refresh (worker)':36} {len(REFRESH_TIMES):4} "
              f"{statistics.median(REFRESH_TIMES):10.1f} {percentile(REFRESH_TIMES, 0.95):8.1f}")  # fmt: skip
        table = dict(results)
        lists = [r for label, r in results if label.startswith("runs list")]
        print(f"\nlist p95 (worst): {max(r['p95'] for r in lists):.1f} ms (target ≤ 50 ms); "
              f"queries {sorted({r['queries'] for r in lists})}")  # fmt: skip
        for label in (f"compare {n} finished, cold", f"compare {n} finished, warm",
                      f"compare {n} running, cold"):  # fmt: skip
            r = table[label]
            print(f"{label}: p95 {r['p95']:.1f} ms (target ≤ 300 ms), "
                  f"{r['bytes'] / 1e6:.2f} MB (target ≤ 1 MB)")  # fmt: skip
        print("compare running, cold, each request (ms):",
              " ".join(f"{t:.0f}" for t in compare_running.times))  # fmt: skip
        for label in ("run figures.json, finished, cold", "run figures.json, running, cold"):
            r = table[label]
            print(f"{label}: p95 {r['p95']:.1f} ms (target ≤ 100 ms)")
    finally:
        services.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()

"""Benchmark: server time and response size of the dashboard pages on a large installation.

    .venv/bin/python bench/pages.py [--runs 10000] [--compare 20] [--steps 20000] [--repeat 40]

Starts its own embedded PostgreSQL and Redis under var/bench-pages (unless DATABASE_URL /
CELERY_BROKER_URL are set), seeds --runs jobs with their summary fields (bulk_create, as a
sync leaves them) and --compare finished runs of --steps metric rows each (jobs.metrics.upsert,
the sync's own bulk upsert), plus one running run of --steps rows for the live endpoint; the
seed is reused by later runs (--reseed starts over). Then it requests, through the Django test
client as a signed-in viewer, and reports the median and p95 server time, the response size and
the queries of:

- the runs list (default order; sorted by cost; filtered + searched; page 100);
- a run's charts endpoint (figures.json of a --steps run), cold (curves computed from all the
  metric rows and cached) and warm;
- the compare page of --compare runs, cold and warm (targets: ≤ 300 ms and ≤ 1 MB);
- the live-update endpoint (metrics.json after_step = last - 10) of the running run.

Targets: list p95 ≤ 50 ms; compare ≤ 300 ms and ≤ 1 MB. The baseline measured in the same run
is the smallest authenticated JSON view (the live endpoint with nothing new): every figure is
also given as a ratio to it.

--indexes adds the indexes the dashboard suggests for jobs_job (SUGGESTED_INDEXES, to be added
to jobs.Job.Meta by the jobs app) before measuring; without it they are dropped, so the figures
show the schema as it is.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

# (name, SQL): what jobs.Job.Meta.indexes would create for the runs list (see --indexes).
SUGGESTED_INDEXES = (
    ("jobs_job_listed_recent",
     'CREATE INDEX IF NOT EXISTS jobs_job_listed_recent ON jobs_job (created_at DESC, id DESC) '
     "WHERE NOT archived"),
    ("jobs_job_tags_gin", "CREATE INDEX IF NOT EXISTS jobs_job_tags_gin ON jobs_job USING gin (tags)"),
)  # fmt: skip
TAGS = ("baseline", "sweep-lr", "sweep-epochs", "prod", "candidate", "ablation", "dpo", "long")
STATUSES = (("succeeded", 80), ("failed", 8), ("cancelled", 5), ("running", 4), ("queued", 3))


def setup(var_dir: Path) -> object:
    from runtime.embedded import EmbeddedServices
    from runtime.supervisor import apply_defaults

    env = dict(os.environ)
    apply_defaults(env)
    env["TUNEBOARD_VAR_DIR"] = str(var_dir)
    env.update(
        SECURE_SSL_REDIRECT="false",
        SECURE_COOKIES="false",
        DATABASE_CONN_MAX_AGE="0",
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
            "extra": {},
        }
        if step % 10 == 0:
            row["valid_loss"] = level * 1.05 + 0.02 * rng.uniform(-1, 1)
            row["valid_accuracy"] = min(0.99, 0.44 + 0.44 * step / steps)
        if step % per_epoch == 0:
            row["full_valid_loss"] = level * 1.04
            row["full_valid_accuracy"] = min(0.99, 0.44 + 0.45 * step / steps)
        rows.append(row)
    return rows


def seeded(runs: int, compare: int, steps: int) -> bool:
    from jobs.models import Job, MetricPoint

    if Job.objects.filter(name__startswith="bench ").count() != runs + 1:
        return False
    first = Job.objects.filter(name="bench compare 0").first()
    return first is not None and MetricPoint.objects.filter(job=first).count() == steps


def seed(runs: int, compare: int, steps: int) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from datasets.models import BaseModel, Dataset
    from jobs import metrics
    from jobs.models import Checkpoint, Job
    from jobs.services import connection_save

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE jobs_job, jobs_metricpoint, jobs_checkpoint, jobs_jobevent, "
            "dashboard_runcurve, dashboard_sharelink, datasets_dataset CASCADE"
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
                connection=rng.choice(connections),
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
                archived=rng.random() < 0.05,
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
    for index, job in enumerate(created[:compare]):
        metrics.upsert(job.pk, curve_rows(steps, index))
        Checkpoint.objects.bulk_create(
            Checkpoint(
                job=job,
                provider_checkpoint_id=f"ftckpt-{index}-{e}",
                step=e * (steps // 3),
                model_name=f"{job.fine_tuned_model}:ckpt-step-{e * (steps // 3)}",
                metrics={"full_valid_loss": 0.5},
                created_at=now,
            )
            for e in (1, 2, 3)
        )
    metrics.upsert(created[-1].pk, curve_rows(steps, 99))


def prepare_indexes(wanted: bool) -> None:
    """Create or drop the suggested indexes, then VACUUM ANALYZE (the steady state autovacuum
    keeps a real installation in)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for name, create in SUGGESTED_INDEXES:
            cursor.execute(create if wanted else f"DROP INDEX IF EXISTS {name}")
        cursor.execute("VACUUM ANALYZE")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def measure(client: Any, url: str, repeat: int, *, before: Any = None) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    response = None
    for _ in range(repeat):
        if before is not None:
            before()
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as queries:
        if before is not None:
            before()
        client.get(url)
    assert response is not None
    return {
        "median": statistics.median(times),
        "p95": percentile(times, 0.95),
        "bytes": len(response.content),
        "gzip": len(gzip.compress(response.content, 6)),
        "queries": len(queries.captured_queries),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--compare", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--indexes", action="store_true", help="add the suggested indexes")
    args = parser.parse_args()
    services = setup(BASE_DIR / "var" / "bench-pages")
    try:
        from django.test import Client

        from dashboard.models import RunCurve
        from jobs.models import Job
        from tests.permissions import make_user

        if args.reseed or not seeded(args.runs, args.compare, args.steps):
            print(f"seeding {args.runs:,} runs and {args.compare} × {args.steps:,} metric rows…",
                  flush=True)  # fmt: skip
            started = time.perf_counter()
            seed(args.runs, args.compare, args.steps)
            print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)
        prepare_indexes(args.indexes)
        from django.contrib.auth import get_user_model

        viewer = get_user_model().objects.filter(username="bench-viewer").first() or make_user(
            "viewer", "bench-viewer"
        )
        client = Client()
        client.force_login(viewer)
        compare_ids = [
            str(pk)
            for pk in Job.objects.filter(name__startswith="bench compare ")
            .order_by("provider_job_id")
            .values_list("pk", flat=True)
        ]
        live = Job.objects.get(name="bench live run")
        one = compare_ids[0]
        compare_url = "/compare/?runs=" + ",".join(compare_ids)
        tag = "sweep-lr"

        def forget(ids: list[str]) -> Any:
            return lambda: RunCurve.objects.filter(job_id__in=ids).delete()

        results: list[tuple[str, dict[str, Any]]] = []
        repeat, cold_repeat = args.repeat, max(3, args.repeat // 8)
        # Baseline: the smallest authenticated JSON view (nothing new for the live page).
        results.append(
            (
                "baseline: live, nothing new",
                measure(client, f"/runs/{live.pk}/metrics.json?after_step={args.steps}", repeat),
            )
        )
        for label, url in (
            ("runs list, newest first", "/"),
            ("runs list, sorted by cost", "/?sort=cost&dir=desc"),
            ("runs list, filtered+search", f"/?q=run&tag={tag}&status=succeeded&sort=lr&dir=asc"),
            ("runs list, page 100", "/?page=100"),
        ):
            results.append((label, measure(client, url, repeat)))
        results.append(
            (
                "run figures.json, cold",
                measure(client, f"/runs/{one}/figures.json", cold_repeat, before=forget([one])),
            )
        )
        results.append(
            ("run figures.json, warm", measure(client, f"/runs/{one}/figures.json", repeat))
        )
        results.append(
            (
                f"compare {len(compare_ids)} runs, cold",
                measure(client, compare_url, cold_repeat, before=forget(compare_ids)),
            )
        )
        results.append(
            (f"compare {len(compare_ids)} runs, warm", measure(client, compare_url, repeat))
        )
        results.append(("live update (10 new points)", measure(
            client, f"/runs/{live.pk}/metrics.json?after_step={args.steps - 10}", repeat)))  # fmt: skip
        base = results[0][1]["median"]
        indexes = "with" if args.indexes else "without"
        print(f"\n{Job.objects.count():,} runs ({indexes} the suggested indexes); compare: "
              f"{len(compare_ids)} runs × {args.steps:,} steps; {repeat} requests per line "
              f"({cold_repeat} for cold lines)")  # fmt: skip
        print(f"{'endpoint':36} {'median ms':>10} {'p95 ms':>8} {'× base':>7} {'bytes':>10} "
              f"{'gzipped':>9} {'queries':>8}")  # fmt: skip
        for label, r in results:
            print(f"{label:36} {r['median']:10.1f} {r['p95']:8.1f} {r['median'] / base:7.1f} "
                  f"{r['bytes']:10,} {r['gzip']:9,} {r['queries']:8}")  # fmt: skip
        lists = [r for label, r in results if label.startswith("runs list")]
        warm = dict(results)[f"compare {len(compare_ids)} runs, warm"]
        print(
            f"\nlist p95 (worst of the four): {max(r['p95'] for r in lists):.1f} ms (target ≤ 50 ms)"
        )
        print(f"compare warm: p95 {warm['p95']:.1f} ms (target ≤ 300 ms), "
              f"{warm['bytes'] / 1e6:.2f} MB (target ≤ 1 MB)")  # fmt: skip
    finally:
        services.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()

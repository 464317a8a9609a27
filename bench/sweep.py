"""Benchmark: what a sweep adds to each launch it schedules.

    .venv/bin/python bench/sweep.py [--runs 20] [--rounds 5]

Starts its own embedded PostgreSQL and Redis under var/bench-sweep (unless DATABASE_URL /
CELERY_BROKER_URL are set), migrates, and validates one training dataset. Then, in this one
process, each round measures:

- the baseline: ``--runs`` single launches (``jobs.services.job_launch``: the launch rules,
  the job row, its guardrails, the audit entry and the launch task sent to the broker), each
  with a seed of its own;
- a sweep of ``--runs`` runs (``sweep_plan`` + ``sweep_create``: every run checked and priced,
  the sweep and its planned runs written), then launched in one advance (concurrency = runs);
- the steady state: a sweep two at a time, where each run that ends lets one advance launch
  the next (the run's end written as a sync writes it, outside the timing).

It reports per launched run the median time of each, and the ratio to a single launch: the
scheduling overhead. Nothing calls a provider (launch tasks wait in the broker, which is
emptied at the end), so the numbers are Tuneboard's own work.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

from bench.pages import load, setup  # noqa: E402

MODEL = "gpt-4o-mini-2024-07-18"


def dataset() -> Any:
    import json
    import random

    from django.core.files.uploadedfile import SimpleUploadedFile

    from datasets.services import dataset_create_from_upload, dataset_validate

    rng = random.Random(3)
    lines = []
    for i in range(200):
        words = " ".join(f"w{rng.getrandbits(20)}" for _ in range(30))
        lines.append(json.dumps({"messages": [
            {"role": "user", "content": f"Question {i}: {words}?"},
            {"role": "assistant", "content": f"Answer {i}: {words[::-1]}"},
        ]}))  # fmt: skip
    outcome = dataset_create_from_upload(
        upload=SimpleUploadedFile("bench.jsonl", "\n".join(lines).encode() + b"\n"),
        name=f"bench-{time.time_ns()}",
        uploaded_by=None,
    )
    dataset_validate(dataset_id=outcome.dataset.pk, model_id=outcome.dataset.requested_model_id)
    outcome.dataset.refresh_from_db()
    assert outcome.dataset.status == "valid", (
        outcome.dataset.status,
        outcome.dataset.error_message,
    )
    return outcome.dataset


def per_call(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def single_launches(connection: Any, data: Any, user: Any, runs: int, seed: int) -> list[float]:
    from jobs.services import LaunchRequest, job_launch

    times = []
    for i in range(runs):
        request = LaunchRequest(connection=connection, base_model=MODEL, training_dataset=data,
                                hyperparameters={"n_epochs": 1}, seed=seed + i)  # fmt: skip
        started = time.perf_counter()
        job_launch(request=request, user=user)
        times.append(time.perf_counter() - started)
    return times


def sweep_request(connection: Any, data: Any, runs: int, seed: int, concurrency: int) -> Any:
    from jobs.sweep_plans import SweepRequest

    return SweepRequest(
        name=f"bench {seed}", connection=connection, training_dataset=data,
        validation_dataset=None, budget_usd=Decimal(10_000), concurrency=concurrency,
        space={"base_model": [MODEL], "n_epochs": [1], "seed": list(range(seed, seed + runs))},
    )  # fmt: skip


def sweep_at_once(
    connection: Any, data: Any, user: Any, runs: int, seed: int
) -> tuple[float, float]:
    """(plan and create, advance that launches every run), in seconds."""
    from jobs.sweep_plans import sweep_plan
    from jobs.sweeps import sweep_advance, sweep_create

    request = sweep_request(connection, data, runs, seed, concurrency=runs)
    started = time.perf_counter()
    sweep = sweep_create(request=request, user=user, plan=sweep_plan(request=request))
    created = time.perf_counter()
    sweep_advance(sweep_id=sweep.pk)
    advanced = time.perf_counter()
    assert sweep.runs.filter(state="launched").count() == runs
    return created - started, advanced - created


def sweep_steady(connection: Any, data: Any, user: Any, runs: int, seed: int) -> list[float]:
    """Each advance after one run ended: the launch of the next one, in seconds."""
    from jobs.models import Job, SweepRun
    from jobs.sweeps import sweep_advance, sweep_create

    sweep = sweep_create(request=sweep_request(connection, data, runs, seed, concurrency=2),
                         user=user)  # fmt: skip
    sweep_advance(sweep_id=sweep.pk)
    times = []
    for index in range(1, runs - 1):
        run = SweepRun.objects.get(sweep=sweep, index=index)
        Job.objects.filter(pk=run.job_id).update(
            status="succeeded", trained_tokens=run.billed_tokens
        )
        started = time.perf_counter()
        sweep_advance(sweep_id=sweep.pk)
        times.append(time.perf_counter() - started)
    assert sweep.runs.filter(state="launched").count() == runs
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    services = setup(BASE_DIR / "var" / "bench-sweep")
    try:
        from config.celery import app
        from jobs.services import connection_save
        from tests.permissions import make_user

        print(f"load average at start: {load()}", flush=True)
        connection = connection_save(name=f"bench {time.time_ns()}", kind="sandbox",
                                     base_url="http://127.0.0.1:9/v1", api_key="sk-bench")  # fmt: skip
        user = make_user("member", f"bench-{time.time_ns()}")
        data = dataset()
        single: list[float] = []
        created: list[float] = []
        at_once: list[float] = []
        steady: list[float] = []
        seed = 1
        for _ in range(args.rounds):
            single += single_launches(connection, data, user, args.runs, seed)
            seed += args.runs
            plan_create, advance = sweep_at_once(connection, data, user, args.runs, seed)
            created.append(plan_create / args.runs)
            at_once.append(advance / args.runs)
            seed += args.runs
            steady += sweep_steady(connection, data, user, args.runs, seed)
            seed += args.runs
        base = per_call(single)
        rows = [
            ("single launch (baseline)", base),
            ("sweep: plan + create, per run", per_call(created)),
            ("sweep: advance launching all runs, per run", per_call(at_once)),
            ("sweep: plan + create + advance, per run", per_call(created) + per_call(at_once)),
            ("sweep: advance after a run ended (launches 1)", per_call(steady)),
        ]
        print(f"\n{args.runs} runs a sweep, {args.rounds} rounds; medians per launched run")
        print(f"{'':48} {'ms':>8} {'× single':>9}")
        for label, ms in rows:
            print(f"{label:48} {ms:8.2f} {ms / base:8.2f}×")
        print(f"load average at end: {load()}")
        app.control.purge()
    finally:
        services.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()

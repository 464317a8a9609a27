"""Benchmark: the evaluation results page of a large evaluation.

    .venv/bin/python bench/evals.py [--examples 1000] [--models 8] [--repeat 20]

Starts its own embedded PostgreSQL and Redis under var/bench-evals (unless DATABASE_URL /
CELERY_BROKER_URL are set) and seeds one finished evaluation of --examples rows × --models
columns (every cell answered, scored by exact match and token F1, with latency and tokens, as
the runner stores them). Then it requests, through the Django test client as a signed-in
viewer, and reports the median and p95 server time, the response size and the queries of:

- the results page (summary, chart data, first page of the grid), in dataset order;
- the grid filtered to rows where the models disagree, and to rows where one model fails;
- the grid sorted by a column's score;
- the status JSON the page polls while the evaluation runs (the baseline: every median is
  also given as a ratio to its median), and the CSV export of every cell.

Target: the results page p95 ≤ 300 ms at 1,000 × 8 cells.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

from bench.pages import measure, setup  # noqa: E402

WORDS = [
    "the",
    "a",
    "answer",
    "fact",
    "number",
    "bicycles",
    "tea",
    "remarkable",
    "ancient",
    "useful",
    "curious",
    "are",
    "and",
]


def seed(examples: int, models: int) -> int:
    from datasets.models import Dataset
    from evals.graders import grade_all, parse_specs
    from evals.models import EvalExample, EvalModel, EvalOutput, Evaluation
    from jobs.services import connection_save

    rng = random.Random(7)
    connection = connection_save(
        name="bench", kind="sandbox", base_url="http://127.0.0.1:9/v1", api_key="sk-bench"
    )
    dataset = Dataset.objects.create(
        name="bench eval set", file="bench.jsonl", size=1, sha256=f"{rng.getrandbits(256):064x}",
        line_count=examples, status="valid", format="chat",
    )  # fmt: skip
    specs = parse_specs([{"kind": "exact_match"}, {"kind": "token_f1"}])
    evaluation = Evaluation.objects.create(
        name="bench", dataset=dataset, graders=[s.to_dict() for s in specs], status="succeeded",
        cells_total=examples * models, cells_done=examples * models,
    )  # fmt: skip
    columns = EvalModel.objects.bulk_create(
        EvalModel(
            evaluation=evaluation, position=i, label=f"model {i}", kind="checkpoint",
            connection=connection, model_name=f"ft:gpt-4o-mini:bench:{i}", step=i,
        )
        for i in range(models)
    )  # fmt: skip
    rows = EvalExample.objects.bulk_create(
        (
            EvalExample(
                evaluation=evaluation,
                position=n,
                line_number=n + 1,
                messages=[
                    {
                        "role": "user",
                        "content": f"Question {n}: " + " ".join(rng.choices(WORDS, k=20)),
                    }
                ],
                reference=" ".join(rng.choices(WORDS, k=25)),
            )
            for n in range(examples)
        ),
        batch_size=1000,
    )
    outputs = []
    for row in rows:
        for column in columns:
            # Later columns recall the reference more often, as checkpoints do.
            content = (
                row.reference
                if rng.random() < column.position / models
                else " ".join(rng.choices(WORDS, k=30))
            )
            outputs.append(
                EvalOutput(
                    evaluation=evaluation,
                    example=row,
                    column=column,
                    status="succeeded",
                    content=content,
                    prompt_tokens=30,
                    completion_tokens=30,
                    latency_ms=rng.randint(100, 900),
                    scores=grade_all(specs, output=content, reference=row.reference),
                )
            )
    EvalOutput.objects.bulk_create(outputs, batch_size=2000)
    return evaluation.pk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    services = setup(BASE_DIR / "var" / "bench-evals")
    try:
        from django.core.management import call_command
        from django.test import Client

        from tests.permissions import make_user

        call_command("flush", "--noinput", verbosity=0)
        call_command("migrate", "--noinput", verbosity=0)  # the groups and the catalog again
        started = time.perf_counter()
        pk = seed(args.examples, args.models)
        cells = args.examples * args.models
        print(f"seeded {cells:,} cells in {time.perf_counter() - started:.1f} s", flush=True)
        client = Client()
        client.force_login(make_user("viewer", "bench-viewer"))
        results: list[tuple[str, dict[str, Any]]] = [
            (
                "baseline: status.json",
                measure(client, f"/evaluations/{pk}/status.json", args.repeat),
            )
        ]
        for label, url in (
            ("results page", f"/evaluations/{pk}/"),
            ("results, models disagree", f"/evaluations/{pk}/?show=disagree"),
            ("results, model 3 fails", f"/evaluations/{pk}/?show=fails&column=3"),
            ("results, sorted by model 7", f"/evaluations/{pk}/?sort={args.models - 1}&order=asc"),
            ("results, page 20", f"/evaluations/{pk}/?page=20"),
        ):
            results.append((label, measure(client, url, args.repeat)))
        started = time.perf_counter()
        response = client.get(f"/evaluations/{pk}/export.csv")
        size = sum(len(chunk) for chunk in response.streaming_content)
        csv_seconds = time.perf_counter() - started
        base = results[0][1]["median"]  # medians: a noisy machine moves p95 of tiny requests
        print(f"\n{args.examples:,} examples × {args.models} models = {cells:,} cells")
        print(
            f"{'request':32} {'median ms':>10} {'p95 ms':>8} {'× base':>7} {'KB':>7} {'queries':>8}"
        )
        for label, r in results:
            print(
                f"{label:32} {r['median']:10.1f} {r['p95']:8.1f} {r['median'] / base:7.1f} "
                f"{r['bytes'] / 1024:7.0f} {r['queries']:8d}"
            )
        print(f"CSV export of every cell: {size / 1024:.0f} KB in {csv_seconds * 1000:.0f} ms")
        page = results[1][1]["p95"]
        print(
            f"target results page p95 ≤ 300 ms: {'met' if page <= 300 else 'NOT met'} ({page:.0f} ms)"
        )
    finally:
        services.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()

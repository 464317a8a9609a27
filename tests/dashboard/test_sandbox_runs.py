"""A job launched and followed through the real sandbox (real HTTP, Celery worker and beat):
what the live endpoint streams while it runs, and what the list, the charts, the exports and a
share link show once it has finished, all equal what the sync stored."""

from __future__ import annotations

import csv
import io
import time
from decimal import Decimal

import pytest

from dashboard.charts import METRICS
from datasets.models import BaseModel
from jobs import curvestore
from jobs.models import Checkpoint, Job, MetricCurve, MetricPoint
from tests.dashboard.helpers import db_points, json_script, render_include, traces
from tests.dashboard.test_runs_list import parse
from tests.jobs.test_launch_and_poll import launched, settled
from tests.permissions import SHARE, client_for, make_user
from tests.sandbox.data import chat_examples

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.worker,
    pytest.mark.usefixtures("catalog"),
]


def test_a_sandbox_run_streams_live_then_matches_the_database_everywhere(
    sandbox_connection,
    make_dataset,
    celery_worker,
    celery_beat,
    settings,
) -> None:  # type: ignore[no-untyped-def]
    settings.SANDBOX_SECONDS_PER_STEP = 0.04  # about four seconds of "running" to follow live
    training = make_dataset(chat_examples(30), name="train-secret-set")
    validation = make_dataset(chat_examples(10, seed=3), name="holdout-secret-set")
    job = launched(sandbox_connection, training, validation_dataset=validation,
                   hyperparameters={"n_epochs": 3}, name="sandbox e2e", tags=["e2e"])  # fmt: skip
    viewer = client_for("viewer")
    streamed: dict[int, dict] = {}
    after, terminal, deadline = 0, False, time.monotonic() + 90
    while not terminal and time.monotonic() < deadline:
        data = viewer.get(f"/runs/{job.pk}/metrics.json?after_step={after}").json()
        for point in data["points"]:
            assert point["step"] > after  # only what the page does not have yet
            streamed[point["step"]] = point
        after, terminal = data["last_step"], data["terminal"]
        time.sleep(0.2)
    job = settled(job)
    assert job.status == "succeeded" and job.total_steps == 90

    stored = {p.step: p for p in MetricPoint.objects.filter(job=job)}
    assert sorted(stored) == list(range(1, 91))
    assert len(streamed) > 0 and set(streamed) <= set(stored)
    for step, point in streamed.items():
        assert point["train_loss"] == stored[step].train_loss

    # The curves the syncs kept as the rows arrived equal a pass over all the rows.
    kept = sorted(
        MetricCurve.objects.filter(job=job).values_list("level", "chunk", "width", "buckets")
    )
    assert kept and curvestore.rebuild(job.pk) == 90
    assert (
        sorted(
            MetricCurve.objects.filter(job=job).values_list("level", "chunk", "width", "buckets")
        )
        == kept
    )

    # The charts: every series with exactly the stored points; checkpoints; best point.
    html = render_include(job, make_user("member", "e2e-member"))
    figures = json_script(html, "tb-run-figures")
    for column in METRICS:
        kind = "loss" if column.endswith("loss") else "accuracy"
        expected = db_points(job, column)
        role = "smoothed" if column.startswith("train") else "points"
        found = traces(figures[kind], column, role)
        if not expected:
            assert found == []
            continue
        (trace,) = found
        assert trace["x"] == [float(s) for s, _ in expected]
        assert trace["y"] == [v for _, v in expected]
    (marks,) = traces(figures["loss"], "checkpoints")
    assert (
        marks["x"]
        == [float(c.step) for c in Checkpoint.objects.filter(job=job)]
        == [30.0, 60.0, 90.0]
    )
    (best,) = traces(figures["loss"], "full_valid_loss", "best")
    assert (best["x"][0], best["y"][0]) == (
        float(job.best_full_valid_step),
        job.best_full_valid_loss,
    )
    assert "Fit diagnosis" in html and json_script(html, "tb-run-config")["terminal"] is True

    # The list row equals the database.
    row = parse(viewer.get("/").content).rows[str(job.pk)]
    assert float(row["final_train_loss"][0]) == job.final_train_loss
    assert float(row["best_full_valid_loss"][0]) == job.best_full_valid_loss
    assert int(row["trained_tokens"][0]) == job.trained_tokens
    price = BaseModel.objects.get(pk="gpt-4o-mini-2024-07-18").to_spec().training_price_per_1m
    assert Decimal(row["cost"][0]) == price * job.trained_tokens / Decimal(1_000_000)

    # The export holds every stored point.
    table = list(
        csv.DictReader(io.StringIO(viewer.get(f"/runs/{job.pk}/export.csv").content.decode()))
    )
    assert [int(r["step"]) for r in table] == list(range(1, 91))
    assert [float(r["train_loss"]) for r in table] == [stored[s].train_loss for s in range(1, 91)]

    # A share link to the finished run: frozen at once, same curves, no provider ids.
    member = client_for("member")
    member.post("/share-links/new/", {"job": str(job.pk)})
    token = member.get("/share-links/").content.decode().split("/share/")[1].split("/")[0]
    shared = client_for(SHARE).get(f"/share/{token}/").content.decode()
    (train,) = traces(json_script(shared, "tb-run-figures")["loss"], "train_loss", "smoothed")
    assert train["y"] == [v for _, v in db_points(job, "train_loss")]
    job = Job.objects.select_related("connection").get(pk=job.pk)
    for secret in (job.provider_job_id, job.training_file_id, job.validation_file_id,
                   job.fine_tuned_model, job.connection.name, job.connection.base_url,
                   "train-secret-set", "holdout-secret-set", "e2e-member", "member-user"):  # fmt: skip
        assert secret not in shared, secret

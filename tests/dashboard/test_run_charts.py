"""The run-charts include, its figures and live JSON, and the metric exports."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from dashboard.charts import ema
from dashboard.models import RunDiagnosis
from jobs import metrics
from jobs.models import Checkpoint, Job
from tests.dashboard.conftest import XSS
from tests.dashboard.helpers import COLUMNS, db_points, json_script, render_include, traces
from tests.permissions import client_for, make_user

pytestmark = pytest.mark.django_db


def test_figures_contain_every_series_with_the_right_points(make_job) -> None:
    job = make_job(steps=30, epochs=3)
    html = render_include(job, make_user("viewer"))
    figures = json_script(html, "tb-run-figures")
    for column in COLUMNS:
        kind = "loss" if column.endswith("loss") else "accuracy"
        expected = db_points(job, column)
        assert expected, column
        role = "smoothed" if column.startswith("train") else "points"
        (trace,) = traces(figures[kind], column, role)
        assert trace["x"] == [float(step) for step, _ in expected]
        assert trace["y"] == [value for _, value in expected]
        assert [row[0] for row in trace["customdata"]] == [value for _, value in expected]
    (raw,) = traces(figures["loss"], "train_loss", "raw")
    assert raw["y"] == [value for _, value in db_points(job, "train_loss")]
    (marks,) = traces(figures["loss"], "checkpoints")
    assert marks["x"] == [10.0, 20.0, 30.0]
    (best,) = traces(figures["loss"], "full_valid_loss", "best")
    assert (best["x"][0], best["y"][0]) == (
        float(job.best_full_valid_step),
        job.best_full_valid_loss,
    )
    # The text alternatives describe the same data.
    assert "Loss of " in html and "30 points" in html
    config = json_script(html, "tb-run-config")
    assert config["last_step"] == 30 and config["terminal"] is True
    assert config["metrics_url"] == f"/runs/{job.pk}/metrics.json"
    assert config["conversion"]["steps_per_epoch"] == 10
    assert (
        "vendor/plotly.min.js" in html
        and "js/charts_common.js" in html
        and "js/run_charts.js" in html
    )


def test_the_include_shows_controls_exports_and_the_diagnosis(make_job) -> None:
    job = make_job(steps=60, epochs=3)
    html = render_include(job, make_user("member"))
    for text in ('data-tb-smoothing', 'data-tb-x-axis', 'data-tb-log-y', 'data-tb-series="valid"',
                 f'href="/runs/{job.pk}/export.csv"', f'href="/runs/{job.pk}/export.json"',
                 "Fit diagnosis", "How the verdict is reached", "Best checkpoint:", "Evidence",
                 "Create share link"):  # fmt: skip
        assert text in html, text
    curve = RunDiagnosis.objects.get(job=job)
    assert curve.diagnosis["verdict"] in html or curve.diagnosis["summary"] in html
    assert curve.diagnosis["summary"] in html
    assert "Rules, checked in this order" in html  # the rule text, inside <details>
    # The best point is named with whether its checkpoint is still available.
    assert "available" in html
    assert f"step {job.best_full_valid_step}" in html
    viewer_html = render_include(job, make_user("viewer", "v2"))
    assert "Create share link" not in viewer_html


def test_a_long_run_is_downsampled_for_display_but_exported_whole(make_job) -> None:
    job = make_job(steps=0, total_steps=20_000)
    rows = [{"step": s, "train_loss": 3.0 / (1 + s / 500) + (0.5 if s == 12_345 else 0.0),
             "train_accuracy": s / 40_000, "valid_loss": 2.5 if s % 100 == 0 else None}
            for s in range(1, 20_001)]  # fmt: skip
    metrics.upsert(job.pk, rows)
    viewer = client_for("viewer")
    figures = viewer.get(f"/runs/{job.pk}/figures.json").json()["figures"]
    for trace in figures["loss"]["data"] + figures["accuracy"]["data"]:
        assert len(trace["x"]) <= 2000
    (train,) = traces(figures["loss"], "train_loss", "smoothed")
    assert train["x"][0] == 1.0 and train["x"][-1] == 20_000.0
    assert 12_345.0 in train["x"]  # the spike survives
    assert min(train["y"]) == min(r["train_loss"] for r in rows)
    (valid,) = traces(figures["loss"], "valid_loss", "points")
    assert len(valid["x"]) == 200  # sparse series are never densified or thinned
    exported = viewer.get(f"/runs/{job.pk}/export.csv")
    assert exported["Content-Disposition"] == f'attachment; filename="run-{job.pk}-metrics.csv"'
    table = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert len(table) == 20_000
    assert float(table[12_344]["train_loss"]) == rows[12_344]["train_loss"]
    as_json = json.loads(viewer.get(f"/runs/{job.pk}/export.json").content)
    assert len(as_json) == 20_000 and as_json[99]["valid_loss"] == 2.5


def test_exports_hold_every_point_and_extra_metric(make_job) -> None:
    job = make_job(steps=30)
    viewer = client_for("viewer")
    table = list(
        csv.DictReader(io.StringIO(viewer.get(f"/runs/{job.pk}/export.csv").content.decode()))
    )
    assert [int(row["step"]) for row in table] == list(range(1, 31))
    assert table[4]["valid_loss"] == repr(db_points(job, "valid_loss")[0][1])
    assert table[0]["learning_rate"] == "0.0001"
    data = json.loads(viewer.get(f"/runs/{job.pk}/export.json").content)
    assert data[0]["extra"] == {"learning_rate": 0.0001}
    assert [row["train_loss"] for row in data] == [v for _, v in db_points(job, "train_loss")]


def test_live_endpoint_returns_only_points_after_the_given_step(make_job) -> None:
    job = make_job(steps=0, status="running", finished_at=None, total_steps=50)
    metrics.upsert(job.pk, [{"step": s, "train_loss": 1.0 / s} for s in range(1, 21)])
    viewer = client_for("viewer")
    data = viewer.get(f"/runs/{job.pk}/metrics.json?after_step=15").json()
    assert [p["step"] for p in data["points"]] == [16, 17, 18, 19, 20]
    assert data["points"][0]["train_loss"] == 1.0 / 16 and data["points"][0]["valid_loss"] is None
    assert data["last_step"] == 20 and data["terminal"] is False and data["total_steps"] == 50
    nothing = viewer.get(f"/runs/{job.pk}/metrics.json?after_step=20").json()
    assert nothing["points"] == [] and nothing["last_step"] == 20
    metrics.upsert(job.pk, [{"step": 21, "train_loss": 0.01, "full_valid_loss": 0.5}])
    Job.objects.filter(pk=job.pk).update(status="succeeded")
    final = viewer.get(f"/runs/{job.pk}/metrics.json?after_step=20").json()
    assert final["points"] == [{"step": 21, "train_loss": 0.01, "train_accuracy": None,
                                "valid_loss": None, "valid_accuracy": None,
                                "full_valid_loss": 0.5, "full_valid_accuracy": None}]  # fmt: skip
    assert final["terminal"] is True
    assert viewer.get(f"/runs/{job.pk}/metrics.json?after_step=-3").status_code == 400
    assert viewer.get(f"/runs/{job.pk}/metrics.json?after_step=abc").status_code == 400
    assert viewer.get("/runs/00000000-0000-0000-0000-000000000001/metrics.json").status_code == 404
    assert "no-cache" in viewer.get(f"/runs/{job.pk}/metrics.json")["Cache-Control"]


def test_live_endpoint_pages_long_gaps(make_job, settings) -> None:
    job = make_job(status="running", finished_at=None)
    metrics.upsert(job.pk, [{"step": s, "train_loss": 1.0} for s in range(1, 2501)])
    data = client_for("viewer").get(f"/runs/{job.pk}/metrics.json?after_step=0").json()
    assert len(data["points"]) == 2000 and data["has_more"] is True and data["last_step"] == 2000


def test_figures_json_changes_axis_scale_and_smoothing(make_job) -> None:
    job = make_job(steps=30, epochs=3, trained_tokens=3000)
    viewer = client_for("viewer")
    epoch = viewer.get(f"/runs/{job.pk}/figures.json?x_axis=epoch").json()
    (train,) = traces(epoch["figures"]["loss"], "train_loss", "smoothed")
    assert epoch["x_axis"] == "epoch" and train["x"][:2] == [0.1, 0.2]
    tokens = viewer.get(f"/runs/{job.pk}/figures.json?x_axis=tokens&log_y=true").json()
    (train,) = traces(tokens["figures"]["loss"], "train_loss", "smoothed")
    assert train["x"][0] == 100.0
    assert tokens["figures"]["loss"]["layout"]["yaxis"]["type"] == "log"
    assert tokens["figures"]["accuracy"]["layout"]["yaxis"]["type"] == "linear"
    smooth = viewer.get(f"/runs/{job.pk}/figures.json?smoothing=0.6").json()
    (train,) = traces(smooth["figures"]["loss"], "train_loss", "smoothed")
    raw = [row[0] for row in train["customdata"]]
    assert train["y"] == ema(raw, 0.6) and train["y"] != raw
    assert "Fit diagnosis" in smooth["diagnosis_html"]
    # An axis the run cannot provide falls back to steps; nonsense is ignored.
    bare = make_job(steps=10, epochs=0, hyperparameters={}, requested_hyperparameters={},
                    trained_tokens=None, checkpoints=False)  # fmt: skip
    assert viewer.get(f"/runs/{bare.pk}/figures.json?x_axis=epoch").json()["x_axis"] == "step"
    assert (
        viewer.get(f"/runs/{job.pk}/figures.json?x_axis=bogus&smoothing=7").json()["x_axis"]
        == "step"
    )


def test_figures_are_read_from_the_stored_curves_and_diagnosis(make_job) -> None:
    job = make_job(steps=300)
    viewer = client_for("viewer")
    url = f"/runs/{job.pk}/figures.json"
    # The first request already reads no metric row: the ingest stored the curves, and the
    # diagnosis of the finished run is computed once and stored.
    first = viewer.get(url).json()
    assert RunDiagnosis.objects.filter(job=job).exists()
    with CaptureQueriesContext(db_connection) as queries:
        second = viewer.get(url).json()
    assert second["figures"] == first["figures"]
    assert not any("jobs_metricpoint" in q["sql"] for q in queries.captured_queries)
    # A new sync of the run: the curves move with the ingest, the diagnosis with the run.
    metrics.upsert(job.pk, [{"step": 301, "train_loss": 0.001}])
    Job.objects.filter(pk=job.pk).update(last_step=301, total_steps=301)
    third = viewer.get(url).json()
    (train,) = traces(third["figures"]["loss"], "train_loss", "smoothed")
    assert train["x"][-1] == 301.0
    # A running run whose refresh has not run yet (no worker here): its diagnosis is computed
    # from the rows once (one query) and kept under its last step; its curves come from the
    # ingest as well.
    running = make_job(steps=30, status="running", finished_at=None)
    with CaptureQueriesContext(db_connection) as queries:
        data = viewer.get(f"/runs/{running.pk}/figures.json").json()
    assert data["last_step"] == 30
    assert sum("jobs_metricpoint" in q["sql"] for q in queries.captured_queries) == 1
    stored = RunDiagnosis.objects.get(job=running)
    assert stored.fingerprint.startswith("live|") and "|30|" in stored.fingerprint
    with CaptureQueriesContext(db_connection) as queries:
        again = viewer.get(f"/runs/{running.pk}/figures.json").json()
    assert again["diagnosis_html"] == data["diagnosis_html"]
    assert not any("jobs_metricpoint" in q["sql"] for q in queries.captured_queries)


def test_the_include_runs_a_constant_number_of_queries(make_job) -> None:
    small, large = make_job(steps=30), make_job(steps=3000, epochs=5)
    user = make_user("member")
    user.has_perm("core.read_all")  # loads the permission cache once
    counts = []
    for job in (small, large):
        for _ in range(2):  # cold (reads metric rows, stores the curves), then cached
            with CaptureQueriesContext(db_connection) as queries:
                render_include(job, user)
            counts.append(len(queries.captured_queries))
    assert counts[0] == counts[2] and counts[1] == counts[3] and counts[1] < counts[0]
    assert counts[0] <= 7  # the guardrail marks on the chart are one of them


def test_run_names_and_checkpoint_ids_are_escaped_in_figures(make_job, settings) -> None:
    job = make_job(steps=30, name=XSS)
    Checkpoint.objects.filter(job=job).update(model_name=XSS)
    html = render_include(job, make_user("member"))
    assert XSS not in html
    figures = json_script(html, "tb-run-figures")
    text = json.dumps(figures)
    assert XSS not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in figures["loss"]["layout"]["title"]["text"]
    (marks,) = traces(figures["loss"], "checkpoints")
    assert all(XSS not in hover for hover in marks["text"])
    data = client_for("viewer").get(f"/runs/{job.pk}/figures.json").json()
    assert XSS not in json.dumps(data["figures"]) and XSS not in data["diagnosis_html"]
    # Descriptions are plain text, which the page sets with textContent (never as HTML).
    assert data["descriptions"]["loss"].startswith(f"Loss of {XSS} by step")
    script = (settings.BASE_DIR / "static" / "js" / "run_charts.js").read_text()
    assert "descriptions[kind].textContent = data.descriptions[kind]" in script
    assert "innerHTML = data.descriptions" not in script


def test_runs_without_metrics_render_empty_charts(make_job) -> None:
    pending = make_job(status="pending", provider_job_id=None, started_at=None, finished_at=None,
                       trained_tokens=None, hyperparameters={})  # fmt: skip
    failed = make_job(status="failed", finished_at=None)
    for job in (pending, failed):
        html = render_include(job, make_user("member", f"m-{job.pk}"))
        figures = json_script(html, "tb-run-figures")
        assert figures["loss"]["data"] == []
        assert figures["loss"]["layout"]["annotations"][0]["text"] == "No loss metrics yet."
        assert "no loss metrics yet" in html
        assert "Not enough data yet" in html
    assert (
        json_script(render_include(pending, make_user("viewer")), "tb-run-config")["terminal"]
        is False
    )

"""The compare page: overlaid curves, tables, scatters, adding and removing runs, CSV export,
and a constant number of queries whatever the number of runs."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from dashboard.charts import RUN_PALETTE
from jobs.models import Job
from tests.dashboard.conftest import XSS
from tests.dashboard.helpers import db_points, json_script, traces
from tests.permissions import client_for

pytestmark = pytest.mark.django_db


def url(*jobs: Job, extra: str = "") -> str:
    return "/compare/?runs=" + ",".join(str(job.pk) for job in jobs) + extra


def test_overlaid_curves_hold_every_run_in_a_consistent_colour(make_job) -> None:
    a = make_job(steps=30, seed=1, name="a")
    b = make_job(steps=30, seed=2, name="b", hyperparameters={"n_epochs": 3, "batch_size": 2,
                                                            "learning_rate_multiplier": 0.5})  # fmt: skip
    page = client_for("viewer").get(url(a, b))
    assert page.status_code == 200
    html = page.content.decode()
    figures = json_script(html, "tb-compare-figures")
    for position, job in enumerate((a, b)):
        colour = RUN_PALETTE[position]
        for kind, column in (("loss", "train_loss"), ("loss", "valid_loss"),
                             ("loss", "full_valid_loss"), ("accuracy", "train_accuracy"),
                             ("accuracy", "full_valid_accuracy")):  # fmt: skip
            role = "smoothed" if column.startswith("train") else "points"
            (trace,) = [
                t for t in traces(figures[kind], column, role) if t["meta"]["run"] == str(job.pk)
            ]
            expected = db_points(job, column)
            assert trace["x"] == [float(s) for s, _ in expected]
            assert trace["y"] == [v for _, v in expected]
            assert trace["line"]["color"] == colour
        assert f'fill="{RUN_PALETTE[position]}"' in html  # the swatch (SVG: no inline style)
    assert figures["loss"]["layout"]["meta"]["runs"] == [str(a.pk), str(b.pk)]
    assert "Loss of 2 runs by step" in html  # text alternative
    for text in ("data-tb-smoothing", "data-tb-x-axis", "data-tb-log-y", "js/compare_page.js",
                 f'href="/jobs/{a.pk}/"', "Download the tables (CSV)"):  # fmt: skip
        assert text in html, text


def test_hyperparameter_and_metric_tables(make_job) -> None:
    a = make_job(steps=30, seed=5, trained_tokens=2_000_000)
    b = make_job(steps=30, seed=0, trained_tokens=1_000_000,
                 hyperparameters={"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 1.8})  # fmt: skip
    viewer = client_for("viewer")
    html = viewer.get(url(a, b)).content.decode()
    # Differences only by default: batch size differs, epochs and lr multiplier do not.
    found = re.findall(r'<tr data-same="(true|false)"( hidden)?><th scope="row">([^<]+)</th>', html)
    state = {label: (same, bool(hidden)) for same, hidden, label in found}
    assert state["Batch size"] == ("false", False)
    assert state["Epochs"] == ("true", True) and state["Learning-rate multiplier"] == ("true", True)
    all_rows = viewer.get(url(a, b, extra="&hp=all")).content.decode()
    assert re.search(r'<tr data-same="true"><th scope="row">Epochs</th>', all_rows)
    # Metrics: values equal the database; the best of each column is highlighted.
    cells = re.findall(
        r'<td class="num( tb-best)?" data-key="([a-z_]+)" data-value="([^"]*)">', html
    )
    by_key: dict[str, list[tuple[bool, str]]] = {}
    for best, key, value in cells:
        by_key.setdefault(key, []).append((bool(best), value))
    assert [float(v) for _, v in by_key["final_train_loss"]] == [
        a.final_train_loss,
        b.final_train_loss,
    ]
    assert [float(v) for _, v in by_key["best_full_valid_loss"]] == [
        a.best_full_valid_loss,
        b.best_full_valid_loss,
    ]
    assert [int(v) for _, v in by_key["best_full_valid_step"]] == [
        a.best_full_valid_step,
        b.best_full_valid_step,
    ]
    lower = 0 if a.best_full_valid_loss < b.best_full_valid_loss else 1
    assert [best for best, _ in by_key["best_full_valid_loss"]] == [i == lower for i in range(2)]
    assert [best for best, _ in by_key["cost"]] == [False, True]  # half the tokens, half the cost
    final_acc = [db_points(j, "full_valid_accuracy")[-1][1] for j in (a, b)]
    assert [float(v) for _, v in by_key["final_full_valid_accuracy"]] == final_acc
    # The scatter plots best validation loss against the varying batch size only.
    scatters = json_script(html, "tb-compare-scatters")
    assert [s["layout"]["meta"]["parameter"] for s in scatters] == ["batch_size"]
    assert sorted(scatters[0]["data"][0]["x"]) == [1, 4]


def latest_cells(html: str) -> dict[str, list[bool]]:
    """Per metric column of the compare table, which runs' cells say "latest"."""
    cells = re.findall(
        r'<td class="num(?: tb-best)?" data-key="([a-z_]+)" data-value="[^"]*"'
        r'( data-latest="true" title="[^"]*")?>(.*?)</td>',
        html,
    )
    found: dict[str, list[bool]] = {}
    for key, marked, inner in cells:
        assert bool(marked) == ('<span class="tb-latest">latest</span>' in inner), inner
        found.setdefault(key, []).append(bool(marked))
    return found


def test_last_values_of_a_run_still_going_read_latest(make_job) -> None:
    done = make_job(steps=30, seed=1, name="done")
    going = make_job(steps=20, seed=2, name="going", status="running", finished_at=None)
    html = client_for("viewer").get(url(done, going)).content.decode()
    headings = re.findall(r'<th scope="col" class="num">([^<]+)</th>', html)
    assert headings[:6] == ["Train loss", "Best full-valid loss", "Step of best",
                            "Full-valid loss", "Train accuracy", "Full-valid accuracy"]  # fmt: skip
    assert not any(heading.startswith("Final") for heading in headings)
    marks = latest_cells(html)
    # Per run: the running one's last values are marked, the finished one's are not; a best
    # so far, a step, tokens, cost and duration are never called "latest".
    for key in ("final_train_loss", "final_full_valid_loss", "final_train_accuracy",
                "final_full_valid_accuracy"):  # fmt: skip
        assert marks[key] == [False, True], key
    for key in ("best_full_valid_loss", "best_full_valid_step", "trained_tokens", "cost"):
        assert marks[key] == [False, False], key
    assert 'title="Latest value: going has not finished"' in html
    assert 'id="tb-latest-note"' in html
    # Both finished: nothing is latest, and no note.
    Job.objects.filter(pk=going.pk).update(status="succeeded", finished_at=done.finished_at)
    html = client_for("viewer").get(url(done, going)).content.decode()
    assert not any(any(v) for v in latest_cells(html).values())
    assert "tb-latest" not in html.split('id="tb-metrics-title"')[1].split("</section>")[0]
    # The CSV says which run's values are only the latest: its status.
    Job.objects.filter(pk=going.pk).update(status="running", finished_at=None)
    table = list(csv.DictReader(io.StringIO(
        client_for("viewer").get(f"/compare/export.csv?runs={done.pk},{going.pk}").content.decode()
    )))  # fmt: skip
    assert [(row["run"], row["status"]) for row in table] == [("done", "succeeded"),
                                                             ("going", "running")]  # fmt: skip
    assert float(table[1]["final_train_loss"]) == db_points(going, "train_loss")[-1][1]


def test_bookmarkable_urls_add_and_remove(make_job) -> None:
    a, b, c = make_job(steps=10), make_job(steps=10), make_job(steps=10)
    viewer = client_for("viewer")
    # Repeated parameters (the list's form without JavaScript) become the comma form.
    response = viewer.get(f"/compare/?runs={a.pk}&runs={b.pk}")
    assert response.status_code == 302 and response["Location"] == url(a, b)
    # Adding from the select appends the run to the address.
    response = viewer.get(f"/compare/?runs={a.pk},{b.pk}&add={c.pk}")
    assert response["Location"] == url(a, b, c)
    html = viewer.get(url(a, b, c)).content.decode()
    remove_b = re.search(
        rf'href="(/compare/\?runs=[^"]+)">Remove<span class="sr-only"> {b.name} ', html
    )
    assert remove_b and remove_b.group(1) == url(a, c).replace("&", "&amp;")
    assert f'<option value="{c.pk}"' not in html  # already compared: not offered again
    # Duplicates and junk are dropped; fewer than two runs shows the chooser.
    assert viewer.get(f"/compare/?runs={a.pk},{a.pk},nope")["Location"] == f"/compare/?runs={a.pk}"
    single = viewer.get(f"/compare/?runs={a.pk}").content.decode()
    assert "Choose two or more runs" in single and "plotly" not in single
    assert "Choose two or more runs" in viewer.get("/compare/").content.decode()
    gone = viewer.get(url(a, b) + ",00000000-0000-0000-0000-000000000009").content.decode()
    assert "no longer exist" in gone


def test_compare_runs_a_constant_number_of_queries(make_job) -> None:
    jobs = [make_job(steps=40, seed=i) for i in range(10)]
    viewer = client_for("viewer")
    viewer.get("/")

    def count(selection: list[Job]) -> int:
        with CaptureQueriesContext(db_connection) as queries:
            assert viewer.get(url(*selection)).status_code == 200
        return len(queries.captured_queries)

    # Cold (the first request after the ingest) costs what warm does: nothing is computed.
    cold_two, cold_ten = count(jobs[:2]), count(jobs)
    warm_two, warm_ten = count(jobs[:2]), count(jobs)
    assert cold_two == cold_ten == warm_two == warm_ten
    # Curves come from what the ingest stored, never from the metric rows, running or not.
    for job in jobs:
        Job.objects.filter(pk=job.pk).update(status="running", next_poll_at=None)
    with CaptureQueriesContext(db_connection) as queries:
        viewer.get(url(*jobs))
    assert not any("jobs_metricpoint" in q["sql"] for q in queries.captured_queries)
    assert len(queries.captured_queries) == warm_ten


def test_many_runs_share_a_point_budget(make_job) -> None:
    jobs = [make_job(steps=1200, seed=i) for i in range(20)]
    html = client_for("viewer").get(url(*jobs)).content.decode()
    figures = json_script(html, "tb-compare-figures")
    assert all(len(t["x"]) <= 150 for t in figures["loss"]["data"])
    assert "at most 150 points" in html
    # The best point of every run survives the reduction.
    bests = [t for t in figures["loss"]["data"] if t["meta"]["role"] == "best"]
    assert sorted(b["y"][0] for b in bests) == sorted(j.best_full_valid_loss for j in jobs)
    too_many = [make_job() for _ in range(1)] + jobs
    response = client_for("viewer").get(url(*too_many))
    assert response.status_code == 302 and response["Location"].count(",") == 19


def test_figures_json_and_csv_export(make_job) -> None:
    a = make_job(steps=30, name="first")
    b = make_job(steps=30, name="=HYPERLINK(1)", seed=3)
    viewer = client_for("viewer")
    data = viewer.get(f"/compare/figures.json?runs={a.pk},{b.pk}&x_axis=epoch&log_y=true").json()
    assert data["x_axis"] == "epoch"
    assert data["figures"]["loss"]["layout"]["yaxis"]["type"] == "log"
    assert viewer.get(f"/compare/figures.json?runs={a.pk}").status_code == 400
    response = viewer.get(f"/compare/export.csv?runs={a.pk},{b.pk}")
    assert response["Content-Disposition"] == 'attachment; filename="comparison.csv"'
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["run_id"] for row in table] == [str(a.pk), str(b.pk)]
    assert table[1]["run"] == "'=HYPERLINK(1)"  # no formula injection
    assert float(table[0]["best_full_valid_loss"]) == a.best_full_valid_loss
    assert int(table[0]["trained_tokens"]) == a.trained_tokens
    assert "batch_size" in table[0] and "cost" in table[0]


def test_run_names_are_escaped_on_the_compare_page(make_job) -> None:
    a = make_job(steps=20, name=XSS, hyperparameters={"n_epochs": 3, "batch_size": 1,
                                                     "learning_rate_multiplier": 1})  # fmt: skip
    b = make_job(steps=20, tags=[XSS], notes=XSS)
    html = client_for("member").get(url(a, b)).content.decode()
    assert XSS not in html
    for element in ("tb-compare-figures", "tb-compare-scatters"):
        assert XSS not in json.dumps(json_script(html, element))
    assert "&lt;img src=x onerror=alert(1)&gt;" in html

"""Evaluation pages: permissions, the summary and grid with filters and sorting, the form with
its run pre-fill and cost estimate, exports and escaping."""

from __future__ import annotations

import csv
import io
import re

import pytest

from evals.choices import run_choices
from evals.models import Evaluation
from evals.services import evaluation_cancel
from tests.evals.conftest import XSS, Trained
from tests.permissions import LOGIN, SHARE, assert_matrix, client_for

pytestmark = pytest.mark.django_db(transaction=True)

READ = {"anonymous": LOGIN, "norole": 403, "viewer": 200, "member": 200, "staff": 200, SHARE: LOGIN}
ACT_PAGE = {**READ, "viewer": 403}


def rows(html: str) -> list[str]:
    if 'id="evaluation-grid"' not in html:
        assert "No example matches these filters." in html
        return []
    body = html.split('id="evaluation-grid"', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<tr data-example="(\d+)">', body)


def test_permission_matrix(finished: Evaluation) -> None:
    pk = finished.pk
    for url in (
        "/evaluations/", f"/evaluations/{pk}/", f"/evaluations/{pk}/status.json",
        f"/evaluations/{pk}/export.csv", f"/evaluations/{pk}/?fragment=results",
    ):  # fmt: skip
        assert_matrix(url, READ)
    assert_matrix("/evaluations/new/", ACT_PAGE)
    posts = {**READ, "viewer": 403, "member": 302, "staff": 302}
    assert_matrix(f"/evaluations/{pk}/rerun-failed/", posts, method="post")
    assert_matrix(f"/evaluations/{pk}/cancel/", posts, method="post")
    assert_matrix(f"/evaluations/{pk}/win-rate/", posts, method="post")
    assert Evaluation.objects.get(pk=pk).status == "succeeded"  # a finished one stays so
    assert client_for("member").get("/evaluations/999999/").status_code == 404


def test_results_page_summary_grid_filters_and_sort(finished: Evaluation) -> None:
    client = client_for("viewer")
    html = client.get(f"/evaluations/{finished.pk}/").content.decode()
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'id="evaluation-summary"' in html and 'id="evaluation-chart"' in html
    assert 'aria-label="Bar chart of the mean score per model' in html
    # Exact-match means per column, in column order, as the summary cells carry them.
    means = re.findall(r'data-metric="exact_match" data-mean="([0-9.]+)"', html)
    assert [float(m) for m in means] == [0.0, 0.75, 1.0, 1.0, 1.0]
    # 12 examples: 0.75 and the three 1.0 columns overlap within their intervals: a tie of
    # four, no "best".
    assert html.count('class="tb-best" data-metric="exact_match"') == 0
    assert (
        html.count('title="The 95% intervals overlap the top score: no clear best">tie</span>') >= 4
    )
    assert "0.00 (0.00–0.24)" in html  # Wilson interval of 0/12
    assert len(rows(html)) == 12
    assert "<del>" in html and "<ins>" in html  # base outputs differ from the references

    def shown(query: str) -> list[str]:
        return rows(client.get(f"/evaluations/{finished.pk}/?{query}").content.decode())

    assert len(shown("show=disagree")) == 12  # the base model disagrees everywhere
    failing = shown("show=fails&column=1&metric=exact_match")
    assert len(failing) == 3  # the first checkpoint misses 3 of 12
    assert shown("show=fails&column=4") == []
    ordered = shown("sort=1&order=asc&metric=exact_match")
    assert set(ordered[:3]) == set(failing)
    assert set(shown("sort=1&order=desc&metric=exact_match")[-3:]) == set(failing)
    assert len(shown("show=nonsense&sort=99&page=abc")) == 12  # bad params: defaults, no 500

    fragment = client.get(f"/evaluations/{finished.pk}/?fragment=results").content.decode()
    assert 'id="evaluation-summary"' in fragment and "<html" not in fragment
    status = client.get(f"/evaluations/{finished.pk}/status.json").json()
    assert status["terminal"] and status["percent"] == 100.0
    assert (status["cells_done"], status["cells_total"], status["cells_failed"]) == (60, 60, 0)


def test_csv_export_has_every_cell(finished: Evaluation) -> None:
    response = client_for("viewer").get(f"/evaluations/{finished.pk}/export.csv")
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table[0][:5] == ["example", "line", "model", "model_name", "status"]
    assert len(table) == 1 + 60
    exact = table[0].index("exact_match")
    by_model: dict[str, list[float]] = {}
    for row in table[1:]:
        by_model.setdefault(row[2], []).append(float(row[exact]))
    assert [sum(v) / len(v) for v in by_model.values()] == [0.0, 0.75, 1.0, 1.0, 1.0]


def test_new_form_prefills_from_a_run_estimates_and_starts(trained: Trained) -> None:
    client = client_for("member")
    html = client.get(f"/evaluations/new/?job={trained.job.pk}").content.decode()
    choices = run_choices(trained.job)
    for choice in choices:
        assert re.search(rf'<option value="{re.escape(choice.key)}" selected>', html), choice.key
    assert re.search(rf'<option value="{trained.dataset.pk}" selected>', html)
    data = {
        "dataset": trained.dataset.pk, "models": [c.key for c in choices], "temperature": "0",
        "exact_match": "on", "exact_ignore_whitespace": "on", "token_f1": "on",
        "judge_prompt": "", "judge_pairwise_prompt": "",
    }  # fmt: skip
    estimate = client.post("/evaluations/new/", {**data, "action": "estimate"}).content.decode()
    assert 'id="estimate-total"' in estimate and "12 examples" in estimate
    assert not Evaluation.objects.exists()

    response = client.post("/evaluations/new/", {**data, "action": "start"})
    evaluation = Evaluation.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/evaluations/{evaluation.pk}/"
    assert evaluation.cells_total == 60 and evaluation.status in ("queued", "running", "succeeded")
    assert [c.model_name for c in evaluation.columns.all()] == [c.model_name for c in choices]

    def errors(**changes: object) -> str:
        body = {**data, "action": "start", **changes}
        response = client.post("/evaluations/new/", body)
        assert response.status_code == 200
        return response.content.decode()

    assert "Select a valid choice" in errors(models=["ft:nope"])
    assert "Give the pattern" in errors(regex="on", regex_pattern="")
    assert "not JSON" in errors(json_schema="on", json_schema_text="{nope")
    assert "at least one grader" in errors(exact_match="", token_f1="")
    assert "Ensure this value is less than or equal to 2" in errors(temperature="3")
    assert Evaluation.objects.count() == 1  # nothing half-written
    # A worker (when one runs) must not carry this one into the next test.
    evaluation_cancel(evaluation=evaluation, user=None)


def test_page_script_never_injects_html() -> None:
    from django.conf import settings

    for name in ("evaluation_detail.js", "live_poll.js", "playground.js"):
        script = (settings.BASE_DIR / "static" / "js" / name).read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in script, (name, sink)
    detail = (settings.BASE_DIR / "static" / "js" / "evaluation_detail.js").read_text()
    # The only markup it parses is the server-rendered results fragment; status text is text.
    assert detail.count("parseFromString") == 1 and "text.textContent = line" in detail
    assert "tuneboardPoll" in detail  # the shared poller: backs off, pauses when hidden

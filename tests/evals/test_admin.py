"""The Django admin for evaluations: lists with filters and search, read-only outputs, and
actions that call the services (re-run failed cells, cancel)."""

from __future__ import annotations

import pytest

from evals.choices import run_choices
from evals.models import EvalOutput, Evaluation
from tests.evals.conftest import Trained
from tests.evals.test_run import create
from tests.permissions import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_admin_lists_and_actions(trained: Trained) -> None:
    evaluation = create(trained, [run_choices(trained.job)[-1].key])
    EvalOutput.objects.filter(evaluation=evaluation, example__position__lt=2).update(
        status="failed", error="HTTP 500 boom"
    )
    Evaluation.objects.filter(pk=evaluation.pk).update(
        status="succeeded", cells_done=2, cells_failed=2
    )
    staff = client_for("staff")
    for url in (
        "/admin/evals/evaluation/", "/admin/evals/evaluation/?status__exact=succeeded",
        "/admin/evals/evaluation/?q=eval-train", f"/admin/evals/evaluation/{evaluation.pk}/change/",
        "/admin/evals/evaloutput/?status__exact=failed", "/admin/evals/evaloutput/?q=boom",
        "/admin/evals/evalexample/",
    ):  # fmt: skip
        assert staff.get(url).status_code == 200, url
    assert staff.get("/admin/evals/evaluation/add/").status_code == 403
    assert staff.get("/admin/evals/evaloutput/add/").status_code == 403
    assert client_for("member").get("/admin/evals/evaluation/").status_code == 302
    failed = list(EvalOutput.objects.filter(status="failed").values_list("pk", flat=True))
    html = staff.get("/admin/evals/evaloutput/?q=boom").content.decode()
    assert "2 eval outputs" in html  # the search finds the two failed cells by their error

    # Outputs are read-only: a POST to the change page changes nothing.
    staff.post(f"/admin/evals/evaloutput/{failed[0]}/change/", {"content": "forged"})
    assert EvalOutput.objects.get(pk=failed[0]).content == ""

    response = staff.post(
        "/admin/evals/evaloutput/",
        {"action": "rerun_failed", "_selected_action": [failed[0]]},
    )
    assert response.status_code == 302
    assert EvalOutput.objects.get(pk=failed[0]).status == "pending"
    assert EvalOutput.objects.get(pk=failed[1]).status == "failed"  # only the chosen cell
    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.cells_failed, evaluation.cells_done) == ("queued", 1, 1)

    staff.post(
        "/admin/evals/evaluation/",
        {"action": "rerun_failed", "_selected_action": [evaluation.pk]},
    )
    assert not EvalOutput.objects.filter(status="failed").exists()
    staff.post(
        "/admin/evals/evaluation/", {"action": "cancel", "_selected_action": [evaluation.pk]}
    )
    assert Evaluation.objects.get(pk=evaluation.pk).status == "cancelled"

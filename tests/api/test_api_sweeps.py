"""Sweeps over the REST API: planned, started, read and cancelled with a token, refused as the
sweep page refuses (field named, nothing written), and the token permission matrix."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from datasets.models import Dataset
from jobs.models import Job, ProviderConnection, Sweep, SweepRun
from jobs.services import connection_save
from jobs.sweep_plans import SweepRequest, sweep_plan
from jobs.sweeps import sweep_advance
from tests.api.test_api import Api, token_for
from tests.jobs.test_views import DEAD_URL, SECRET
from tests.sandbox.data import chat_examples

pytestmark = pytest.mark.django_db

MODEL = "gpt-4o-mini-2024-07-18"


@pytest.fixture
def connection() -> ProviderConnection:
    return connection_save(name="Offline", kind="sandbox", base_url=DEAD_URL, api_key=SECRET)


@pytest.fixture
def dataset(make_dataset: Any) -> Dataset:
    return make_dataset(chat_examples(20, seed=5), name="sweep-train")


def body(dataset: Dataset, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "api-grid",
        "connection": "Offline",
        "training_dataset": dataset.pk,
        "base_models": [MODEL],
        "parameters": {"n_epochs": [1, 2, 3], "batch_size": [1, 2]},
        "budget_usd": "100.00",
        "concurrency": 2,
    }
    values.update(changes)
    return values


def test_a_sweep_is_planned_started_read_and_cancelled_with_a_token(
    connection: ProviderConnection, dataset: Dataset
) -> None:
    member = Api(token_for("member"))
    expected = sweep_plan(
        request=SweepRequest(
            name="api-grid",
            connection=connection,
            training_dataset=dataset,
            validation_dataset=None,
            space={"base_model": [MODEL], "n_epochs": [1, 2, 3], "batch_size": [1, 2], "seed": []},
            budget_usd=Decimal(100),
            concurrency=2,
        )
    )
    assert expected.total is not None

    plan = member.post("/sweeps/plan", body(dataset))
    assert plan.status_code == 200, plan.content
    planned = plan.json()
    assert planned["startable"] is True and planned["errors"] == []
    assert planned["total_usd"] == pytest.approx(float(expected.total))
    assert [(r["hyperparameters"], r["n_epochs"]) for r in planned["runs"]] == [
        ({"n_epochs": e, "batch_size": b}, e) for e in (1, 2, 3) for b in (1, 2)
    ]
    assert [r["cost_usd"] for r in planned["runs"]] == pytest.approx(
        [float(row.cost) for row in expected.rows if row.cost is not None]
    )
    assert not Sweep.objects.exists()  # planning writes nothing

    created = member.post("/sweeps", body(dataset))
    assert created.status_code == 201, created.content
    sweep = created.json()
    stored = Sweep.objects.get(pk=sweep["id"])
    assert (stored.name, stored.status, stored.concurrency) == ("api-grid", "running", 2)
    assert stored.created_by is not None and stored.created_by.get_username() == "member-write-api"
    assert stored.guardrails is None  # none given: the connection's defaults
    assert SweepRun.objects.filter(sweep=stored).count() == 6
    assert sweep["url"] == f"/sweeps/{stored.pk}/"
    assert [r["state"] for r in sweep["runs"]] == ["planned"] * 6
    assert sweep["planned_cost_usd"] == pytest.approx(float(expected.total), abs=0.0001)

    sweep_advance(sweep_id=stored.pk)
    viewer = Api(token_for("viewer", "read"))
    read = viewer.get(f"/sweeps/{stored.pk}").json()
    launched = [r for r in read["runs"] if r["state"] == "launched"]
    assert len(launched) == 2
    assert {r["run"] for r in launched} == {
        str(pk) for pk in Job.objects.filter(sweep_run__sweep=stored).values_list("pk", flat=True)
    }
    listed = viewer.get("/sweeps", status="running").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == stored.pk
    assert viewer.get("/sweeps", status="finished").json() == {"count": 0, "results": []}

    assert viewer.post(f"/sweeps/{stored.pk}/cancel", {}).status_code == 403
    cancelled = member.post(f"/sweeps/{stored.pk}/cancel", {})
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelling"
    assert [r["state"] for r in cancelled.json()["runs"]][2:] == ["skipped"] * 4
    Job.objects.filter(sweep_run__sweep=stored).update(status="cancelled")
    sweep_advance(sweep_id=stored.pk)
    again = member.post(f"/sweeps/{stored.pk}/cancel", {})
    assert again.status_code == 409 and "ended (cancelled)" in again.json()["detail"]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"budget_usd": "0.01"}, "budget_usd", "over the $0.01 budget"),
        ({"parameters": {"n_epochs": [0]}}, "parameters.n_epochs", "outside"),
        ({"parameters": {"epochs": [2]}}, "parameters.epochs", "declares no such parameter"),
        ({"parameters": {"n_epochs": {"low": 1, "high": 4}}}, "parameters.n_epochs", "random"),
        ({"connection": "Nope"}, "connection", "No hosted connection"),
        ({"mode": "random"}, "samples", "how many runs"),
        ({"base_models": ["not-a-model"]}, "base_models", "not one of the available choices"),
        ({"guardrails": [{"kind": "divergence"}] * 2}, "guardrails", "given twice"),
    ],
)
def test_a_refused_sweep_names_the_field_and_writes_nothing(
    connection: ProviderConnection,
    dataset: Dataset,
    changes: dict[str, Any],
    field: str,
    message: str,
) -> None:
    member = Api(token_for("member"))
    for path in ("/sweeps/plan", "/sweeps"):
        response = member.post(path, body(dataset, **changes))
        if path == "/sweeps/plan" and field in ("budget_usd", "guardrails"):
            # The plan itself is answered; what refuses it is listed.
            assert response.status_code == 200, response.content
            plan = response.json()
            assert plan["startable"] is False
            assert any(e["field"] == field and message in e["message"] for e in plan["errors"])
            continue
        assert response.status_code == 400, response.content
        errors = response.json()["errors"]
        assert any(e["field"] == field and message in e["message"] for e in errors), errors
    assert not Sweep.objects.exists() and not Job.objects.exists()


def test_sweep_endpoints_permission_matrix(
    connection: ProviderConnection, dataset: Dataset
) -> None:
    anonymous = Api(None)
    read_only = Api(token_for("member", "read"))
    viewer = Api(token_for("viewer", "read"))
    assert anonymous.get("/sweeps").status_code == 401
    assert anonymous.post("/sweeps", body(dataset)).status_code == 401
    assert viewer.get("/sweeps").status_code == 200
    for api in (viewer, read_only):
        assert api.post("/sweeps/plan", body(dataset)).status_code == 403
        assert api.post("/sweeps", body(dataset)).status_code == 403
    staff = Api(token_for("staff"))
    assert staff.post("/sweeps", body(dataset)).status_code == 201
    assert viewer.get("/sweeps/999999").status_code == 404
    assert staff.post("/sweeps/999999/cancel", {}).status_code == 404


def test_the_parameters_a_sweep_may_vary_are_listed_per_hosted_connection(
    connection: ProviderConnection,
) -> None:
    connection_save(name="Together", kind="together", base_url=DEAD_URL, api_key=SECRET)
    connection_save(name="GPUs", kind="selfhosted", base_url="", api_key="")
    viewer = Api(token_for("viewer", "read"))
    listed = {c["connection"]: c for c in viewer.get("/sweeps/parameters").json()}
    assert set(listed) == {"Offline", "Together"}  # self-hosted runs are not swept
    openai = listed["Offline"]
    assert openai["active_jobs"] == 3
    assert [p["name"] for p in openai["parameters"]] == [
        "n_epochs",
        "batch_size",
        "learning_rate_multiplier",
    ]
    epochs = openai["parameters"][0]
    assert (epochs["kind"], epochs["low"], epochs["high"], epochs["default"]) == (
        "int",
        1,
        50,
        None,
    )
    dpo = viewer.get("/sweeps/parameters", method="dpo").json()
    assert "beta" in [
        p["name"] for p in next(c for c in dpo if c["connection"] == "Offline")["parameters"]
    ]
    together = [p["name"] for p in listed["Together"]["parameters"]]
    assert "learning_rate" in together and "learning_rate_multiplier" not in together
    assert Api(None).get("/sweeps/parameters").status_code == 401

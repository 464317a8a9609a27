"""REST API v1 (issue 17, deliverable 2): token auth and its permission matrix, every use in
the audit log, self-hosted runs created and reported idempotently, reads of any run and
dataset, and bad input answered 400 with the field named and nothing written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from core.models import AuditEntry
from core.services import api_token_create
from datasets.models import Dataset
from jobs.models import Checkpoint, Job, JobEvent, MetricPoint, ProviderConnection
from jobs.services import connection_save
from tests.permissions import client_for, make_user

pytestmark = pytest.mark.django_db


def token_for(role: str, scope: str = "write") -> str:
    user = make_user(role, username=f"{role}-{scope}-api")
    return api_token_create(user=user, name=f"{role} {scope}", scope=scope)[1]


class Api:
    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get("/api/v1" + path, params, headers=self.headers)

    def post(self, path: str, body: Any) -> Any:
        return self.client.post(
            "/api/v1" + path, json.dumps(body), content_type="application/json",
            headers=self.headers,
        )  # fmt: skip


@pytest.fixture
def member() -> Api:
    return Api(token_for("member"))


def create_run(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"external_id": "exp-1", "name": "tiny", "base_model": "tiny-gpt", **fields}
    response = api.post("/runs", body)
    assert response.status_code in (200, 201), response.content
    return response.json()


def test_permission_matrix_over_the_api() -> None:
    tokens = {
        "viewer": token_for("viewer", "read"),
        "member_read": token_for("member", "read"),
        "member": token_for("member"),
        "staff": token_for("staff"),
    }
    run_body = {"external_id": "matrix", "name": "m"}
    outcomes: dict[str, tuple[int, int]] = {}
    for who, token in {"anonymous": None, "bad": "tb_not-a-token", **tokens}.items():
        api = Api(token)
        outcomes[who] = (api.get("/runs").status_code, api.post("/runs", run_body).status_code)
    assert outcomes == {
        "anonymous": (401, 401),
        "bad": (401, 401),
        "viewer": (200, 403),
        "member_read": (200, 403),
        "member": (200, 201),
        "staff": (200, 200),  # the same external id: the member's run, not a second one
    }
    assert Job.objects.count() == 1
    # A share link's holder and a signed-in browser session are not API callers.
    assert client_for("member").get("/api/v1/runs").status_code == 401
    # The docs page and the OpenAPI description are pages: behind the login.
    for path in ("/api/v1/docs", "/api/v1/openapi.json"):
        response = Client().get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        assert client_for("viewer").get(path).status_code == 200
    docs = client_for("viewer").get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle" in docs and "cdn" not in docs.lower()


def test_every_api_operation_wants_a_token() -> None:
    from tests.foundation.test_urlconf_login_required import all_urls

    # The API's root is no operation (404); the docs page and the description are pages.
    urls = [u for u in all_urls() if u.startswith("/api/v1/") and "docs" not in u
            and "openapi" not in u and u != "/api/v1/"]  # fmt: skip
    assert len(urls) >= 9
    for url in urls:
        got = {Client().get(url).status_code, Client().post(url).status_code}
        assert 401 in got and got <= {401, 405}, (url, got)


def test_every_use_is_attributed_in_the_audit_log(member: Api) -> None:
    before = AuditEntry.objects.filter(action="api_request").count()
    member.get("/runs")
    create_run(member)
    entries = AuditEntry.objects.filter(action="api_request").order_by("pk")[before:]
    assert [(e.actor.username, e.detail["method"], e.detail["path"]) for e in entries] == [
        ("member-write-api", "GET", "/api/v1/runs"),
        ("member-write-api", "POST", "/api/v1/runs"),
    ]
    assert {e.object_type for e in entries} == {"apitoken"}


def test_a_viewer_loses_nothing_but_a_member_who_becomes_viewer_loses_writes(member: Api) -> None:
    from django.contrib.auth.models import Group

    user = make_user("member", username="demoted")
    raw = api_token_create(user=user, name="w", scope="write")[1]
    user.groups.set([Group.objects.get(name="viewer")])
    api = Api(raw)
    assert api.get("/runs").status_code == 200
    refused = api.post("/runs", {"name": "x"})
    assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
    assert not Job.objects.exists()
    user.groups.clear()  # no role at all: the token stands for nobody
    assert api.get("/runs").status_code == 401


def test_creating_a_run_twice_with_one_external_id_is_one_run(member: Api) -> None:
    first = member.post("/runs", {"external_id": "exp-7", "name": "lr 1e-4", "epochs": 3,
                                  "hyperparameters": {"learning_rate": 1e-4, "seed": 1},
                                  "total_steps": 120, "tags": ["sweep", "cpu"]})  # fmt: skip
    again = member.post("/runs", {"external_id": "exp-7", "name": "changed"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    job = Job.objects.select_related("connection").get()
    assert job.connection.kind == "self_hosted" and job.connection.name == "Self-hosted"
    assert (job.name, job.provider_job_id, job.status, job.total_steps) == (
        "lr 1e-4", "exp-7", "queued", 120,
    )  # fmt: skip
    assert job.hyperparameters == {"learning_rate": 1e-4, "seed": 1, "n_epochs": 3}
    assert job.tags == ["sweep", "cpu"] and job.created_by.username == "member-write-api"
    assert first.json()["provider"] == "Self-hosted"
    # An id the database cannot hold as sent (NUL, found by schemathesis) is stored cleaned,
    # and the same id finds the same run again.
    odd = {"external_id": "run\u0000x", "connection": "x\u0000"}
    refused = member.post("/runs", odd)
    assert refused.status_code == 400 and "connection" in refused.content.decode()
    odd.pop("connection")
    made, found = member.post("/runs", odd), member.post("/runs", odd)
    assert (made.status_code, found.status_code) == (201, 200)
    assert made.json()["id"] == found.json()["id"]
    assert made.json()["external_id"] == "run\ufffdx"


def test_a_resent_metrics_batch_changes_nothing(member: Api) -> None:
    run = create_run(member, total_steps=40)
    batch = {"points": [
        {"step": 10, "values": {"loss": 2.5, "learning_rate": 1e-4, "epoch": 0.25}},
        {"step": 20, "values": {"loss": 2.0, "eval_loss": 2.2, "grad_norm": 1.5}},
        {"step": 30, "values": {"train_loss": 1.5, "tokens_seen": 3000, "odd": float("nan")}},
    ]}  # fmt: skip
    first = member.client.post(
        f"/api/v1/runs/{run['id']}/metrics", json.dumps(batch).replace("NaN", "NaN"),
        content_type="application/json", headers=member.headers,
    )  # fmt: skip
    assert first.status_code == 200, first.content
    assert first.json() == {"points": 3, "dropped": 1, "control": {"stop": False}}
    stored = list(MetricPoint.objects.order_by("step").values_list("step", "train_loss",
                  "full_valid_loss", "extra"))  # fmt: skip
    again = member.post(f"/runs/{run['id']}/metrics", batch | {"points": batch["points"][:2]})
    assert again.status_code == 200
    assert list(MetricPoint.objects.order_by("step").values_list("step", "train_loss",
                "full_valid_loss", "extra")) == stored  # fmt: skip
    assert stored == [
        (10, 2.5, None, {"learning_rate": 1e-4, "epoch": 0.25}),
        (20, 2.0, 2.2, {"grad_norm": 1.5}),
        (30, 1.5, None, {"tokens_seen": 3000.0}),
    ]
    job = Job.objects.get()
    assert (job.status, job.last_step, job.final_train_loss, job.best_full_valid_loss) == (
        "running", 30, 1.5, 2.2,
    )  # fmt: skip
    assert job.trained_tokens == 3000 and job.started_at is not None
    assert job.estimated_finish is not None and job.estimated_finish >= job.started_at
    page = member.get(f"/runs/{run['id']}/metrics", series="train_loss", limit=2)
    assert page.json() == {
        "points": [{"step": 10, "values": {"train_loss": 2.5}},
                   {"step": 20, "values": {"train_loss": 2.0}}],
        "next_after_step": 20,
    }  # fmt: skip
    rest = member.get(f"/runs/{run['id']}/metrics", after_step=20)
    assert rest.json()["points"] == [
        {"step": 30, "values": {"train_loss": 1.5, "tokens_seen": 3000.0}}
    ]
    assert rest.json()["next_after_step"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"points": [{"step": 1, "values": {"loss": 1.0}}, {"step": -1, "values": {}}]},
         "points.1.step"),
        ({"points": [{"step": 1, "values": {"loss": 1.0}}, {"step": 2, "values": {"loss": "x"}}]},
         "points.1.values.loss"),
        ({"points": [{"step": 1, "values": {"9bad name": 1.0}}]}, "points"),
        ({"points": [{"step": 2**31, "values": {"loss": 1.0}}]}, "points.0.step"),
        ({"nothing": []}, "points"),
    ],
)  # fmt: skip
def test_a_bad_batch_is_refused_whole_with_the_field_named(
    member: Api, body: dict[str, Any], field: str
) -> None:
    run = create_run(member)
    response = member.post(f"/runs/{run['id']}/metrics", body)
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["errors"][0]["field"] == field and answer["detail"]
    assert not MetricPoint.objects.exists()


def test_checkpoints_events_and_status_are_idempotent(member: Api) -> None:
    run = create_run(member)
    path = f"/runs/{run['id']}"
    ckpt = {"step": 50, "uri": "/data/out/checkpoint-50", "metrics": {"full_valid_loss": 1.1}}
    assert member.post(path + "/checkpoints", ckpt).status_code == 201
    assert member.post(path + "/checkpoints", ckpt).status_code == 200
    saved = Checkpoint.objects.get()
    assert (saved.step, saved.model_name, saved.metrics) == (
        50,
        ckpt["uri"],
        {"full_valid_loss": 1.1},
    )
    assert member.get(path + "/checkpoints").json()[0]["uri"] == ckpt["uri"]
    events = {"events": [{"id": "e1", "message": "epoch 1 done"}, {"message": "no id", "level": "warn",
              "created_at": "2026-12-07T01:00:00Z"}]}  # fmt: skip
    assert member.post(path + "/events", events).json()["created"] == 2
    assert member.post(path + "/events", events).json()["created"] == 0
    assert JobEvent.objects.count() == 2
    failed = member.post(path + "/status", {"status": "failed", "message": "CUDA out of memory"})
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    assert failed.json()["error"] == "CUDA out of memory"
    assert member.post(path + "/status", {"status": "failed"}).status_code == 200
    conflict = member.post(path + "/status", {"status": "running"})
    assert conflict.status_code == 409 and "already failed" in conflict.json()["detail"]
    job = Job.objects.get()
    assert job.status == "failed" and job.finished_at is not None
    assert JobEvent.objects.filter(level="error", message="CUDA out of memory").count() == 1
    listed = [e["message"] for e in member.get(path + "/events").json()]
    assert set(listed) == {"epoch 1 done", "no id", "CUDA out of memory"}


def test_hosted_runs_are_read_but_never_reported_to(member: Api) -> None:
    hosted = connection_save(name="OpenAI", kind="openai", base_url="https://api.openai.com/v1",
                             api_key="sk-test-123456789")  # fmt: skip
    job = Job.objects.create(connection=hosted, provider_job_id="ftjob-1", base_model="gpt-4o-mini",
                             status="running")  # fmt: skip
    assert member.get(f"/runs/{job.pk}").json()["provider"] == "OpenAI-compatible"
    refused = member.post(
        f"/runs/{job.pk}/metrics", {"points": [{"step": 1, "values": {"loss": 1}}]}
    )
    assert refused.status_code == 409 and not MetricPoint.objects.exists()
    named = member.post("/runs", {"connection": "OpenAI", "name": "x"})
    assert named.status_code == 400 and named.json()["errors"][0]["field"] == "connection"
    assert member.get("/runs/00000000-0000-0000-0000-000000000000").status_code == 404
    assert ProviderConnection.objects.filter(kind="self_hosted").count() == 0


def test_runs_are_listed_with_the_runs_list_filters(member: Api) -> None:
    for i, tags in enumerate((["a"], ["b"], ["a", "b"])):
        create_run(member, external_id=f"r{i}", name=f"run {i}", tags=tags)
    listed = member.get("/runs", tag="a").json()
    assert listed["count"] == 2 and [r["name"] for r in listed["results"]] == ["run 2", "run 0"]
    assert member.get("/runs", q="run 1").json()["count"] == 1
    assert member.get("/runs", status="failed").json()["count"] == 0
    page = member.get("/runs", limit=1, offset=1).json()
    assert page["count"] == 3 and [r["name"] for r in page["results"]] == ["run 1"]
    bad = member.get("/runs", limit=0)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "limit"


def test_datasets_are_read_downloaded_and_uploaded(member: Api, make_dataset: Any) -> None:
    dataset = make_dataset(name="chat")
    viewer = Api(token_for("viewer", "read"))
    listed = viewer.get("/datasets").json()
    assert listed["count"] == 1 and listed["results"][0]["sha256"] == dataset.sha256
    assert listed["results"][0]["valid_for"]["openai"] is True
    download = viewer.get(f"/datasets/{dataset.pk}/file")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == dataset.file.open("rb").read()
    assert viewer.get("/datasets/999999/file").status_code == 404
    content = dataset.file.open("rb").read()
    upload = {"file": ("copy.jsonl", content), "name": "again"}
    from django.core.files.uploadedfile import SimpleUploadedFile

    refused = viewer.client.post("/api/v1/datasets", {"file": SimpleUploadedFile("x.jsonl", content)},
                                 headers=viewer.headers)  # fmt: skip
    assert refused.status_code == 403
    same = member.client.post("/api/v1/datasets", {"file": SimpleUploadedFile("c.jsonl", content),
                              "name": upload["name"]}, headers=member.headers)  # fmt: skip
    assert same.status_code == 200 and same.json()["id"] == dataset.pk
    bad = member.client.post("/api/v1/datasets", {"file": SimpleUploadedFile("b.jsonl", b"\xff\xfe")},
                             headers=member.headers)  # fmt: skip
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "file"
    assert Dataset.objects.count() == 1


def test_a_self_hosted_run_page_shows_its_curves_and_no_provider_controls(member: Api) -> None:
    run = create_run(member, total_steps=30)
    member.post(f"/runs/{run['id']}/metrics", {"points": [
        {"step": s, "values": {"loss": 3 - s / 20, "eval_loss": 3.1 - s / 25}} for s in (10, 20, 30)
    ]})  # fmt: skip
    page = client_for("member").get(run["url"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "reported and controlled by their training script" in html
    for control in ("Cancel job", "Pause job", "Sync now"):
        assert control not in html
    assert "tuneboard.init" in html and run["external_id"] in html
    figures = client_for("viewer").get(f"/runs/{run['id']}/figures.json").json()
    traces = {t["name"]: t for t in figures["figures"]["loss"]["data"]}
    assert traces["train loss (raw)"]["x"] == [10, 20, 30]
    assert traces["train loss (raw)"]["y"] == [2.5, 2.0, 1.5]
    assert traces["full-valid loss"]["y"] == pytest.approx([2.7, 2.3, 1.9])

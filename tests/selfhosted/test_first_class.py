"""Self-hosted runs are first-class (issue 17, deliverable 4): the runs list, the compare page
(mixed with a hosted run), share links, exports and history bundles treat a run reported
through the API like any other."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from core.services import api_token_create
from dashboard.services import share_link_create
from jobs import bundles
from jobs.models import Checkpoint, Job, MetricPoint, ProviderConnection
from tests.permissions import client_for, make_user

pytestmark = pytest.mark.django_db


def report_run(external_id: str = "gpu-7") -> Job:
    token = api_token_create(user=make_user("member", "reporter"), name="box", scope="write")[1]
    api = Client(headers={"Authorization": f"Bearer {token}"})

    def post(path: str, body: dict[str, Any]) -> Any:
        response = api.post("/api/v1" + path, json.dumps(body), content_type="application/json")
        assert response.status_code in (200, 201), response.content
        return response.json()

    run = post("/runs", {"external_id": external_id, "name": "llama on our GPUs",
                         "base_model": "llama-3.2-1b", "total_steps": 30, "epochs": 3,
                         "hyperparameters": {"learning_rate": 2e-5, "lora_r": 16}})  # fmt: skip
    points = [
        {"step": s, "values": {"loss": 2.0 - s / 30, **({"eval_loss": 2.1 - s / 40} if s % 10 == 0 else {})}}
        for s in range(1, 31)
    ]  # fmt: skip
    post(f"/runs/{run['id']}/metrics", {"points": points})
    for step in (10, 20, 30):
        post(f"/runs/{run['id']}/checkpoints", {"step": step, "uri": f"/ckpt/{step}"})
    post(f"/runs/{run['id']}/status", {"status": "succeeded"})
    return Job.objects.get(pk=run["id"])


def test_lists_compare_share_and_export_treat_it_like_any_run(make_job: Any) -> None:
    hosted = make_job(steps=30, name="hosted run")
    job = report_run()
    viewer = client_for("viewer")
    listing = viewer.get("/").content.decode()
    assert "llama on our GPUs" in listing and "hosted run" in listing
    compare = viewer.get(f"/compare/?runs={hosted.pk},{job.pk}")
    assert compare.status_code == 200 and "llama on our GPUs" in compare.content.decode()
    figures = viewer.get(f"/compare/figures.json?runs={hosted.pk},{job.pk}").json()["figures"]
    runs = {t.get("meta", {}).get("run") for t in figures["loss"]["data"]}
    assert {str(hosted.pk), str(job.pk)} <= runs
    by_epoch = viewer.get(f"/compare/figures.json?runs={hosted.pk},{job.pk}&x_axis=epoch").json()
    xs = [t["x"] for t in by_epoch["figures"]["loss"]["data"]
          if t.get("meta", {}).get("run") == str(job.pk) and t["meta"].get("series") == "train_loss"]  # fmt: skip
    assert xs and xs[0][-1] == pytest.approx(3.0)  # 30 steps over 3 epochs
    exported = viewer.get(f"/runs/{job.pk}/export.csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == 30 and float(rows[9]["full_valid_loss"]) == pytest.approx(1.85)
    _link, token = share_link_create(user=make_user("member", "sharer"), job_ids=[job.pk])
    shared = Client().get(f"/share/{token}/")
    assert shared.status_code == 200 and "llama on our GPUs" in shared.content.decode()
    assert "gpu-7" not in shared.content.decode()  # its external id stays private
    share_figures = Client().get(f"/share/{token}/figures.json").json()["figures"]
    assert next(
        t["x"] for t in share_figures["loss"]["data"] if t["name"] == "train loss (raw)"
    ) == list(range(1, 31))


def test_a_history_bundle_carries_it_to_another_tuneboard(tmp_path: Path) -> None:
    job = report_run()
    before = sorted(
        MetricPoint.objects.filter(job=job).values_list("step", "train_loss", "full_valid_loss")
    )
    bundle = tmp_path / "self-hosted.zip"
    bundles.bundle_write(jobs=Job.objects.filter(pk=job.pk), selection={}, path=bundle)
    with zipfile.ZipFile(bundle) as zf:
        assert json.loads(zf.read("connections.jsonl").splitlines()[0])["kind"] == "self_hosted"
    Job.objects.all().delete()
    ProviderConnection.objects.all().delete()
    call_command("import_bundle", str(bundle))
    imported = Job.objects.select_related("connection").get()
    assert (imported.connection.kind, imported.origin, imported.status) == (
        "self_hosted", "bundle", "succeeded",
    )  # fmt: skip
    assert (
        sorted(MetricPoint.objects.values_list("step", "train_loss", "full_valid_loss")) == before
    )
    assert list(Checkpoint.objects.values_list("step", flat=True).order_by("step")) == [10, 20, 30]
    assert imported.hyperparameters == {"learning_rate": 2e-5, "lora_r": 16, "n_epochs": 3}
    assert client_for("viewer").get(f"/jobs/{imported.pk}/").status_code == 200

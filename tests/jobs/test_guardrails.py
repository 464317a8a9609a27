"""Guardrails act on running jobs (issue 18, deliverable 1): an overfitting sandbox job is paused
by its guardrail, with and without 30% injected provider faults; a firing is stored once however
often the job syncs, and shows in the events, the audit log, the notifications, the run page and
its chart. A self-hosted run is told to stop in the API's reply."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from core.models import AuditEntry
from core.services import api_token_create
from jobs.models import (
    GuardrailFiring,
    Job,
    JobControl,
    JobEvent,
    MetricPoint,
    Notification,
    ProviderConnection,
)
from jobs.services import connection_save
from jobs.sync import job_sync
from tests.conftest import wait_until
from tests.jobs.test_launch_and_poll import launched
from tests.jobs.test_views import _catalog  # noqa: F401 - autouse: job_launch reads the catalog
from tests.permissions import client_for, make_user
from tests.sandbox.data import chat_examples

OVERFITTING = {"kind": "overfitting", "params": {"evals": 3, "rise_pct": 0.5}, "action": "pause"}


def paused_by_guardrail(job: Job) -> Job:
    assert wait_until(
        lambda: Job.objects.get(pk=job.pk).status in ("paused", *Job.TERMINAL), timeout=120
    )
    assert Job.objects.get(pk=job.pk).status == "paused", (
        Job.objects.filter(pk=job.pk).values("status", "last_step", "last_sync_error").first()
    )
    job.refresh_from_db()
    return job


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.parametrize("faults", [False, True], ids=["clean", "thirty-percent-faults"])
def test_an_overfitting_sandbox_job_is_paused_once(
    settings: Any, sandbox: Any, sandbox_connection: Any, make_dataset: Any, celery_worker: Any,
    celery_beat: Any, faults: bool,
) -> None:  # fmt: skip
    # 20 steps an epoch, 2 s; the sandbox's full-validation loss turns up after epoch 3 and the
    # guardrail fires at the end of epoch 5 or 6 (step 100 or 120), whatever the seed. The
    # epochs after it (nothing in the curve depends on their number) leave a loaded machine's
    # backed-off syncs 40 s to see it before the job would end.
    settings.SANDBOX_SECONDS_PER_STEP = 0.1
    sandbox_connection.guardrail_defaults = [OVERFITTING]
    sandbox_connection.notify_emails = "ml-team@example.com"
    sandbox_connection.save()
    if faults:
        sandbox.control(
            "faults", {"kinds": ["500", "429", "drop"], "rate": 0.3, "retry_after": 0.2}
        )
    job = launched(
        sandbox_connection, make_dataset(chat_examples(20, seed=3), name="small"),
        validation_dataset=make_dataset(chat_examples(60, seed=4), name="small-valid"),
        hyperparameters={"n_epochs": 25, "batch_size": 1, "learning_rate_multiplier": 0.05},
    )  # fmt: skip
    job = paused_by_guardrail(job)
    if faults:
        assert sandbox.control("faults", method="GET")["data"][0]["injected"] > 0
        sandbox.control("faults", method="DELETE")
    firing = GuardrailFiring.objects.get(job=job)
    assert (firing.kind, firing.action) == ("overfitting", "pause")
    assert firing.outcome.startswith("Pause asked")
    # It fired on an overfitting curve: full-validation loss rising while training loss fell.
    valid = list(
        MetricPoint.objects.filter(job=job, full_valid_loss__isnull=False)
        .filter(step__lte=firing.step).order_by("step").values_list("full_valid_loss", flat=True)
    )  # fmt: skip
    assert len(valid) >= 4 and valid[-1] > valid[-2] > valid[-3] > valid[-4]
    assert firing.step < job.total_steps
    # More syncs fire nothing again.
    for _ in range(3):
        job_sync(job_id=job.pk, full=True)
    assert GuardrailFiring.objects.filter(job=job).count() == 1
    assert JobEvent.objects.filter(job=job, type="guardrail").count() == 1
    assert AuditEntry.objects.filter(action="guardrail_fired", object_id=str(job.pk)).count() == 1
    assert wait_until(
        lambda: not JobControl.objects.filter(job=job, state__in=("queued", "running")).exists()
    )
    assert list(JobControl.objects.filter(job=job).values_list("action", "state")) == [
        ("pause", "done")
    ]
    assert Notification.objects.filter(job=job, job_status="gr:overfitting").count() == 1
    page = client_for("viewer").get(f"/jobs/{job.pk}/").content.decode()
    assert "Guardrails" in page and f"fired at step {firing.step}" in page
    assert "Checkpoint to use" in page
    figures = client_for("viewer").get(f"/runs/{job.pk}/figures.json").json()["figures"]
    assert any(s.get("x0") == firing.step for s in figures["loss"]["layout"]["shapes"])
    assert "Overfitting guardrail" in [a["text"] for a in figures["loss"]["layout"]["annotations"]]


@pytest.mark.django_db
def test_a_self_hosted_run_hears_stop_and_a_resent_batch_fires_nothing_twice() -> None:
    token = api_token_create(user=make_user("member"), name="box", scope="write")[1]
    api = Client(headers={"Authorization": f"Bearer {token}"})

    def post(path: str, body: dict[str, Any]) -> Any:
        response = api.post("/api/v1" + path, json.dumps(body), content_type="application/json")
        assert response.status_code in (200, 201), response.content
        return response.json()

    run = post("/runs", {"external_id": "div-1", "guardrails": [
        {"kind": "divergence", "params": {"spike_factor": 3, "window": 5}, "action": "cancel"},
    ]})  # fmt: skip
    steady = {"points": [{"step": s, "values": {"loss": 1.0 + 0.01 * s}} for s in range(1, 11)]}
    assert post(f"/runs/{run['id']}/metrics", steady)["control"] == {"stop": False}
    spike = {"points": [{"step": 11, "values": {"loss": 9.0}}]}
    assert post(f"/runs/{run['id']}/metrics", spike)["control"] == {"stop": True}
    assert post(f"/runs/{run['id']}/metrics", spike)["control"] == {"stop": True}
    firing = GuardrailFiring.objects.get()
    assert (firing.step, firing.action) == (11, "cancel") and "spiked" in firing.message
    assert "told to stop" in firing.outcome
    shown = api.get(f"/api/v1/runs/{run['id']}").json()
    assert shown["stop_requested"] is True
    assert shown["guardrails"][0]["fired"]["step"] == 11
    refused = api.post("/api/v1/runs", json.dumps({"guardrails": [{"kind": "overfitting",
                       "params": {"evals": 1}}]}), content_type="application/json")  # fmt: skip
    assert refused.status_code == 400 and "evals must be between" in refused.json()["detail"]


@pytest.mark.django_db
def test_guardrails_are_edited_on_the_run_page_within_what_the_provider_can_do() -> None:
    together = connection_save(name="T", kind="together", base_url="https://api.together.xyz/v1",
                               api_key="tg-test-123456789")  # fmt: skip
    job = Job.objects.create(connection=together, provider_job_id="ft-1", base_model="m",
                             status="running")  # fmt: skip
    member = client_for("member")
    url = f"/jobs/{job.pk}/guardrails/"
    member.post(url, {"kind": "time_limit", "params": "minutes=90", "action": "pause"})
    assert not job.guardrails.exists()  # Together cannot pause
    member.post(url, {"kind": "time_limit", "params": "minutes=90", "action": "cancel",
                      "enabled": "on"})  # fmt: skip
    guardrail = job.guardrails.get()
    assert (guardrail.params, guardrail.action) == ({"minutes": 90.0}, "cancel")
    assert client_for("viewer").post(url, {"kind": "spend_cap"}).status_code == 403
    page = member.get(f"/jobs/{job.pk}/").content.decode()
    assert "minutes=90" in page and "Watching" in page
    assert '<option value="pause">' not in page
    assert AuditEntry.objects.filter(action="guardrail_added").count() == 1


@pytest.mark.django_db
def test_a_member_stops_a_self_hosted_run_from_its_page() -> None:
    token = api_token_create(user=make_user("member"), name="box", scope="write")[1]
    api = Client(headers={"Authorization": f"Bearer {token}"})
    run = api.post("/api/v1/runs", json.dumps({"external_id": "long-1"}),
                   content_type="application/json").json()  # fmt: skip
    page = client_for("member").get(f"/jobs/{run['id']}/").content.decode()
    assert "Stop training" in page
    assert client_for("viewer").post(f"/jobs/{run['id']}/stop/").status_code == 403
    assert client_for("member").post(f"/jobs/{run['id']}/stop/").status_code == 302
    batch = {"points": [{"step": 1, "values": {"loss": 1.0}}]}
    reply = api.post(f"/api/v1/runs/{run['id']}/metrics", json.dumps(batch),
                     content_type="application/json").json()  # fmt: skip
    assert reply["control"] == {"stop": True}
    assert AuditEntry.objects.filter(action="run_stop_requested").count() == 1
    assert "Stop training" not in client_for("member").get(f"/jobs/{run['id']}/").content.decode()


@pytest.mark.django_db
def test_a_connections_guardrail_defaults_are_set_on_its_page() -> None:
    from tests.jobs.test_views_connections import form_data

    staff = client_for("staff")
    rules = [{"kind": "overfitting", "params": {"evals": 4}, "action": "pause"}]
    bad = staff.post("/jobs/connections/new/", form_data(
        kind="together", base_url="https://api.together.xyz/v1", guardrail_defaults=json.dumps(rules)
    ))  # fmt: skip
    assert "cannot be paused" in bad.content.decode() and not ProviderConnection.objects.exists()
    staff.post("/jobs/connections/new/", form_data(guardrail_defaults=json.dumps(rules)))
    connection = ProviderConnection.objects.get()
    assert connection.guardrail_defaults == [
        {"kind": "overfitting", "params": {"evals": 4, "rise_pct": 1.0}, "action": "pause"}
    ]
    job = launched_job_on(connection)
    assert list(job.guardrails.values_list("kind", "action")) == [("overfitting", "pause")]


def launched_job_on(connection: ProviderConnection) -> Job:
    from jobs.guardrails import guardrails_attach

    job = Job.objects.create(connection=connection, base_model="gpt-4o-mini", status="pending")
    guardrails_attach(job=job)
    return job


@pytest.mark.django_db
def test_a_spend_cap_fires_while_an_openai_job_runs_from_the_share_of_steps_done(
    make_dataset: Any,
) -> None:
    """OpenAI reports trained tokens only when a job ends: until then the spend so far is the
    planned billed tokens (tokens per epoch × the epochs the provider chose) × the share of
    steps done, × the training price."""
    from decimal import Decimal

    from datasets.models import BaseModel
    from jobs.guardrails import guardrails_evaluate

    dataset = make_dataset(chat_examples(20, seed=6), name="spend")
    counts = dataset.report["tokens"]["total"]["counts"]
    per_epoch = sum(int(v) * int(c) for v, c in counts)
    model = "gpt-4o-mini-2024-07-18"
    price = BaseModel.objects.get(pk=model).training_price_per_1m
    planned = float(price * per_epoch * 3 / Decimal(1_000_000))
    connection = connection_save(name="O", kind="sandbox", base_url="http://127.0.0.1:9/v1",
                                 api_key="sk-test-123456789")  # fmt: skip
    job = Job.objects.create(
        connection=connection, provider_job_id="ftjob-s", base_model=model, model=model,
        status="running", training_dataset=dataset, hyperparameters={"n_epochs": 3},
        total_steps=60, last_step=20,
    )  # fmt: skip
    job.guardrails.create(kind="spend_cap", params={"usd": planned * 0.5}, action="notify")
    assert guardrails_evaluate(job_id=job.pk) == []  # a third done: a third of the cost
    Job.objects.filter(pk=job.pk).update(last_step=33)
    (firing,) = guardrails_evaluate(job_id=job.pk)
    assert firing.step == 33 and firing.kind == "spend_cap"
    tokens_so_far = int(per_epoch * 3 * 33 / 60)
    assert firing.details["spend_usd"] == pytest.approx(float(price) * tokens_so_far / 1e6)


def _nan_losses_from(step: int) -> Any:
    """A provider whose metrics events carry NaN training losses from ``step`` on."""

    def transform(body: bytes) -> bytes:
        page = json.loads(body)
        for event in page.get("data") or []:
            data = event.get("data") or {}
            if event.get("type") == "metrics" and data.get("step", 0) >= step:
                data["train_loss"] = float("nan")
        return json.dumps(page).encode()  # NaN as the bare token JSON parsers accept

    return transform


@pytest.mark.django_db(transaction=True)
def test_a_hosted_provider_reporting_a_nan_loss_fires_the_divergence_guardrail(
    settings: Any, proxied_connection: Any, fault_proxy: Any, make_dataset: Any
) -> None:
    from jobs.services import job_launch_run
    from tests.support.proxy import Rule

    # 40 steps in 4 s: syncs in a loop see the losses of steps 4 to 40 while the job runs.
    settings.SANDBOX_SECONDS_PER_STEP = 0.1
    proxied_connection.guardrail_defaults = [
        {"kind": "divergence", "params": {"spike_factor": 3, "window": 5}, "action": "notify"}
    ]
    proxied_connection.save()
    fault_proxy.add(Rule(action="transform", method="GET", path=r"/events$",
                         transform=_nan_losses_from(4)))  # fmt: skip
    job = launched(proxied_connection, make_dataset(chat_examples(40, seed=3)),
                   hyperparameters={"n_epochs": 1, "batch_size": 1})  # fmt: skip
    job_launch_run(job_id=job.pk)

    def fired() -> bool:
        job_sync(job_id=job.pk)
        return GuardrailFiring.objects.filter(job=job).exists()

    assert wait_until(fired, timeout=60), (
        Job.objects.filter(pk=job.pk).values("status", "last_step", "last_sync_error").first(),
        list(job.guardrails.values("kind", "enabled")),
        [e.action for e in fault_proxy.handled("GET", r"/events$")][:5],
        list(JobEvent.objects.filter(job=job, type="metrics").values_list("data", flat=True)[:3]),
    )
    firing = GuardrailFiring.objects.get(job=job)
    assert firing.kind == "divergence" and firing.step is not None and firing.step >= 4
    assert firing.message == f"The loss was not a number at step {firing.step}."
    assert fault_proxy.handled("GET", r"/events$")

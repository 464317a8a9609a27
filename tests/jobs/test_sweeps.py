"""Sweeps (issue 18, deliverable 2) on the database: the plan and its costs, the hard budget,
the concurrency limit, cancel-all, the pages, the admin and the exports. The runs' progress
is written the way a sync writes it; ``tests/jobs/test_sweep_sandbox.py`` runs a sweep on the
sandbox with a real worker, and ``tests/crash/test_killed_sweep.py`` kills one."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from decimal import ROUND_UP, Decimal
from typing import Any

import pytest
from django.core import mail

from core.models import AuditEntry
from datasets.models import BaseModel, Dataset
from jobs import bundles
from jobs.models import (
    Checkpoint,
    Guardrail,
    Job,
    JobControl,
    Notification,
    NotificationSetting,
    ProviderConnection,
    Sweep,
    SweepRun,
)
from jobs.notifications import notification_send
from jobs.services import LaunchRejected, connection_save
from jobs.sweep_plans import SweepRequest, sweep_plan
from jobs.sweeps import sweep_advance, sweep_cancel, sweep_create
from tests.history.helpers import Receiver
from tests.jobs.test_views import DEAD_URL, SECRET
from tests.permissions import LOGIN, SHARE, assert_matrix, client_for, make_user
from tests.sandbox.data import chat_examples

pytestmark = pytest.mark.django_db

MODEL = "gpt-4o-mini-2024-07-18"
READ = {"anonymous": LOGIN, SHARE: LOGIN, "norole": 403, "viewer": 200, "member": 200,
        "staff": 200}  # fmt: skip
ACT = {"anonymous": LOGIN, SHARE: LOGIN, "norole": 403, "viewer": 403, "member": 200,
       "staff": 200}  # fmt: skip


@pytest.fixture
def connection() -> ProviderConnection:
    return connection_save(name="Offline", kind="sandbox", base_url=DEAD_URL, api_key=SECRET)


@pytest.fixture
def dataset(make_dataset: Any) -> Dataset:
    return make_dataset(chat_examples(20, seed=5), name="sweep-train")


def tokens_per_epoch(dataset: Dataset) -> int:
    """The dataset's billed tokens for one epoch, from its validation report (no example is
    near the model's context limit)."""
    counts = dataset.report["tokens"]["total"]["counts"]
    return sum(int(value) * int(count) for value, count in counts)


def price() -> Decimal:
    return BaseModel.objects.get(pk=MODEL).training_price_per_1m


def request_for(connection: ProviderConnection, dataset: Dataset, **changes: Any) -> SweepRequest:
    values: dict[str, Any] = {
        "name": "lr-grid",
        "connection": connection,
        "training_dataset": dataset,
        "validation_dataset": None,
        "space": {"base_model": [MODEL], "n_epochs": [1, 2, 3], "batch_size": [1, 2],
                  "seed": []},
        "budget_usd": Decimal(100),
        "concurrency": 2,
    }  # fmt: skip
    values.update(changes)
    return SweepRequest(**values)


def finish(run: SweepRun, status: str = "succeeded", **fields: Any) -> None:
    """What a sync stores when the provider reports the run ended, its tokens trained."""
    run.refresh_from_db()
    assert run.job_id is not None
    Job.objects.filter(pk=run.job_id).update(
        status=status, trained_tokens=fields.pop("trained_tokens", run.billed_tokens), **fields
    )


def runs_of(sweep: Sweep) -> list[SweepRun]:
    return list(SweepRun.objects.filter(sweep=sweep).select_related("job").order_by("index"))


def test_the_plan_prices_every_run_from_the_datasets_tokens_epochs_and_price(
    connection, dataset
) -> None:  # type: ignore[no-untyped-def]
    plan = sweep_plan(request=request_for(connection, dataset))
    per_epoch = tokens_per_epoch(dataset)
    assert plan.startable and plan.concurrency == 2 and len(plan.rows) == 6
    assert plan.varied == ["n_epochs", "batch_size"]
    for row in plan.rows:
        epochs = row.run.hyperparameters["n_epochs"]
        assert (row.n_epochs, row.billed_tokens) == (epochs, per_epoch * epochs)
        assert row.cost == price() * per_epoch * epochs / 1_000_000
    assert plan.total == sum(row.cost for row in plan.rows)
    # "auto" epochs are estimated the way the provider chooses them: 20 examples → 5 epochs.
    auto = sweep_plan(request=request_for(connection, dataset, space={"base_model": [MODEL]}))
    assert (auto.rows[0].n_epochs, auto.rows[0].epochs_auto) == (5, True)
    # The provider's documented limit on active jobs is the default concurrency.
    assert sweep_plan(request=request_for(connection, dataset, concurrency=None)).concurrency == 3


def test_a_plan_over_budget_or_with_an_unpriceable_run_is_refused_and_nothing_written(
    connection, dataset
) -> None:  # type: ignore[no-untyped-def]
    plan = sweep_plan(request=request_for(connection, dataset))
    assert plan.total is not None
    over = request_for(connection, dataset, budget_usd=plan.total - Decimal("0.0001"))
    with pytest.raises(LaunchRejected, match=r"over the .* budget"):
        sweep_create(request=over, user=make_user("member"))
    unpriced = request_for(connection, dataset, space={"base_model": ["gpt-4-0613", MODEL]})
    with pytest.raises(LaunchRejected, match=r"Run 1: No training price is known for gpt-4-0613"):
        sweep_create(request=unpriced, user=None)
    with pytest.raises(LaunchRejected, match="at most 20"):
        sweep_create(request=request_for(connection, dataset, space={
            "base_model": [MODEL], "n_epochs": list(range(1, 22))}), user=None)  # fmt: skip
    assert not Sweep.objects.exists() and not Job.objects.exists()


def test_runs_launch_at_most_concurrency_at_a_time_and_twice_advancing_launches_nothing_more(
    connection, dataset
) -> None:  # type: ignore[no-untyped-def]
    connection.guardrail_defaults = [{"kind": "time_limit", "params": {"minutes": 90},
                                      "action": "cancel"}]  # fmt: skip
    connection.save()
    sweep = sweep_create(request=request_for(connection, dataset), user=make_user("member"))
    for _ in range(2):
        sweep_advance(sweep_id=sweep.pk)
    runs = runs_of(sweep)
    assert [r.state for r in runs] == ["launched"] * 2 + ["planned"] * 4
    assert [r.active_at_launch for r in runs[:2]] == [1, 2]
    first = runs[0].job
    assert first is not None and first.status == "pending"
    assert (first.name, first.requested_hyperparameters) == (
        "lr-grid #1",
        {"n_epochs": 1, "batch_size": 1},
    )
    # Guardrails apply to every run: the connection's defaults, as at a single launch.
    assert list(Guardrail.objects.filter(job=first).values_list("kind", flat=True)) == [
        "time_limit"
    ]
    finish(runs[0])
    sweep_advance(sweep_id=sweep.pk)
    sweep_advance(sweep_id=sweep.pk)
    runs = runs_of(sweep)
    assert [r.state for r in runs].count("launched") == 3 and runs[2].active_at_launch == 2
    assert max(r.active_at_launch or 0 for r in runs) <= 2
    for run in runs[1:3]:
        finish(run)
    sweep_advance(sweep_id=sweep.pk)
    for run in runs_of(sweep)[3:5]:
        finish(run)
    sweep_advance(sweep_id=sweep.pk)
    finish(runs_of(sweep)[5])
    sweep = sweep_advance(sweep_id=sweep.pk) or sweep
    sweep.refresh_from_db()
    assert sweep.status == "finished" and sweep.finished_at is not None
    assert Job.objects.count() == 6
    assert AuditEntry.objects.filter(action__in=["sweep_started", "sweep_finished"]).count() == 2


def test_the_budget_stops_launching_when_actual_spend_passes_the_plan(connection, dataset) -> None:  # type: ignore[no-untyped-def]
    """Six runs of one planned cost p, a budget of 9.5 p. After the start the training price
    doubles, so each run that ends costs 2 p: the sixth run never fits (actual + planned for
    the run under way + its own would be over), and the sweep stops at five and says why."""
    space = {"base_model": [MODEL], "n_epochs": [2], "seed": [1, 2, 3, 4, 5, 6]}
    p = sweep_plan(request=request_for(connection, dataset, space=space)).rows[0].cost
    assert p is not None
    sweep = sweep_create(
        request=request_for(connection, dataset, space=space, budget_usd=p * Decimal("9.5")),
        user=make_user("member"),
    )
    BaseModel.objects.filter(pk=MODEL).update(training_price_per_1m=price() * 2)
    sweep_advance(sweep_id=sweep.pk)
    for index in range(5):
        finish(runs_of(sweep)[index])
        sweep_advance(sweep_id=sweep.pk)
    sweep.refresh_from_db()
    runs = runs_of(sweep)
    assert [r.state for r in runs] == ["launched"] * 5 + ["skipped"]
    assert sweep.status == "stopped"
    assert sweep.status_message.startswith("Stopped: Run 6")
    assert "over its" in sweep.status_message and "budget" in sweep.status_message
    assert runs[5].skip_reason == "The sweep's budget does not allow it."
    assert all(abs(Decimal(r.job.cost_usd) - 2 * p) < Decimal("1e-9") for r in runs[:5])  # type: ignore[union-attr]
    assert max(r.committed_at_launch for r in runs[:5]) <= sweep.budget_usd  # type: ignore[type-var]


def test_cancel_all_launches_nothing_more_and_cancels_each_run_under_way_once(
    connection, dataset
) -> None:  # type: ignore[no-untyped-def]
    sweep = sweep_create(request=request_for(connection, dataset), user=make_user("member"))
    sweep_advance(sweep_id=sweep.pk)
    running, pending = runs_of(sweep)[:2]
    Job.objects.filter(pk=running.job_id).update(provider_job_id="ftjob-1", status="running")
    assert sweep_cancel(sweep=sweep, user=make_user("viewer")) is True
    assert sweep_cancel(sweep=sweep, user=None) is False
    for _ in range(2):
        sweep_advance(sweep_id=sweep.pk)
    assert list(JobControl.objects.values_list("job_id", "action")) == [(running.job_id, "cancel")]
    assert [r.state for r in runs_of(sweep)][2:] == ["skipped"] * 4
    # The other launch reaches the provider afterwards: it is cancelled then.
    Job.objects.filter(pk=pending.job_id).update(provider_job_id="ftjob-2", status="queued")
    sweep_advance(sweep_id=sweep.pk)
    assert JobControl.objects.filter(job_id=pending.job_id, action="cancel").count() == 1
    sweep.refresh_from_db()
    assert sweep.status == "cancelling"
    Job.objects.filter(sweep_run__sweep=sweep).update(status="cancelled")
    sweep_advance(sweep_id=sweep.pk)
    sweep.refresh_from_db()
    assert (sweep.status, sweep.status_message) == ("cancelled", "Cancelled by viewer-user.")


def plan_form(connection: ProviderConnection, dataset: Dataset, **changes: Any) -> dict[str, Any]:
    data = {
        "connection": connection.pk, "name": "Sweep <b>one</b>", "training_dataset": dataset.pk,
        "validation_dataset": "", "method": "supervised", "base_models": [MODEL],
        "mode": "grid", "p_n_epochs": "1, 2", "p_batch_size": "", "seeds": "",
        "p_learning_rate_multiplier": "0.5,1", "budget_usd": "50", "concurrency": "",
        "action": "plan",
    }  # fmt: skip
    data.update(changes)
    return data


def test_the_plan_page_lists_every_run_and_the_total_then_starts_the_sweep(
    connection, dataset
) -> None:  # type: ignore[no-untyped-def]
    member = client_for("member")
    form = member.get(f"/sweeps/new/?connection={connection.pk}").content.decode()
    assert 'name="p_n_epochs"' in form and 'name="p_learning_rate_multiplier"' in form
    assert "Default: 3" in form
    page = member.post("/sweeps/new/", plan_form(connection, dataset))
    assert page.status_code == 200
    html = page.content.decode()
    plan = sweep_plan(request=request_for(connection, dataset, concurrency=None, space={
        "base_model": [MODEL], "n_epochs": [1, 2], "learning_rate_multiplier": [0.5, 1.0]}))  # fmt: skip
    assert html.count('<tr data-run="') == 4
    assert f'data-total="{plan.total}"' in html
    assert 'value="start"' in html and not Sweep.objects.exists()
    started = member.post("/sweeps/new/", plan_form(connection, dataset, action="start"))
    sweep = Sweep.objects.get()
    assert started.status_code == 302 and started["Location"] == f"/sweeps/{sweep.pk}/"
    assert (sweep.concurrency, sweep.planned_cost_usd) == (
        3,
        plan.total.quantize(Decimal("0.0001"), ROUND_UP),
    )  # type: ignore[union-attr]
    assert sweep.space == {"base_model": [MODEL], "n_epochs": [1, 2],
                           "learning_rate_multiplier": [0.5, 1.0]}  # fmt: skip
    detail = client_for("viewer").get(f"/sweeps/{sweep.pk}/").content.decode()
    assert "Sweep &lt;b&gt;one&lt;/b&gt;" in detail and "<b>one</b>" not in detail


def test_the_plan_page_refuses_bad_values_and_an_over_budget_plan_with_reasons(
    connection, dataset
) -> None:  # type: ignore[no-untyped-def]
    member = client_for("member")
    bad = member.post("/sweeps/new/", plan_form(connection, dataset, p_n_epochs="1, two"))
    assert bad.status_code == 400 and "“two” is not a number" in bad.content.decode()
    over = member.post("/sweeps/new/", plan_form(connection, dataset, budget_usd="0.01",
                                                 action="start"))  # fmt: skip
    text = over.content.decode()
    assert over.status_code == 400 and "over the $0.01 budget" in text
    assert 'value="start"' not in text and not Sweep.objects.exists()


def test_sweep_pages_permission_matrix(connection, dataset) -> None:  # type: ignore[no-untyped-def]
    sweep = sweep_create(request=request_for(connection, dataset), user=None)
    for url in ("/sweeps/", f"/sweeps/{sweep.pk}/", f"/sweeps/{sweep.pk}/live.json",
                f"/sweeps/{sweep.pk}/export.csv"):  # fmt: skip
        assert_matrix(url, READ)
    for url in ("/sweeps/new/", f"/sweeps/{sweep.pk}/cancel/"):
        assert_matrix(url, ACT)
    # A POST without the plan's fields or the confirmation changes nothing, for anyone.
    posted = {**ACT, "member": 400, "staff": 400}
    assert_matrix("/sweeps/new/", posted, method="post", data={"action": "start"})
    assert_matrix(f"/sweeps/{sweep.pk}/cancel/", posted, method="post")
    assert not Sweep.objects.exclude(pk=sweep.pk).exists() and sweep.runs.count() == 6
    assert client_for("member").get("/sweeps/999999/").status_code == 404
    assert (
        client_for("viewer").post(f"/sweeps/{sweep.pk}/cancel/", {"confirm": "yes"}).status_code
        == 403
    )
    assert (
        client_for("member").post(f"/sweeps/{sweep.pk}/cancel/", {"confirm": "yes"}).status_code
        == 302
    )
    assert Sweep.objects.get().status == "cancelling"


def test_the_sweep_page_names_the_best_run_and_checkpoint_and_draws_parallel_coordinates(
    connection, dataset
) -> None:  # type: ignore[no-untyped-def]
    sweep = sweep_create(request=request_for(connection, dataset, concurrency=6), user=None)
    sweep_advance(sweep_id=sweep.pk)
    runs = runs_of(sweep)
    losses = [0.9, 0.4, 0.7, 0.5, 0.8, 0.6]
    for run, loss in zip(runs, losses, strict=True):
        finish(run, best_full_valid_loss=loss, best_full_valid_step=10)
        Checkpoint.objects.create(job=run.job, provider_checkpoint_id=f"c-{run.index}", step=10,
                                  model_name=f"ft:{MODEL}:ckpt-{run.index}", created_at=run.launched_at,
                                  metrics={"full_valid_loss": loss + 0.01})  # fmt: skip
    sweep_advance(sweep_id=sweep.pk)
    page = client_for("viewer").get(f"/sweeps/{sweep.pk}/").content.decode()
    assert f"ft:{MODEL}:ckpt-2" in page and "Checkpoint to use" in page
    best_row = page.split('class="tb-best"')[0].rsplit("<tr", 1)[1]
    assert 'data-run="2"' in best_row
    live = client_for("viewer").get(f"/sweeps/{sweep.pk}/live.json").json()
    assert live["status"] == "finished" and live["active"] is False
    figure = live["parallel"]
    assert figure["layout"]["xaxis"]["ticktext"] == ["Epochs", "Batch size", "Best full-valid loss"]
    lines = {t["meta"]["run"]: t for t in figure["data"]}
    assert len(lines) == 6 and figure["data"][-1]["meta"] == {
        "run": str(runs[1].job_id),
        "best": True,
    }
    for run, loss in zip(runs, losses, strict=True):
        line = lines[str(run.job_id)]
        epochs = run.hyperparameters["n_epochs"]
        # Each axis scaled to 0–1: epochs 1–3, batch size 1–2, loss 0.4–0.9.
        assert line["y"] == pytest.approx([(epochs - 1) / 2, run.hyperparameters["batch_size"] - 1,
                                           (loss - 0.4) / 0.5])  # fmt: skip
        assert line["customdata"][0] == f"Epochs: {epochs}"
    assert [a["text"] for a in figure["layout"]["annotations"][:2]] == ["1", "3"]


def test_sweeps_are_exported_as_csv_and_in_bundles_and_come_back_from_a_bundle(
    connection, dataset, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    sweep = sweep_create(request=request_for(connection, dataset, name="=HYPERLINK()"), user=None)
    sweep_advance(sweep_id=sweep.pk)
    finish(runs_of(sweep)[0])
    rows = list(csv.DictReader(io.StringIO(
        client_for("viewer").get(f"/sweeps/{sweep.pk}/export.csv").content.decode())))  # fmt: skip
    assert [r["state"] for r in rows] == ["launched"] * 2 + ["planned"] * 4
    assert rows[0]["sweep"] == "'=HYPERLINK()" and rows[0]["n_epochs"] == "1"
    assert rows[0]["cost_usd"] != "" and rows[1]["cost_usd"] == ""
    path = tmp_path / "bundle.zip"
    bundles.bundle_write(jobs=Job.objects.all(), selection={}, path=path)
    with zipfile.ZipFile(path) as zf:
        exported = [json.loads(line) for line in zf.read("sweeps.jsonl").splitlines()]
    assert [len(s["runs"]) for s in exported] == [6] and exported[0]["name"] == "=HYPERLINK()"
    Sweep.objects.all().delete()
    Job.objects.all().delete()
    outcome = bundles.bundle_import(source=path, actor=None)
    assert outcome.sweeps_created == 1 and "1 sweep(s)" in outcome.summary()
    again = Sweep.objects.get()
    assert again.status == "stopped" and "Imported" in again.status_message
    assert SweepRun.objects.filter(sweep=again, job__isnull=False).count() == 2
    assert bundles.bundle_import(source=path, actor=None).sweeps_created == 0  # once


def test_sweeps_in_the_admin(connection, dataset) -> None:  # type: ignore[no-untyped-def]
    sweep = sweep_create(request=request_for(connection, dataset), user=None)
    staff = client_for("staff")
    listing = staff.get("/admin/jobs/sweep/?status__exact=running&q=lr")
    assert listing.status_code == 200 and "lr-grid" in listing.content.decode()
    assert staff.get(f"/admin/jobs/sweep/{sweep.pk}/change/").status_code == 200
    assert staff.get("/admin/jobs/sweeprun/").status_code == 200
    staff.post("/admin/jobs/sweep/", {"action": "advance_now", "_selected_action": [sweep.pk]})
    assert SweepRun.objects.filter(state="launched").count() == 2
    staff.post("/admin/jobs/sweep/", {"action": "cancel_sweeps", "_selected_action": [sweep.pk]})
    assert Sweep.objects.get().status == "cancelling"
    assert SECRET not in staff.get(f"/admin/jobs/sweep/{sweep.pk}/change/").content.decode()
    # Sweeps are made from their plan on their page, never added raw in the admin.
    assert staff.get("/admin/jobs/sweep/add/").status_code == 403


def test_a_cancelled_sweep_whose_connection_went_away_ends_and_says_so(connection, dataset) -> None:  # type: ignore[no-untyped-def]
    sweep = sweep_create(request=request_for(connection, dataset), user=None)
    sweep_advance(sweep_id=sweep.pk)
    Job.objects.filter(sweep_run__sweep=sweep).update(provider_job_id=None, status="running")
    assert sweep_cancel(sweep=sweep, user=make_user("member"))
    ProviderConnection.objects.filter(pk=connection.pk).update(enabled=False)
    sweep_advance(sweep_id=sweep.pk)
    sweep.refresh_from_db()
    assert sweep.status == "cancelled"
    assert sweep.status_message == (
        "Cancelled by member-user. The connection “Offline” is disabled: its runs could not all "
        "be cancelled."
    )


def test_a_sweep_that_ends_tells_its_creator_and_its_connection_once(connection, dataset) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver()
    try:
        creator = make_user("member")
        creator.email = "ada@example.com"
        creator.save()
        NotificationSetting.objects.create(user=creator, email_enabled=True)
        connection.notify_emails = "ops@example.com"
        connection.slack_webhook_url = receiver.url
        connection.save()
        space = {"base_model": [MODEL], "n_epochs": [1, 2], "seed": []}
        sweep = sweep_create(
            request=request_for(connection, dataset, name="lr <b>grid</b>", space=space),
            user=creator,
        )
        sweep_advance(sweep_id=sweep.pk)
        first, second = runs_of(sweep)
        finish(first, best_full_valid_loss=0.4321, best_full_valid_step=9)
        sweep_advance(sweep_id=sweep.pk)
        assert not Notification.objects.exists()  # one run still under way
        finish(second, status="failed")
        for _ in range(2):
            sweep_advance(sweep_id=sweep.pk)
        sweep.refresh_from_db()
        assert sweep.status == "finished"
        told = Notification.objects.filter(sweep=sweep)
        assert sorted(told.values_list("channel", "target", "job_status")) == [
            ("email", "ada@example.com", "sweep:finished"),
            ("email", "ops@example.com", "sweep:finished"),
            ("slack", receiver.url, "sweep:finished"),
        ]
        for notification in told:
            assert notification_send(notification_id=notification.pk) is True
        spent = sum((r.spend for r in runs_of(sweep)), Decimal(0))
        assert spent > 0
        email = next(m for m in mail.outbox if m.to == ["ada@example.com"])
        assert email.subject == "[Tuneboard] Sweep lr <b>grid</b> finished"
        assert "Runs: 2 of 2 launched (1 failed, 1 succeeded)" in email.body
        assert f"Spent: ${spent:,.2f} of the $100.00 budget" in email.body
        best = Job.objects.get(pk=first.job_id)
        assert f"Best run: {best.display_name} (full validation loss 0.4321 at step 9)" in (
            email.body
        )
        assert f"/sweeps/{sweep.pk}/" in email.body
        (text,) = receiver.texts()
        assert text.startswith(f"Sweep <http://localhost:8000/sweeps/{sweep.pk}/|lr &lt;b&gt;")
        assert "finished." in text and "<b>" not in text

        # Cancelled: announced as such, once, to the same recipients.
        other = sweep_create(request=request_for(connection, dataset, space=space), user=creator)
        sweep_advance(sweep_id=other.pk)
        sweep_cancel(sweep=other, user=creator)
        Job.objects.filter(sweep_run__sweep=other).update(status="cancelled")
        for _ in range(2):
            sweep_advance(sweep_id=other.pk)
        assert sorted(
            Notification.objects.filter(sweep=other).values_list("target", "job_status")
        ) == sorted(
            [
                ("ada@example.com", "sweep:cancelled"),
                ("ops@example.com", "sweep:cancelled"),
                (receiver.url, "sweep:cancelled"),
            ]
        )
        cancelled = Notification.objects.get(sweep=other, target="ops@example.com")
        assert notification_send(notification_id=cancelled.pk) is True
        assert mail.outbox[-1].subject == "[Tuneboard] Sweep lr-grid was cancelled"
        assert "Cancelled by member-user." in mail.outbox[-1].body
    finally:
        receiver.close()

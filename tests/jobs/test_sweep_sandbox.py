"""A sweep on the sandbox with a real worker and beat (issue 18, deliverable 4): six runs, two at
a time, a budget that allows only five. The plan fits the budget; the training price then
doubles (a provider's price change during a long sweep), so the runs that end cost twice their
estimate, and the sweep stops at five, saying why. Everything crosses the queue: the sweep's
advance, each launch, the polls, and the next advance when a run ends."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from datasets.models import BaseModel
from jobs.connections import provider_for_connection
from jobs.models import Guardrail, Job, Notification, Sweep, SweepRun
from jobs.services import METADATA_KEY
from jobs.sweep_plans import SweepRequest, sweep_plan
from jobs.sweeps import sweep_create
from tests.conftest import wait_until
from tests.history.helpers import Receiver
from tests.jobs.test_views import _catalog  # noqa: F401 - autouse: the launch reads the catalog
from tests.permissions import client_for, make_user
from tests.sandbox.data import chat_examples

MODEL = "gpt-4o-mini-2024-07-18"


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_six_runs_two_at_a_time_and_a_budget_for_five_stop_at_five_saying_why(
    settings: Any, sandbox: Any, sandbox_connection: Any, make_dataset: Any, celery_worker: Any,
    celery_beat: Any,
) -> None:  # fmt: skip
    settings.SANDBOX_SECONDS_PER_STEP = 0.05
    receiver = Receiver()  # the connection's Slack-compatible webhook
    sandbox_connection.slack_webhook_url = receiver.url
    sandbox_connection.save()
    request = SweepRequest(
        name="seeds",
        connection=sandbox_connection,
        training_dataset=make_dataset(chat_examples(10, seed=8), name="sweep-train"),
        validation_dataset=make_dataset(chat_examples(10, seed=9), name="sweep-valid"),
        space={"base_model": [MODEL], "n_epochs": [2], "seed": [11, 12, 13, 14, 15, 16]},
        budget_usd=Decimal(1),
        concurrency=2,
        guardrails=({"kind": "time_limit", "params": {"minutes": 30}, "action": "cancel"},),
    )
    planned = sweep_plan(request=request)
    cost = planned.rows[0].cost
    assert cost is not None and planned.total == 6 * cost
    # Room for 4 runs at twice the estimate and one more at the estimate, never for a sixth.
    request = replace(request, budget_usd=cost * Decimal("9.5"))
    with transaction.atomic():  # the sweep's first advance is sent once both are written
        sweep = sweep_create(request=request, user=make_user("member"))
        price = BaseModel.objects.get(pk=MODEL).training_price_per_1m
        BaseModel.objects.filter(pk=MODEL).update(training_price_per_1m=price * 2)

    assert wait_until(
        lambda: Sweep.objects.get(pk=sweep.pk).status not in Sweep.ACTIVE, timeout=180
    ), list(SweepRun.objects.filter(sweep=sweep).values("index", "state", "job__status"))
    sweep.refresh_from_db()
    runs = list(SweepRun.objects.filter(sweep=sweep).select_related("job").order_by("index"))
    assert sweep.status == "stopped", (sweep.status, sweep.status_message)
    assert [r.state for r in runs] == ["launched"] * 5 + ["skipped"]
    assert sweep.status_message.startswith("Stopped: Run 6")
    assert f"over its ${sweep.budget_usd:,.2f} budget" in sweep.status_message
    # Two at a time, never more; every launched run ran to the end and was billed double.
    assert max(r.active_at_launch or 0 for r in runs) == 2
    assert all(r.job is not None and r.job.status == "succeeded" for r in runs[:5])
    spent = sum(Decimal(r.job.cost_usd) for r in runs[:5])  # type: ignore[union-attr,arg-type]
    assert spent > sweep.budget_usd - cost  # so a sixth run could not fit
    # The provider holds exactly the five launches, each once.
    theirs = provider_for_connection(sandbox_connection).list_jobs(limit=100).data
    markers = sorted((j.metadata or {}).get(METADATA_KEY, "") for j in theirs)
    assert markers == sorted(str(r.job_id) for r in runs[:5])
    assert sorted(j.seed for j in theirs if j.seed is not None) == [11, 12, 13, 14, 15]
    # Guardrails apply to every run.
    assert Guardrail.objects.filter(job__sweep_run__sweep=sweep, kind="time_limit").count() == 5
    # The sweep page is the comparison of its runs and names the best by full-validation loss.
    page = client_for("viewer").get(f"/sweeps/{sweep.pk}/").content.decode()
    assert "Stopped by its budget" in page and "data-tb-compare" in page
    best = min(
        (r for r in runs[:5]),
        key=lambda r: r.job.best_full_valid_loss,  # type: ignore[union-attr]
    )
    assert best.job is not None and best.job.best_full_valid_loss is not None
    assert (
        f'data-run="{best.index}" data-state="launched" data-job="{best.job_id}" class="tb-best"'
        in page
    )
    live = client_for("viewer").get(f"/sweeps/{sweep.pk}/live.json").json()
    assert len(live["parallel"]["data"]) == 5  # one line a run
    assert Job.objects.count() == 5
    # The worker told the connection's webhook once that the sweep stopped, and why.
    try:
        assert wait_until(
            lambda: any(t.startswith("Sweep <") for t in receiver.texts()), timeout=60
        ), Notification.objects.filter(sweep=sweep).values("state", "last_error")
        (told,) = [t for t in receiver.texts() if t.startswith("Sweep <")]
        assert f"/sweeps/{sweep.pk}/|seeds> was stopped by its budget." in told
        assert "Runs: 5 of 6 launched (5 succeeded)" in told and "Stopped: Run 6" in told
        assert Notification.objects.get(sweep=sweep).state == "sent"
    finally:
        receiver.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_cancelling_a_sweep_on_its_page_cancels_its_runs_at_the_provider(
    settings: Any, sandbox: Any, sandbox_connection: Any, make_dataset: Any, celery_worker: Any,
    celery_beat: Any,
) -> None:  # fmt: skip
    settings.SANDBOX_SECONDS_PER_STEP = 2  # 20 steps: long enough to be cancelled running
    sweep = sweep_create(
        request=SweepRequest(
            name="cancel me", connection=sandbox_connection,
            training_dataset=make_dataset(chat_examples(20, seed=1), name="c"),
            validation_dataset=None, budget_usd=Decimal(10), concurrency=2,
            space={"base_model": [MODEL], "n_epochs": [1], "seed": [1, 2, 3]},
        ),
        user=make_user("member"),
    )  # fmt: skip
    assert wait_until(
        lambda: (
            SweepRun.objects.filter(sweep=sweep, job__provider_job_id__isnull=False).count() == 2
        ),
        timeout=60,
    )
    page = client_for("member").post(f"/sweeps/{sweep.pk}/cancel/", {"confirm": "yes"})
    assert page.status_code == 302
    assert wait_until(lambda: Sweep.objects.get(pk=sweep.pk).status == "cancelled", timeout=90), (
        list(SweepRun.objects.filter(sweep=sweep).values("index", "state", "job__status"))
    )
    runs = list(SweepRun.objects.filter(sweep=sweep).select_related("job").order_by("index"))
    assert [r.state for r in runs] == ["launched", "launched", "skipped"]
    assert [r.job.status for r in runs[:2] if r.job] == ["cancelled", "cancelled"]
    theirs = provider_for_connection(sandbox_connection).list_jobs(limit=100).data
    assert sorted(j.status for j in theirs) == ["cancelled", "cancelled"]
    assert "Cancelled by member-user." in Sweep.objects.get(pk=sweep.pk).status_message

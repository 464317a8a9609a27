"""A run still going has no final loss yet: in the runs list and on the compare page its last
values are read as the latest ones, run by run, under neutral headings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from jobs import metrics
from jobs.models import Job
from jobs.services import connection_save
from tests.e2e.pages import E2E

pytestmark = [*E2E, pytest.mark.django_db(transaction=True)]


def make_run(name: str, *, steps: int, running: bool) -> Job:
    """A run with its metric rows and summary fields stored as a sync stores them."""
    connection = connection_save(
        name=f"Provider of {name}", kind="openai", base_url="https://api.acme.example/v1",
        api_key="sk-e2e-key",
    )  # fmt: skip
    now = timezone.now()
    job = Job.objects.create(
        connection=connection, name=name, provider_job_id=f"ftjob-{name}",
        base_model="gpt-4o-mini-2024-07-18", status="running" if running else "succeeded",
        hyperparameters={"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8},
        started_at=now - timedelta(minutes=30), finished_at=None if running else now,
        trained_tokens=None if running else 60_000,
    )  # fmt: skip
    rows = [
        {"step": step, "train_loss": 2.0 / step, "train_accuracy": 0.5 + step / 200,
         **({"full_valid_loss": 2.1 / step, "full_valid_accuracy": 0.5 + step / 210}
            if step % 10 == 0 else {})}
        for step in range(1, steps + 1)
    ]  # fmt: skip
    metrics.upsert(job.pk, rows)
    Job.objects.filter(pk=job.pk).update(
        total_steps=60, last_step=steps, final_train_loss=rows[-1]["train_loss"],
        best_full_valid_loss=2.1 / (steps - steps % 10), best_full_valid_step=steps - steps % 10,
    )  # fmt: skip
    return job


def test_the_train_loss_of_a_run_still_going_reads_latest(
    page_as: Callable[[str], Page], check_page: Callable[[Page, str], None]
) -> None:
    make_run("finished-baseline", steps=60, running=False)
    make_run("still-running", steps=25, running=True)
    page = page_as("viewer")
    page.goto("/")
    runs = page.locator("table.tb-runs")
    expect(runs.get_by_role("columnheader", name="Train loss (sort ascending)")).to_be_visible()
    expect(runs.get_by_role("columnheader", name="Final train loss")).to_have_count(0)
    going = runs.locator("tr", has_text="still-running").locator('td[data-col="train_loss"]')
    expect(going).to_have_text("0.0800latest")
    expect(going.locator(".tb-latest")).to_be_visible()
    expect(going).to_have_attribute("title", "Latest train loss: the run has not finished")
    done = runs.locator("tr", has_text="finished-baseline").locator('td[data-col="train_loss"]')
    expect(done).to_have_text("0.0333")
    check_page(page, "runs")

    page.get_by_label("Compare finished-baseline", exact=True).check()
    page.get_by_label("Compare still-running", exact=True).check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url("**/compare/?runs=*")
    table = page.locator("table.tb-metrics-table")
    expect(table.get_by_role("columnheader", name="Train loss", exact=True)).to_be_visible()
    still = table.get_by_role("row").filter(has_text="still-running")
    expect(still.locator(".tb-latest")).to_have_count(4)  # train/full-valid loss and accuracy
    expect(still.locator('[data-key="final_train_loss"]')).to_have_text("0.0800latest")
    expect(still.locator('[data-key="best_full_valid_loss"] .tb-latest')).to_have_count(0)
    finished = table.get_by_role("row").filter(has_text="finished-baseline")
    expect(finished.locator(".tb-latest")).to_have_count(0)
    expect(page.locator("#tb-latest-note")).to_contain_text("marked latest for a run that")
    check_page(page, "compare")

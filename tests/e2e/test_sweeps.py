"""A sweep planned, started and followed in the browser (issue 18, deliverable 2): the plan
page lists every run and the total, the sweep page follows the runs live (its own polling,
one run at a time here), then is the comparison of the runs with its parallel coordinates and
names the best run. The sandbox, a real worker and beat do the work."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from datasets.models import Dataset
from jobs.models import Sweep, SweepRun
from tests.e2e.pages import E2E
from tests.sandbox.data import chat_examples

pytestmark = [*E2E, pytest.mark.django_db(transaction=True), pytest.mark.worker]

MINI = "gpt-4o-mini-2024-07-18"
PARALLEL_DRAWN = """() => {
  const el = document.querySelector("[data-tb-parallel]");
  return !!(el && el.data && el.data.length === 2 && el.querySelectorAll("g.trace").length === 2);
}"""
LOSS_DRAWN = """() => {
  const el = document.querySelector('[data-tb-chart="loss"]');
  return !!(el && el.querySelectorAll("g.trace").length > 0);
}"""


def test_member_plans_a_sweep_starts_it_and_follows_it_to_its_best_run(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    make_dataset: Callable[..., Dataset],
    sandbox_connection: Any,
    celery_worker: str,
    celery_beat: object,
    settings: Any,
) -> None:
    settings.SANDBOX_SECONDS_PER_STEP = 0.05
    train = make_dataset(chat_examples(12, seed=41), name="Sweep train")
    valid = make_dataset(chat_examples(12, seed=42), name="Sweep valid")
    page = page_as("member")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sweeps").click()
    page.get_by_role("link", name="New sweep").click()
    page.get_by_label("Training dataset").select_option(str(train.pk))
    page.get_by_label("Validation dataset").select_option(str(valid.pk))
    page.get_by_label("Base models").select_option([MINI])
    page.get_by_label("Epochs").fill("1, 2")
    page.get_by_label("Budget (USD)").fill("5")
    page.get_by_label("Runs at a time").fill("1")
    page.get_by_role("button", name="Plan the sweep").click()
    plan = page.locator("#tb-plan-runs tbody tr")
    expect(plan).to_have_count(2)
    expect(plan.nth(1)).to_contain_text("2")
    expect(
        page.get_by_role("heading", name=re.compile("The plan: 2 runs, 1 at a time"))
    ).to_be_visible()
    check_page(page, "sweep-plan")
    page.get_by_role("button", name="Start the sweep").click()
    page.wait_for_url(re.compile(r"/sweeps/\d+/$"))
    sweep = Sweep.objects.get()
    expect(page.locator(".messages")).to_contain_text("Sweep started: 2 runs planned.")

    # The page follows the sweep by itself (it loads again once, when the second run is
    # launched and the comparison gains its columns) until the sweep has finished.
    expect(page.locator("#tb-sweep-badge")).to_have_text("Finished", timeout=120_000)
    runs = list(SweepRun.objects.filter(sweep=sweep).select_related("job").order_by("index"))
    assert [r.job.status for r in runs if r.job] == ["succeeded", "succeeded"]
    assert runs[1].launched_at is not None and runs[0].job is not None
    assert runs[1].launched_at >= runs[0].job.finished_at  # one at a time
    page.wait_for_function(PARALLEL_DRAWN, timeout=30_000)
    page.wait_for_function(LOSS_DRAWN, timeout=30_000)
    best = min(runs, key=lambda r: r.job.best_full_valid_loss)  # type: ignore[union-attr]
    expect(page.locator("#tb-sweep-best")).to_contain_text(best.job.display_name)  # type: ignore[union-attr]
    expect(page.locator("#tb-sweep-runs tr.tb-best")).to_have_attribute("data-run", str(best.index))
    check_page(page, "sweep-finished")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sweeps").click()
    expect(page.locator("#tb-sweeps tbody tr")).to_contain_text("2 of 2")
    check_page(page, "sweeps")

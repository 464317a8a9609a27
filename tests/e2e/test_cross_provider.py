"""One job on each provider, side by side (issue 16, deliverable 7): a member launches a job on
the sandbox's OpenAI-compatible API and one on its Together-compatible API from the launch form
(the Together form asks Together for its price first), follows both live in two tabs, then
compares them: aligned by epoch and by tokens seen, each provider's hyperparameters in their
own rows, the fit diagnosis and the checkpoint to use for each. Real HTTP to the sandbox, a real
Celery worker and beat."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from datasets.models import Dataset
from jobs.models import Job, ProviderConnection
from tests.e2e.pages import E2E, evaluate_settled, poll
from tests.sandbox.data import chat_examples

pytestmark = [*E2E, pytest.mark.django_db(transaction=True), pytest.mark.worker]

MINI = "gpt-4o-mini-2024-07-18"
LLAMA = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
EXAMPLES = 96  # batch size 8 on both: 12 steps an epoch
STATUS_BY_LABEL = {str(label): value for value, label in Job.Status.choices}
# What a job page shows right now; the marker tells a reloaded page from one updated in place.
PAGE_STATE = """() => {
  const fresh = window.__e2eMarker !== 1;
  window.__e2eMarker = 1;
  const loss = document.querySelector('[data-tb-chart="loss"]');
  return {
    fresh: fresh,
    badge: document.getElementById("job-status").textContent.trim(),
    provider: document.getElementById("job-provider-status").textContent.trim(),
    points: Math.max(0, ...((loss || {}).data || [])
      .filter((trace) => (trace.meta || {}).series === "train_loss")
      .map((trace) => (trace.x || []).length)),
  };
}"""
# Whether the compare loss chart is drawn with an x axis titled like ``word``.
AXIS_TITLE = """(word) => {
  const gd = document.querySelector('[data-tb-chart="loss"]');
  const layout = gd && gd._fullLayout;
  return Boolean(layout && layout.xaxis && new RegExp(word, "i").test(layout.xaxis.title.text));
}"""
# The compare chart's training-loss lines: run, role and x values.
PLOTTED = """() => {
  const gd = document.querySelector('[data-tb-chart="loss"]');
  return {
    title: gd._fullLayout.xaxis.title.text,
    lines: gd.data
      .filter((t) => t.meta && t.meta.series === "train_loss" && t.meta.role === "raw")
      .map((t) => ({run: t.meta.run, x: Array.from(t.x)})),
  };
}"""


def launch_openai(page: Page, dataset: Dataset, validation: Dataset) -> Job:
    page.goto("/jobs/new/")
    page.get_by_label("Provider connection").select_option(label="Sandbox")
    page.get_by_label("Base model").select_option(MINI)
    page.get_by_label("Training dataset").select_option(str(dataset.pk))
    page.get_by_label("Validation dataset (optional)").select_option(str(validation.pk))
    page.get_by_label("Epochs").fill("2")
    page.get_by_label("Batch size").fill("8")
    page.get_by_label("Name", exact=True).fill("On OpenAI")
    page.get_by_role("button", name="Launch", exact=True).click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    return Job.objects.get(name="On OpenAI")


def launch_together(page: Page, dataset: Dataset, validation: Dataset) -> Job:
    page.goto("/jobs/new/")
    # Another provider family: the form reloads with Together's own parameters.
    page.get_by_label("Provider connection").select_option(label="Together")
    page.wait_for_url(re.compile(r"[?&]connection=\d+"))
    expect(page.get_by_label("Learning rate", exact=True)).to_be_visible()
    expect(page.get_by_label("LR multiplier (×)")).to_have_count(0)
    page.get_by_label("Base model").select_option(LLAMA)
    expect(page.locator('[data-range-for="batch_size"]')).to_have_text("8–32")
    page.get_by_label("Training dataset").select_option(str(dataset.pk))
    page.get_by_label("Validation dataset (optional)").select_option(str(validation.pk))
    page.get_by_label("Epochs").fill("2")
    page.get_by_label("Batch size").fill("8")
    page.get_by_label("Learning rate", exact=True).fill("3e-5")
    page.get_by_label("Evaluations").fill("4")
    # LoRA settings apply to LoRA training only; β to DPO only.
    expect(page.get_by_label("LoRA rank")).to_be_visible()
    expect(page.get_by_label("β (DPO)")).to_be_hidden()
    page.get_by_label("Training", exact=True).select_option("full")
    expect(page.get_by_label("LoRA rank")).to_be_hidden()
    page.get_by_label("Training", exact=True).select_option("lora")
    page.get_by_label("Name", exact=True).fill("On Together")
    # Together's own price, beside Tuneboard's estimate (which then learns the price).
    page.get_by_role("button", name="Ask Together AI for its price").click()
    expect(page.locator("#quote-output")).to_contain_text("training tokens", timeout=30_000)
    expect(page.locator("#quote-output")).to_contain_text("$")
    page.get_by_role("button", name="Launch", exact=True).click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    return Job.objects.get(name="On Together")


def follow_live(pages: dict[str, Page]) -> dict[str, dict[str, Any]]:
    """Watch each job page update itself until both jobs finished; what each page went
    through (statuses, provider words, chart sizes, page loads)."""
    seen: dict[str, dict[str, Any]] = {
        name: {"statuses": [], "provider": set(), "points": [], "loads": 0} for name in pages
    }

    def look() -> bool:
        done = True
        for name, page in pages.items():
            state = evaluate_settled(page, PAGE_STATE)
            record = seen[name]
            status = STATUS_BY_LABEL[state["badge"]]
            if not record["statuses"] or record["statuses"][-1] != status:
                record["statuses"].append(status)
            record["provider"].add(state["provider"])
            record["loads"] += 1 if state["fresh"] else 0
            if state["points"] and (
                not record["points"] or record["points"][-1] != state["points"]
            ):
                record["points"].append(state["points"])
            done = done and status in Job.TERMINAL
        return done

    poll(look, timeout=120, message=lambda: str(seen))
    return seen


def test_one_job_on_each_provider_followed_live_and_compared(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    make_dataset: Callable[..., Dataset],
    sandbox_connection: ProviderConnection,
    together_connection: ProviderConnection,
    celery_worker: str,
    celery_beat: object,
    settings: object,
) -> None:
    # 24 steps: ~14 s, so that the first job still runs after the second is launched, even on
    # a loaded machine.
    settings.SANDBOX_SECONDS_PER_STEP = 0.6  # type: ignore[attr-defined]
    dataset = make_dataset(chat_examples(EXAMPLES, seed=51), name="Support 96")
    validation = make_dataset(chat_examples(16, seed=52), name="Support valid")
    page = page_as("member")
    openai_job = launch_openai(page, dataset, validation)
    openai_page = page
    together_page = page.context.new_page()
    together_job = launch_together(together_page, dataset, validation)
    check_page(together_page, "together-job-launched")
    assert together_job.requested_hyperparameters == {
        "n_epochs": 2, "batch_size": 8, "learning_rate": 3e-5, "n_evals": 4,
        "training_type": "lora",
    }  # fmt: skip
    assert openai_job.requested_hyperparameters == {"n_epochs": 2, "batch_size": 8}

    openai_page.goto(f"/jobs/{openai_job.pk}/")
    seen = follow_live({"openai": openai_page, "together": together_page})
    for name, record in seen.items():
        assert record["statuses"][-1] == "succeeded", (name, record)
        assert "running" in record["statuses"], (name, record)
        assert record["loads"] == 1, (name, record)  # updated in place, never reloaded
        assert len(record["points"]) >= 2, (name, record)  # the chart grew while it ran
    # Together's own words are shown beside the status while they differ from ours.
    assert {"at the provider: pending", "at the provider: completed"} <= seen["together"][
        "provider"
    ]
    expect(together_page.locator("#job-status")).to_have_text("Succeeded")
    jobs = {job.name: job for job in Job.objects.filter(pk__in=[openai_job.pk, together_job.pk])}
    for job in jobs.values():
        assert (job.total_steps, job.trained_tokens is not None) == (24, True), job.name
    together_page.close()

    # Compare them from the runs list.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    for name in jobs:
        page.get_by_label(f"Compare {name}", exact=True).check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(re.compile(r"/compare/\?runs="))
    page.get_by_role("link", name="Show all hyperparameters").click()
    table = page.locator("[data-tb-hp-table]")
    order = [name.strip() for name in table.locator("thead th").all_inner_texts()[1:]]
    assert sorted(order) == ["On OpenAI", "On Together"], order

    def row(label: str) -> Any:
        return table.locator("tbody tr").filter(
            has=page.get_by_role("rowheader", name=label, exact=True)
        )

    # Each provider's parameter in its own row: a multiplier is not a learning rate.
    multiplier = {
        n: v
        for n, v in zip(
            order, row("Learning-rate multiplier").locator("td").all_inner_texts(), strict=True
        )
    }
    rate = {
        n: v
        for n, v in zip(
            order, row("Learning rate (absolute)").locator("td").all_inner_texts(), strict=True
        )
    }
    assert rate["On Together"].strip() == "3e-05" and multiplier["On Together"].strip() == "—"
    assert multiplier["On OpenAI"].strip() not in ("", "—") and rate["On OpenAI"].strip() == "—"
    expect(row("Epochs").locator("td")).to_have_text(["2", "2"])
    expect(row("LoRA rank").locator("td").nth(order.index("On Together"))).to_have_text("8")

    # The fit diagnosis and the checkpoint to use, for each run.
    fit = page.locator("[data-tb-fit-table] tbody tr")
    expect(fit).to_have_count(2)
    for name in jobs:
        line = fit.filter(has_text=name)
        expect(line.locator(".badge")).not_to_have_text("")
        expect(line.locator(".mono")).not_to_have_text("")  # a checkpoint's model name

    # Aligned by epoch: both end at epoch 2; by tokens seen: each at the tokens it trained.
    page.wait_for_function(AXIS_TITLE, arg="step")  # drawn (on steps) before switching
    axis = page.get_by_label("X axis")
    assert axis.locator("option").all_inner_texts() == ["Steps", "Epochs", "Tokens seen"]
    by_id = {str(job.pk): job for job in jobs.values()}
    axis.select_option(label="Epochs")
    page.wait_for_function(AXIS_TITLE, arg="epoch")
    lines = page.evaluate(PLOTTED)["lines"]
    assert sorted(line["run"] for line in lines) == sorted(by_id)
    assert all(line["x"][-1] == pytest.approx(2.0) for line in lines), lines
    axis.select_option(label="Tokens seen")
    page.wait_for_function(AXIS_TITLE, arg="token")
    for line in page.evaluate(PLOTTED)["lines"]:
        assert line["x"][-1] == pytest.approx(by_id[line["run"]].trained_tokens), line["run"]
    check_page(page, "compare-across-providers")

"""A job launched from the launch form and followed on its page: the sandbox (real HTTP), a real
Celery worker and beat, and the page's own polling, which updates the page in place (one page
load from launch to success)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from datasets.models import Dataset
from jobs.models import Checkpoint, Job, JobEvent, ProviderConnection
from tests.e2e.pages import E2E, evaluate_settled, poll
from tests.sandbox.data import chat_examples

pytestmark = [*E2E, pytest.mark.django_db(transaction=True), pytest.mark.worker]

MINI = "gpt-4o-mini-2024-07-18"
STATUS_BY_LABEL = {str(label): value for value, label in Job.Status.choices}
LIFECYCLE = ["pending", "launching", "validating_files", "queued", "running", "succeeded"]
# What the page shows right now, and whether it is a fresh page (loaded or reloaded since the
# last look): the marker is set in the same script that reads it.
PAGE_STATE = """() => {
  const fresh = window.__e2eMarker !== 1;
  window.__e2eMarker = 1;
  const badge = document.getElementById("job-status");
  return {
    fresh: fresh,
    badge: badge.textContent.trim(),
    rows: document.querySelectorAll("#events-body tr:not(#events-empty)").length,
    // The step the progress text reports (set by the page's poll), and how many polls.
    step: Number(document.getElementById("job-progress-text").getAttribute("data-step") || -1),
    polls: Number(document.getElementById("job-live").getAttribute("data-polls") || 0),
    // The newest step drawn on the loss chart.
    chartStep: Math.max(0, ...((document.querySelector('[data-tb-chart="loss"]') || {}).data || [])
      .filter((trace) => (trace.meta || {}).series === "train_loss")
      .map((trace) => Math.max(0, ...((trace.customdata || []).map((c) => c[1] || 0))))),
    // Training-loss points drawn on the loss chart (0 until plotly drew it).
    points: Math.max(0, ...((document.querySelector('[data-tb-chart="loss"]') || {}).data || [])
      .filter((trace) => (trace.meta || {}).series === "train_loss")
      .map((trace) => (trace.x || []).length)),
  };
}"""


def test_member_launches_a_job_and_follows_it_live(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    make_dataset: Callable[..., Dataset],
    sandbox_connection: ProviderConnection,
    celery_worker: str,
    celery_beat: object,
    settings: object,
) -> None:
    # 60 examples × 2 epochs at batch size 1 = 120 steps: about 14 s of "running" to watch.
    settings.SANDBOX_SECONDS_PER_STEP = 0.12  # type: ignore[attr-defined]
    dataset = make_dataset(chat_examples(60, seed=21), name="Support 60")
    page = page_as("member")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New job").click()
    check_page(page, "launch-form-empty")

    page.get_by_label("Provider connection").select_option(label="Sandbox")
    page.get_by_label("Base model").select_option(MINI)
    page.get_by_label("Training dataset").select_option(str(dataset.pk))
    page.get_by_label("Epochs").fill("2")
    # The cost estimate follows the epochs as they are typed.
    expect(page.locator("#cost-estimate")).to_contain_text("over 2 epochs")
    expect(page.locator('[data-default-for="n_epochs"]')).to_have_text("3")
    page.get_by_label("Suffix").fill("e2e")
    page.get_by_label("Name", exact=True).fill("Browser run")
    check_page(page, "launch-form-filled")
    page.get_by_role("button", name="Launch", exact=True).click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    job = Job.objects.get()
    assert page.url.endswith(f"/jobs/{job.pk}/")
    assert job.requested_hyperparameters == {"n_epochs": 2}
    assert (job.name, job.suffix, job.training_dataset_id) == ("Browser run", "e2e", dataset.pk)
    expect(page.locator(".messages")).to_contain_text("Launch of “Browser run” requested.")
    check_page(page, "job-launched")

    # Follow the page. It updates itself from live.json, with no reload: the marker set on
    # each fresh page would tell (evaluate_settled survives a reload, so one would be counted).
    statuses: list[str] = []
    fresh_pages = 0
    grew_live: dict | None = None
    chart_points: list[int] = []
    baseline: dict = {}
    steps_seen: list[tuple[int, int, str]] = []

    def watch() -> bool:
        nonlocal fresh_pages, grew_live, baseline
        state = evaluate_settled(page, PAGE_STATE)
        # The badge's text: what a user sees.
        status = STATUS_BY_LABEL[state["badge"]]
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        if state["fresh"]:
            fresh_pages += 1
            baseline = state
        elif grew_live is None and state["rows"] > baseline["rows"]:
            grew_live = {"before": baseline["rows"], **state}
        if state["points"] and (not chart_points or chart_points[-1] != state["points"]):
            chart_points.append(state["points"])
        if state["polls"] and state["step"] > 0:
            # One poll moves the status text and the chart together (issue 14, item 5).
            steps_seen.append((state["step"], state["chartStep"], status))
        return status in Job.TERMINAL

    poll(watch, timeout=90, message=lambda: f"statuses {statuses}, live growth {grew_live}")
    assert statuses[-1] == "succeeded", (statuses, job.launch_error)
    # Forward only, through running.
    assert "running" in statuses
    assert statuses == sorted(statuses, key=LIFECYCLE.index), statuses
    # One page load (the launch's redirect) for the whole life of the job.
    assert fresh_pages == 1, (fresh_pages, statuses)
    # New events were added to the list by the page itself.
    assert grew_live is not None and grew_live["rows"] > grew_live["before"], (statuses, grew_live)
    # At every look once the page had polled, the progress text and the chart named the
    # same step (while running; the last poll may fetch final figures).
    running_looks = [(text, chart) for text, chart, status in steps_seen if status == "running"]
    assert len(running_looks) >= 2, steps_seen
    assert all(text == chart for text, chart in running_looks), running_looks
    # The loss chart grew while the job ran: drawn, then extended step by step.
    assert len(chart_points) >= 2 and chart_points == sorted(chart_points), chart_points

    # The finished page, updated in place: the status, the controls that depend on it,
    # checkpoints, the fine-tuned model, hyperparameters, the fit diagnosis, every event.
    job.refresh_from_db()
    expect(page.locator("#job-status")).to_have_text("Succeeded")
    expect(page.locator("#job-status")).to_have_class(re.compile(r"\bbadge-ok\b"))
    expect(page.locator("#job-live")).to_have_attribute("data-terminal", "true")
    expect(page.locator("#events-live")).to_have_text("Newest first.")
    expect(page.locator("#job-progress")).to_have_js_property("value", 120)
    expect(page.locator("#job-finished")).not_to_have_text("—")
    for name in ("Cancel job…", "Pause…"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Sync now", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Delete fine-tuned model…")).to_be_visible()
    assert job.fine_tuned_model.startswith(f"ft:{MINI}:sandbox:e2e:")
    expect(page.locator("#ft-model")).to_have_text(job.fine_tuned_model)
    checkpoints = list(Checkpoint.objects.filter(job=job).order_by("step"))
    assert [c.step for c in checkpoints] == [60, 120]
    rows = page.locator("table.jb-checkpoints tbody tr")
    expect(rows).to_have_count(2)
    assert [r.split("\t")[0] for r in rows.all_inner_texts()] == ["60", "120"]
    for checkpoint in checkpoints:
        expect(page.locator("table.jb-checkpoints")).to_contain_text(checkpoint.model_name)
    epochs = page.locator("table.jb-hp-table tr").filter(has_text="Epochs")
    expect(epochs.locator("td")).to_have_text(["2", "2"])
    stored = JobEvent.objects.filter(job=job).count()
    expect(page.locator("#events-body tr")).to_have_count(min(200, stored))
    # The charts' own poll sees the end of the run and fetches the final diagnosis.
    diagnosis = page.locator(".tb-diagnosis")
    expect(diagnosis).to_be_visible(timeout=20_000)
    expect(diagnosis.get_by_role("heading", name=re.compile("^Fit diagnosis: "))).to_be_visible()
    expect(diagnosis.locator(".tb-best")).to_contain_text("Best checkpoint:")
    expect(page.locator("[data-tb-live]")).to_contain_text("the charts are final")
    final = poll(
        lambda: (state := evaluate_settled(page, PAGE_STATE))["points"] == 120 and state,
        timeout=15, message=lambda: f"the loss chart did not end with 120 steps: {chart_points}",
    )  # fmt: skip
    assert not final["fresh"], "the page reloaded itself at the end"
    check_page(page, "job-succeeded")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Browser run"))
    expect(row).to_contain_text("Succeeded")
    check_page(page, "runs")

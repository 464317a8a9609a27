"""The run page follows a control it asked for: a real worker talks to the sandbox (holding the
call for a moment) while the page shows the control under way, then its outcome, with no reload,
and keeps following a cancel after the job has become final."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from datasets.models import Dataset
from jobs.models import Job, ProviderConnection
from tests.conftest import Sandbox
from tests.e2e.pages import E2E, evaluate_settled
from tests.jobs.test_controls_and_faults import running
from tests.jobs.test_launch_and_poll import launched
from tests.sandbox.data import chat_examples

pytestmark = [*E2E, pytest.mark.django_db(transaction=True), pytest.mark.worker]
# True on the page the script first ran on; false after a reload.
SAME_PAGE = "() => { const same = window.__e2eMarker === 1; window.__e2eMarker = 1; return same; }"


def test_the_run_page_follows_pause_and_cancel_live(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    make_dataset: Callable[..., Dataset],
    sandbox: Sandbox,
    sandbox_connection: ProviderConnection,
    celery_worker: str,
    settings: object,
) -> None:
    settings.SANDBOX_SECONDS_PER_STEP = 0.05  # type: ignore[attr-defined]
    job = running(
        launched(
            sandbox_connection, make_dataset(chat_examples(20)), hyperparameters={"n_epochs": 30}
        )
    )
    # The provider holds each control for a second: the page shows it under way meanwhile.
    for action in ("pause", "cancel"):
        sandbox.control(
            "faults", {"kinds": ["hang"], "count": 1, "hang_seconds": 1, "path": f"/{action}$"}
        )
    page = page_as("member")
    page.goto(f"/jobs/{job.pk}/")
    # Each control asks first, on a page of its own that says what will happen.
    page.get_by_role("button", name="Pause…", exact=True).click()
    page.wait_for_url(re.compile(rf"/jobs/{job.pk}/pause/\??$"))  # a GET form: "?" may end it
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Pause {job.display_name}?")
    expect(page.locator(".confirm-consequences")).to_contain_text("until someone resumes it")
    check_page(page, "pause-confirmation")
    page.get_by_role("button", name="Pause the job", exact=True).click()
    page.wait_for_url(f"**/jobs/{job.pk}/")
    expect(page.locator(".messages")).to_contain_text("Pause requested")
    expect(page.locator("#job-control")).to_contain_text("Pause requested…")
    evaluate_settled(page, SAME_PAGE)  # marks this page
    expect(page.locator("#job-control")).to_contain_text(
        "Paused at the provider; the job is now paused.", timeout=30_000
    )
    expect(page.locator("#job-status")).to_have_text("Paused")
    expect(page.get_by_role("button", name="Resume", exact=True)).to_be_visible()
    assert evaluate_settled(page, SAME_PAGE), "the page was reloaded"
    check_page(page, "job-control-done")

    page.get_by_role("button", name="Cancel job…", exact=True).click()
    page.wait_for_url(re.compile(rf"/jobs/{job.pk}/cancel/\??$"))
    expect(page.locator(".confirm-consequences")).to_contain_text("cannot be resumed")
    page.get_by_role("link", name="Keep the job").click()  # changing one's mind acts on nothing
    page.wait_for_url(f"**/jobs/{job.pk}/")
    assert Job.objects.get(pk=job.pk).status == "paused"
    page.get_by_role("button", name="Cancel job…", exact=True).click()
    page.wait_for_url(re.compile(rf"/jobs/{job.pk}/cancel/\??$"))
    check_page(page, "cancel-confirmation")
    page.get_by_role("button", name="Cancel the job", exact=True).click()
    page.wait_for_url(f"**/jobs/{job.pk}/")
    expect(page.locator("#job-control")).to_contain_text("Cancel requested…")
    evaluate_settled(page, SAME_PAGE)
    expect(page.locator("#job-control")).to_contain_text(
        "Cancelled at the provider; the job is now cancelled.", timeout=30_000
    )
    expect(page.locator("#job-status")).to_have_text("Cancelled")
    expect(page.get_by_role("button", name="Pause…", exact=True)).to_have_count(0)
    assert evaluate_settled(page, SAME_PAGE), "the page was reloaded"
    assert Job.objects.get(pk=job.pk).status == "cancelled"

"""An import started from the connection's history page: the progress box follows it (shared
poller), and once it ends the page shows the finished import and the imported runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from jobs.models import ImportRun, Job, ProviderConnection
from tests.e2e.pages import E2E
from tests.history.helpers import make_history
from tests.sandbox.conftest import make_client

pytestmark = [*E2E, pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_member_imports_the_history_and_watches_it(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    sandbox_url: str,
    sandbox_key: str,
    sandbox_connection: ProviderConnection,
    celery_worker: str,
) -> None:
    history = make_history(make_client(sandbox_url, key=sandbox_key))
    page = page_as("member")
    page.goto(f"/jobs/connections/{sandbox_connection.pk}/history/")
    check_page(page, "history-before")
    page.get_by_role("button", name="Import history").click()
    # Whether the progress box caught it running or not, the page ends on the finished import.
    row = page.locator("table.hb-runs tbody tr").first
    expect(row).to_contain_text("Succeeded", timeout=60_000)
    expect(row).to_contain_text(f"{len(history.all)}/{len(history.all)}")
    expect(page.locator("#import-progress")).to_have_count(0)
    assert ImportRun.objects.get().status == "succeeded"
    assert Job.objects.count() == len(history.all)
    check_page(page, "history-imported")
    page.goto("/")
    expect(page.locator("body")).to_contain_text(history.succeeded[0])

"""What a viewer can and cannot do in the browser, and markup in user-controlled text (dataset
and job names, descriptions, tags, notes, file content, provider events) staying text on every
page, including what the pages' scripts add later."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from datasets.models import Dataset
from jobs.models import Job, ProviderConnection
from tests.conftest import wait_until
from tests.e2e.conftest import PageProblems
from tests.e2e.data import add_event, make_running_job
from tests.e2e.pages import E2E, XSS, axe_checked, upload
from tests.sandbox.data import chat_examples, jsonl

pytestmark = [*E2E, pytest.mark.django_db(transaction=True)]

MINI = "gpt-4o-mini-2024-07-18"
JOB_ACTIONS = ("Cancel job…", "Pause…", "Resume", "Sync now", "Archive", "Unarchive")


def csrf_headers(page: Page) -> dict[str, str]:
    (token,) = [c["value"] for c in page.context.cookies() if c["name"] == "csrftoken"]
    return {"X-CSRFToken": token}


def test_the_probe_sees_an_injected_script(
    page_as: Callable[[str], Page], browser_problems: PageProblems
) -> None:
    """The XSS checks below would notice an injection. Under the Content-Security-Policy the
    payload's handler does not run (no dialog opens); the refusal is a console error, which the
    console collector records and which fails any test that sees it."""
    page = page_as("viewer")
    page.set_content(f"<main><p>{XSS}</p></main>")

    def seen() -> bool:
        page.wait_for_timeout(50)  # Playwright hands over the page's events while it waits
        return any("inline event handler" in e for e in browser_problems.errors) and any(
            e.endswith("/x]") for e in browser_problems.errors
        )

    assert wait_until(seen, timeout=15), browser_problems
    assert browser_problems.dialogs == []  # the policy kept the handler from running
    # ...and the console collector also saw the broken image it loaded.
    assert any(e.endswith("/x]") for e in browser_problems.errors), browser_problems.errors
    axe_checked(page)  # axe looks at the probe page too, which is no page of ours
    browser_problems.dialogs.clear()
    browser_problems.errors.clear()


def test_a_viewer_sees_no_actions_and_is_refused_when_posting(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    browser_problems: PageProblems,
    make_dataset: Callable[..., Dataset],
    sandbox_connection: ProviderConnection,
) -> None:
    dataset = make_dataset(chat_examples(20, seed=8), name="Shared data")
    job = make_running_job(sandbox_connection, dataset, name="Someone else's run")
    # A member sees the actions on these very pages: their absence below is the role's doing.
    member = page_as("member")
    member.goto(f"/jobs/{job.pk}/")
    for name in ("Cancel job…", "Pause…", "Sync now", "Archive"):
        expect(member.get_by_role("button", name=name, exact=True)).to_be_visible()
    member.goto(f"/datasets/{dataset.pk}/")
    expect(member.get_by_role("link", name="Launch a job")).to_be_visible()

    viewer = page_as("viewer")
    nav = viewer.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Datasets")).to_be_visible()
    expect(nav.get_by_role("link", name="New job")).to_have_count(0)
    expect(viewer.get_by_role("link", name="My share links")).to_have_count(0)
    check_page(viewer, "runs")
    viewer.goto("/datasets/")
    expect(viewer.get_by_role("link", name="Shared data")).to_be_visible()
    expect(viewer.get_by_role("link", name="Upload a dataset")).to_have_count(0)
    check_page(viewer, "datasets")
    viewer.goto(f"/datasets/{dataset.pk}/")
    expect(viewer.locator("#dataset-status")).to_have_text("Valid")
    for name in ("Launch a job", "Split or subset"):
        expect(viewer.get_by_role("link", name=name)).to_have_count(0)
    expect(viewer.get_by_role("button", name="Re-validate")).to_have_count(0)
    check_page(viewer, "dataset")
    viewer.goto(f"/jobs/{job.pk}/")
    expect(viewer.locator("#job-status")).to_have_text("Running")
    expect(viewer.get_by_role("heading", name="Controls")).to_have_count(0)
    for name in JOB_ACTIONS:
        expect(viewer.get_by_role("button", name=name, exact=True)).to_have_count(0)
    for name in ("Clone as new job", "Edit name, notes and tags", "Delete fine-tuned model…"):
        expect(viewer.get_by_role("link", name=name)).to_have_count(0)
    check_page(viewer, "job")
    for path in ("/jobs/new/", "/datasets/upload/", f"/datasets/{dataset.pk}/derive/"):
        response = viewer.goto(path)
        assert response is not None and response.status == 403, path
        # Chromium logs the refused document itself as a console error: expected here only.
        expected = f"status of 403 (Forbidden) [{viewer.url}]"
        logged = [e for e in browser_problems.errors if e.endswith(expected)]
        assert len(logged) == 1, browser_problems.errors
        browser_problems.errors.remove(logged[0])
    expect(viewer.get_by_role("heading", name="403")).to_be_visible()
    check_page(viewer, "forbidden")

    headers = csrf_headers(viewer)
    # The token is good (a form every signed-in account may post answers with its errors), so
    # the 403s below come from the role, not from CSRF.
    control = viewer.request.post(
        "/accounts/password/", headers=headers,
        form={"old_password": "wrong", "new_password1": "a", "new_password2": "b"},
    )  # fmt: skip
    assert control.status == 200 and "CSRF" not in control.text()
    upload_file = {"name": "sneaky.jsonl", "mimeType": "application/jsonl",
                   "buffer": jsonl(chat_examples(12, seed=4))}  # fmt: skip
    launch = {"connection": str(sandbox_connection.pk), "base_model": MINI,
              "training_dataset": str(dataset.pk), "method": "supervised", "n_epochs": "1",
              "name": "sneaky"}  # fmt: skip
    attempts: list[tuple[str, dict]] = [
        ("/datasets/upload/", {"multipart": {"file": upload_file, "name": "sneaky"}}),
        ("/jobs/new/", {"form": launch}),
        (f"/datasets/{dataset.pk}/revalidate/", {"form": {"model": MINI}}),
        (f"/datasets/{dataset.pk}/subset/", {"form": {"mode": "first", "n": "10"}}),
        *((f"/jobs/{job.pk}/{action}/", {}) for action in ("cancel", "pause", "sync", "archive")),
    ]
    for path, body in attempts:
        response = viewer.request.post(path, headers=headers, max_redirects=0, **body)
        assert response.status == 403, (path, response.status)
        assert "CSRF" not in response.text(), path
    assert Dataset.objects.count() == 1 and Job.objects.count() == 1
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and not job.archived
    # The same post from the member goes through.
    archived = member.request.post(
        f"/jobs/{job.pk}/archive/", headers=csrf_headers(member), max_redirects=0
    )
    assert archived.status == 302
    job.refresh_from_db()
    assert job.archived


@pytest.mark.worker
def test_markup_in_names_stays_text_on_every_page(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    sandbox_connection: ProviderConnection,
    celery_worker: str,
    tmp_path: Path,
) -> None:
    examples = chat_examples(12, seed=9)
    examples[0]["messages"][1]["content"] = XSS
    file = tmp_path / "markup.jsonl"
    file.write_bytes(jsonl(examples))
    page = page_as("member")

    def shows_text(path: str, name: str) -> None:
        if path:
            page.goto(path)
        check_page(page, name)  # fails on any dialog the page opened
        assert page.locator('img[src="x"]').count() == 0, f"{name}: the markup became an element"
        expect(page.locator("main")).to_contain_text(XSS)

    page.goto("/datasets/upload/")
    page.get_by_label("Description").fill(XSS)
    page.get_by_label("Tags").fill(XSS)
    upload(page, file, XSS)
    expect(page.locator("#dataset-status")).to_have_text("Valid", timeout=30_000)
    dataset = Dataset.objects.get()
    assert (dataset.name, dataset.description, dataset.tags) == (XSS, XSS, [XSS])
    expect(page.get_by_role("heading", level=1)).to_contain_text(XSS)
    assert XSS in page.title()
    shows_text("", "dataset")
    shows_text("/datasets/", "datasets")
    shows_text(f"/datasets/{dataset.pk}/examples/", "examples")
    shows_text(f"/jobs/new/?dataset={dataset.pk}", "launch-form")

    job = make_running_job(sandbox_connection, dataset, name=XSS, notes=XSS, tags=[XSS])
    add_event(job, f"provider says {XSS}")
    shows_text(f"/jobs/{job.pk}/", "job")
    # What the page's script adds while it polls stays text too.
    add_event(job, f"later the provider says {XSS}", level="warn")
    new_row = page.locator("#events-body tr").filter(has_text="later the provider says")
    expect(new_row).to_contain_text(XSS, timeout=15_000)
    expect(page.locator("#job-name")).to_have_text(XSS)
    shows_text("", "job-after-poll")
    shows_text(f"/jobs/{job.pk}/edit/", "job-edit")
    shows_text("/", "runs")

"""axe-core over the whole app, not only the pages other scenarios happen to open: as a viewer
and as a member, with runs, datasets, an evaluation and share links present, every page
reachable from the main navigation (and the pages those link to, two clicks deep) loads
without a critical or serious accessibility violation. The check itself is the load hook of
``page_as`` (tests/e2e/conftest.py); this test only walks the links."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page

from dashboard.services import share_link_create
from datasets.models import Dataset
from evals.choices import run_choices
from evals.services import EvaluationRequest, evaluation_create
from jobs.models import ProviderConnection
from tests.e2e.conftest import PageProblems
from tests.e2e.data import add_event, make_running_job
from tests.e2e.pages import E2E, accessibility_problems, axe_checked, axe_violations
from tests.evals.conftest import train
from tests.evals.test_run import EXACT, run_to_end
from tests.sandbox.conftest import make_client

pytestmark = [*E2E, pytest.mark.django_db(transaction=True)]

# The main navigation's links, then every same-site link inside <main> of the pages they open.
NAV_LINKS = "() => Array.from(document.querySelectorAll('nav[aria-label=Main] a'), (a) => a.href)"
MAIN_LINKS = """() => Array.from(document.querySelectorAll('main a[href]'))
  .filter((a) => !a.hasAttribute('download') && a.origin === location.origin)
  .map((a) => a.href.split('#')[0])"""
DEPTH = 2
# Not pages to read: files to download, the admin (staff only, checked by test_csp.py), and
# addresses the sandbox API and webhooks answer with JSON.
NOT_PAGES = re.compile(r"/(admin|sandbox|webhooks)/|/download/?$|\.(jsonl|json|csv|zip|png)$")


def shape(url: str) -> str:
    """Pages that differ only in ids, tokens or query values (run 1, run 2; sorted by one column
    or another) are one kind of page: it is checked once per role."""
    parts = urlsplit(url)
    path = re.sub(r"/(\d+|[A-Za-z0-9_-]{16,})(?=/|$)", "/<id>", parts.path)
    keys = sorted({key for key, _ in parse_qsl(parts.query, keep_blank_values=True)})
    return path + ("?" + "&".join(keys) if keys else "")


def visit(page: Page, url: str) -> list[str]:
    """Opens the page, waits for axe's verdict on it, checks the basics; returns its links."""
    response = page.goto(url)
    assert response is not None and response.status == 200, (url, response)
    axe_checked(page)  # before leaving it: the load hook's check, not a second visit
    basics = accessibility_problems(page)
    assert not basics, f"{url}: " + "; ".join(basics)
    return page.evaluate(MAIN_LINKS)


def crawl(page: Page, extra: list[str] = []) -> list[str]:  # noqa: B006 - read only
    """Visits each of the ``extra`` paths, then the pages reachable from the navigation, breadth
    first and each kind once; returns the kinds of page visited."""
    page.goto("/")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
    seen: set[str] = set()
    for path in extra:
        seen.add(shape(path))
        visit(page, origin + path)
    frontier = page.evaluate(NAV_LINKS) if page.goto("/") else []
    for _ in range(DEPTH + 1):
        found: list[str] = []
        for url in frontier:
            if shape(url) in seen or NOT_PAGES.search(urlsplit(url).path):
                continue
            seen.add(shape(url))
            found += visit(page, url)
        frontier = found
    return sorted(seen)


# Text in every status colour the pages use, on the tints it sits on, with the app's stylesheet;
# and two things axe must catch (an image without a text alternative, a field without a label).
PROBE = """<!doctype html><html lang="en"><head><title>probe</title>
<link rel="stylesheet" href="/static/css/app.css"></head><body><main><h1>Probe</h1>
<p><span class="badge">Queued</span> <span class="badge badge-ok">Succeeded</span>
<span class="badge badge-warn">Running</span> <span class="badge badge-bad">Failed</span></p>
<p class="muted">Muted</p><p class="error">Error</p><p class="ds-ok">Valid</p>
<div class="jb-banner jb-banner-warn"><span class="muted">warn</span> <a href="#a">link</a></div>
<div class="ds-banner ds-banner-bad"><span class="error">bad</span> <a href="#b">link</a></div>
<table class="table"><thead><tr><th>Column</th></tr></thead><tbody><tr class="tb-best"><td>
<span class="ev-good">good</span> <span class="ev-mid">mid</span> <span class="ev-bad">bad</span>
</td></tr></tbody></table>
<img src="/static/favicon.svg" id="no-alt"><input type="text" id="no-label"></main></body></html>"""


def test_axe_names_the_rule_and_the_element_and_the_status_colours_pass(
    page_as: Callable[[str], Page], browser_problems: PageProblems
) -> None:
    page = page_as("viewer")
    page.set_content(PROBE)
    page.wait_for_function("() => getComputedStyle(document.body).margin === '0px'")
    # set_content keeps the window and its address, so the check run on load cannot tell the
    # probe from the page before it: run axe on the probe itself (after any run under way).
    errors = axe_violations(page)
    found = sorted(line.split(":")[0] for line in errors)
    assert found == ["axe image-alt (critical)", "axe label (critical)"], errors
    assert "#no-alt" in "".join(errors)
    assert "#no-label" in "".join(errors)
    axe_checked(page)
    browser_problems.errors.clear()


def _data(sandbox_url: str, sandbox_key: str, connection: ProviderConnection) -> dict[str, Any]:
    sdk = make_client(sandbox_url, key=sandbox_key)
    first = train(sdk, connection)
    second = train(sdk, connection, epochs=2)
    running = make_running_job(connection, first.dataset, suffix="live")
    add_event(running, "Step 12/60: training loss=0.91", level="info")
    add_event(running, "Checkpoint upload failed, retrying", level="warn")
    evaluation = run_to_end(
        evaluation_create(
            request=EvaluationRequest(
                name="a11y",
                dataset=first.dataset,
                model_keys=[choice.key for choice in run_choices(first.job)][-2:],
                graders=[EXACT],
            ),
            user=None,
            enqueue=False,
        )
    )
    return {"first": first.job, "second": second.job, "evaluation": evaluation}


def test_every_page_from_the_navigation_passes_axe_as_viewer_and_member(
    page_as: Callable[[str], Page],
    browser_problems: PageProblems,
    make_dataset: Callable[..., Dataset],
    sandbox_url: str,
    sandbox_key: str,
    sandbox_connection: ProviderConnection,
) -> None:
    member, viewer, outsider = page_as("member"), page_as("viewer"), page_as("anonymous")
    data = _data(sandbox_url, sandbox_key, sandbox_connection)
    make_dataset(raw=b'{"messages": []}\nnot json\n', name="broken")
    owner = get_user_model().objects.get(username="member-e2e")
    links = [
        share_link_create(user=owner, job_ids=[data["first"].pk]),
        share_link_create(user=owner, job_ids=[data["first"].pk, data["second"].pk]),
        share_link_create(user=owner, evaluation_id=data["evaluation"].pk, include_outputs=True),
    ]
    compare = [f"/compare/?runs={data['first'].pk},{data['second'].pk}"]

    member_pages = crawl(member, compare)
    viewer_pages = crawl(viewer, compare)
    # Share pages are reached through the address handed out, by someone without an account.
    outsider_pages = crawl(outsider, [f"/share/{token}/" for _, token in links])

    # The walk did reach the detail pages, not only the lists.
    details = {"/jobs/<id>/", "/datasets/<id>/", "/evaluations/<id>/", "/compare/?runs"}
    details |= {"/compare/", "/share-links/", "/jobs/new/"}
    assert details <= set(member_pages), member_pages
    assert {"/datasets/<id>/", "/jobs/<id>/", "/evaluations/<id>/"} <= set(viewer_pages)
    assert "/jobs/new/" not in viewer_pages
    assert outsider_pages == ["/share/<id>/"], outsider_pages
    # Every page loaded was checked by axe as it loaded; what it found fails the test here.
    assert not browser_problems.summary(), browser_problems.summary()

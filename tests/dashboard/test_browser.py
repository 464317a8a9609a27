"""The dashboard's page scripts in a real browser (the system's Chromium through Playwright):
charts drawn from the embedded figures, smoothing, log scale and x axis, a live run extended
in place, the compare selection, inline tags, and no script run from user content."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from dashboard.charts import ema
from jobs import metrics
from jobs.models import Job
from tests.dashboard.conftest import XSS
from tests.permissions import make_user

CHROMIUM = os.environ.get("CHROMIUM_PATH", "").strip() or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("catalog"),
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"no Chromium at {CHROMIUM}"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop runs in this thread
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
    )
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def open_page(browser, live_server) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """open_page(path, role=None): a page signed in as ``role``; any dialog (an injected
    alert), page error, console error or failed request fails the test."""
    contexts, problems = [], []

    def open_(path: str, role: str | None = None) -> Any:
        context = browser.new_context(base_url=live_server.url)
        contexts.append(context)
        if role:
            client = Client()
            client.force_login(make_user(role, f"browser-{role}-{len(contexts)}"))
            cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
            context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie,
                                  "url": live_server.url}])  # fmt: skip
        page = context.new_page()
        page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on(
            "console",
            lambda m: (
                m.type == "error"
                and not m.text.startswith("Failed to load resource")
                and problems.append(f"console: {m.text}")
            ),
        )
        page.on(  # failed loads, named (the browser's own favicon request aside)
            "response",
            lambda r: (
                r.status >= 400
                and not r.url.endswith("/favicon.ico")
                and problems.append(f"HTTP {r.status}: {r.url}")
            ),
        )
        page.goto(path)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not problems, problems


def drawn(page: Any, selector: str) -> list[dict[str, Any]]:
    page.wait_for_function(f"() => document.querySelector('{selector}').data !== undefined")
    return page.evaluate(
        f"document.querySelector('{selector}').data.map(t => ({{meta: t.meta, x: t.x, y: t.y,"
        " visible: t.visible === undefined ? true : t.visible, custom: t.customdata}))"
    )


def smoothed(traces: list[dict[str, Any]], series: str) -> dict[str, Any]:
    return next(
        t for t in traces if t["meta"]["series"] == series and t["meta"]["role"] == "smoothed"
    )


def test_compare_page_controls(open_page, make_job) -> None:  # type: ignore[no-untyped-def]
    a = make_job(steps=60, name=XSS, seed=1)
    b = make_job(steps=60, name="second", seed=2, hyperparameters={"n_epochs": 3, "batch_size": 4,
                                                                 "learning_rate_multiplier": 1.8})  # fmt: skip
    page = open_page(f"/compare/?runs={a.pk},{b.pk}", "viewer")
    loss = drawn(page, '[data-tb-chart="loss"]')
    raw = [c[0] for c in smoothed(loss, "train_loss")["custom"]]
    assert smoothed(loss, "train_loss")["y"] == raw
    page.fill("[data-tb-smoothing]", "0.6")
    page.dispatch_event("[data-tb-smoothing]", "input")
    after = drawn(page, '[data-tb-chart="loss"]')
    assert smoothed(after, "train_loss")["y"] == pytest.approx(ema(raw, 0.6))
    assert page.inner_text("[data-tb-smoothing-value]") == "0.60"
    page.check("[data-tb-log-y]")
    assert (
        page.evaluate("document.querySelector('[data-tb-chart=\"loss\"]').layout.yaxis.type")
        == "log"
    )
    page.uncheck('[data-tb-series="valid"]')
    hidden = [
        t for t in drawn(page, '[data-tb-chart="loss"]') if t["meta"]["series"] == "valid_loss"
    ]
    assert hidden and all(t["visible"] == "legendonly" for t in hidden)
    page.select_option("[data-tb-x-axis]", "epoch")
    page.wait_for_function(
        "() => document.querySelector('[data-tb-chart=\"loss\"]').layout.meta.x_axis === 'epoch'"
    )
    assert smoothed(drawn(page, '[data-tb-chart="loss"]'), "train_loss")["x"][0] == pytest.approx(
        1 / 20
    )
    # Differences only is on; the toggle shows every row and records it in the address.
    assert page.is_hidden("tr[data-same='true']")
    page.click("[data-tb-hp-toggle]")
    assert page.is_visible("tr[data-same='true']") and "hp=all" in page.url
    assert page.locator("[data-tb-scatter='0']").locator(".main-svg").count() > 0


def test_a_shared_running_run_extends_live(open_page, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job(steps=0, status="running", finished_at=None, total_steps=60, name="live")
    metrics.upsert(job.pk, [{"step": s, "train_loss": 2 / s} for s in range(1, 21)])
    member = Client()
    member.force_login(make_user("member", "share-maker"))
    member.post("/share-links/new/", {"job": str(job.pk)})
    token = re.search(r"/share/([\w-]+)/", member.get("/share-links/").content.decode()).group(1)
    page = open_page(f"/share/{token}/")
    assert len(smoothed(drawn(page, '[data-tb-chart="loss"]'), "train_loss")["x"]) == 20
    metrics.upsert(job.pk, [{"step": s, "train_loss": 2 / s, "full_valid_loss": 0.9 if s == 30 else None}
                            for s in range(21, 31)])  # fmt: skip
    page.wait_for_function(
        "() => document.querySelector('[data-tb-chart=\"loss\"]').data"
        ".some(t => t.meta.series === 'train_loss' && t.meta.role === 'smoothed' && t.x.length === 30)",
        timeout=20_000,
    )
    loss = drawn(page, '[data-tb-chart="loss"]')
    assert smoothed(loss, "train_loss")["y"][-1] == 2 / 30
    # The first full-validation point has no trace to extend: the page fetched new figures.
    page.wait_for_function(
        "() => document.querySelector('[data-tb-chart=\"loss\"]').data"
        ".some(t => t.meta.series === 'full_valid_loss' && t.meta.role === 'points')",
        timeout=10_000,
    )
    # The run ends: the page says so and fetches the final figures and diagnosis once more.
    with page.expect_response(lambda r: "/figures" in r.url, timeout=20_000) as final:
        Job.objects.filter(pk=job.pk).update(status="succeeded", next_poll_at=None)
        page.wait_for_function(
            "() => document.querySelector('[data-tb-live]').textContent.includes('final')",
            timeout=20_000,
        )
    diagnosis = final.value.json()["diagnosis_html"]
    assert "<nav" not in diagnosis
    # Once the page shows that diagnosis, the final fetch has been applied.
    page.wait_for_function(
        """html => {
            const parsed = document.createElement("div");
            parsed.innerHTML = html;
            return document.querySelector("[data-tb-diagnosis]").innerHTML === parsed.innerHTML;
        }""",
        arg=diagnosis,
        timeout=20_000,
    )
    assert "<nav" not in page.content()


def test_runs_list_compare_selection_and_inline_tags(open_page, make_job) -> None:  # type: ignore[no-untyped-def]
    a, b = make_job(name="one"), make_job(name="two", tags=[XSS])
    page = open_page("/", "member")
    page.check(f"#sel-{a.pk}")
    page.check(f"#sel-{b.pk}")
    assert page.inner_text("#tb-compare-count") == "2 selected."
    page.click("#tb-compare-button")
    page.wait_for_url(re.compile(r".*/compare/\?runs=.*"))
    assert page.url.endswith(f"/compare/?runs={b.pk},{a.pk}") or page.url.endswith(
        f"/compare/?runs={a.pk},{b.pk}"
    )
    page = open_page("/", "member")
    row = page.locator(f'tr[data-run="{a.pk}"]')
    row.locator("summary", has_text="Edit tags").click()
    row.locator('input[name="tags"]').fill("gold, " + XSS)
    row.locator("button", has_text="Save tags").click()
    page.wait_for_function(
        f"() => document.querySelector('tr[data-run=\"{a.pk}\"] [data-field=\"tags\"]').textContent.includes('gold')"
    )
    assert "Saved the tags." in page.inner_text("#tb-inline-status")
    assert sorted(Job.objects.get(pk=a.pk).tags) == sorted(["gold", XSS])

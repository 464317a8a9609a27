"""Page weight in Chromium, with the static files as production serves them (collected with
hashed names and Brotli/gzip copies, sent by WhiteNoise): the run, compare, dataset and share
pages fetch plotly.js once per browser, and the server-rendered page is painted before plotly.js
runs (plotly_loader.js); the charts fill in after.

The pages are served by a server of their own (Django's threaded test server without the
live server's static-file handler, so WhiteNoise answers /static/). With PAGE_WEIGHT_REPORT set,
``test_page_weight_report`` also writes the cold and warm load table README's "Page weight"
section shows: ``python bench/page_weight.py`` runs it.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.templatetags.static import static
from django.test import Client
from django.test.testcases import LiveServerThread
from playwright.sync_api import Browser, BrowserContext, Page

from dashboard.services import share_link_create
from datasets.models import Dataset
from jobs.models import Job
from tests.dashboard.conftest import connection, make_job  # noqa: F401 - fixtures
from tests.e2e.conftest import PageProblems
from tests.e2e.pages import E2E, axe_violations
from tests.permissions import make_user
from tests.sandbox.data import chat_examples

pytestmark = [*E2E, pytest.mark.django_db(transaction=True)]

REPORT = os.environ.get("PAGE_WEIGHT_REPORT", "").strip()
STEPS = 2_000  # a run's page draws up to 2,000 points a curve
COMPARED = 4
EXAMPLES = 200

# Every chart container of the four pages.
CHARTS = "[data-tb-chart], [data-tb-scatter], .ds-plot[data-figure]"
# Chromium's navigation timing for the page in the tab, in ms from the start of the navigation,
# what came over the network, and the scripts that held up the parser.
TIMING = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  const plotly = performance.getEntriesByName("tuneboard:plotly")[0];
  return {
    html: nav.responseEnd, dcl: nav.domContentLoadedEventStart, load: nav.loadEventEnd,
    paint: paint ? paint.startTime : null, plotly: plotly ? plotly.startTime : null,
    html_bytes: nav.transferSize,
    resources: performance.getEntriesByType("resource").map((r) => ({
      url: new URL(r.name).pathname, transferred: r.transferSize, encoded: r.encodedBodySize,
      decoded: r.decodedBodySize, blocking: r.renderBlockingStatus})),
    parser_blocking: Array.from(document.scripts)
      .filter((s) => s.src && !s.async && !s.defer).map((s) => new URL(s.src).pathname),
  };
}"""
# The time (ms from the start of the navigation) of the first frame with every chart drawn.
CHARTS_DRAWN = """(selector) => {
  const charts = Array.from(document.querySelectorAll(selector));
  return charts.length > 0 && charts.every((el) => el.querySelector(".main-svg")) &&
    performance.now();
}"""
LOADED = "() => performance.getEntriesByType('navigation')[0].loadEventEnd > 0"


@dataclass
class Load:
    """One page load, as Chromium timed it (ms from the start of the navigation)."""

    name: str
    html: float
    paint: float
    dcl: float
    load: float
    plotly: float | None
    charts: float | None
    html_bytes: int
    resources: list[dict[str, Any]] = field(default_factory=list)
    parser_blocking: list[str] = field(default_factory=list)

    @property
    def transferred(self) -> int:
        return self.html_bytes + sum(r["transferred"] for r in self.resources)

    def fetched(self, url: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["url"] == url]


def visit(page: Page, name: str, path: str) -> Load:
    page.goto(path)
    page.wait_for_function(LOADED)
    charts = None
    if page.locator(CHARTS).count():
        charts = page.wait_for_function(CHARTS_DRAWN, arg=CHARTS, polling="raf").json_value()
    timing = page.evaluate(TIMING)
    return Load(name=name, charts=charts, **timing)


@pytest.fixture
def weight_server(production_static: Path) -> Iterator[str]:
    """The app with WhiteNoise in front, as under gunicorn (the shared live server serves
    /static/ from the finders, uncached and uncompressed)."""
    thread = LiveServerThread("localhost", static_handler=lambda app: app)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield f"http://localhost:{thread.port}"
    thread.terminate()


@pytest.fixture
def chart_pages(
    make_job: Callable[..., Job],  # noqa: F811
    make_dataset: Callable[..., Dataset],
) -> dict[str, str]:
    """The four pages with charts, by name: a finished run of 2,000 steps, the comparison of
    four such runs, a validated dataset of 200 examples and the run's share link."""
    runs = [make_job(steps=STEPS, seed=seed, name=f"run {seed}") for seed in range(COMPARED)]
    dataset = make_dataset(chat_examples(EXAMPLES, seed=3), name="support")
    owner = make_user("member", username="weight-owner")
    _, token = share_link_create(user=owner, job_ids=[runs[0].pk])
    return {
        "run": f"/jobs/{runs[0].pk}/",
        "compare": "/compare/?runs=" + ",".join(str(run.pk) for run in runs),
        "dataset": f"/datasets/{dataset.pk}/",
        "share": f"/share/{token}/",
    }


@pytest.fixture
def open_context(
    browser: Browser, weight_server: str, browser_problems: PageProblems
) -> Iterator[Callable[[], tuple[BrowserContext, Page]]]:
    """``open_context()``: a new browser context (its own, empty cache) signed in as a member,
    and a page in it whose errors fail the test."""
    client = Client()
    client.force_login(make_user("member", username="weight-member"))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    contexts: list[BrowserContext] = []

    def open_() -> tuple[BrowserContext, Page]:
        context = browser.new_context(
            base_url=weight_server, viewport={"width": 1280, "height": 900}
        )
        contexts.append(context)
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie,
                              "url": weight_server}])  # fmt: skip
        page = context.new_page()
        errors = browser_problems.errors
        page.on("pageerror", lambda exc: errors.append(f"uncaught error on {page.url}: {exc}"))
        page.on("console", lambda message: message.type == "error" and errors.append(
            f"console error on {page.url}: {message.text}"))  # fmt: skip
        return context, page

    yield open_
    for context in contexts:
        context.close()


def test_plotly_is_fetched_once_per_browser_and_runs_after_the_first_paint(
    open_context: Callable[[], tuple[BrowserContext, Page]],
    chart_pages: dict[str, str],
    browser_problems: PageProblems,
    production_static: Path,
) -> None:
    _, page = open_context()
    loads = []
    for visit_round in ("first", "again"):
        for name, path in chart_pages.items():
            loads.append(visit(page, f"{name} ({visit_round})", path))
            if visit_round == "first":
                browser_problems.errors.extend(f"axe {v} on {name}" for v in axe_violations(page))
    plotly = static("vendor/plotly.min.js")
    nav = static("js/nav.js")

    # One transfer of plotly.js in the browser's life, compressed; every other page, and every
    # page the second time, takes it from the cache (an immutable, hashed URL).
    fetched = [load.fetched(plotly) for load in loads]
    assert [len(f) for f in fetched] == [1] * len(loads), fetched
    first, *others = (f[0] for f in fetched)
    # Chromium asks for Brotli from localhost as over HTTPS: the collected .br copy is sent.
    brotli_copy = production_static / (plotly.removeprefix(settings.STATIC_URL) + ".br")
    assert first["transferred"] > first["encoded"] == brotli_copy.stat().st_size, first
    assert (
        first["decoded"]
        == (production_static / plotly.removeprefix(settings.STATIC_URL)).stat().st_size
    )
    assert [r["transferred"] for r in others] == [0] * len(others), others
    # Second visits: only the page itself comes over the network, no static file at all.
    for load in loads[len(chart_pages) :]:
        again = [r for r in load.resources if r["url"].startswith("/static/") and r["transferred"]]
        assert again == [], (load.name, again)

    for load in loads:
        # Nothing holds up the parser but nav.js (1 KB in <head>: it marks the page as scripted
        # before the first paint, so the folded menu never flashes open), and plotly.js does
        # not hold up rendering.
        assert load.parser_blocking == [nav], load.name
        assert {r["blocking"] for r in load.fetched(plotly)} == {"non-blocking"}, load.name
        # Server HTML first: painted before plotly.js ran, the charts drawn after it.
        assert load.plotly is not None and load.charts is not None, load.name
        assert load.paint < load.plotly <= load.charts, load


# --- the README's table ----------------------------------------------------------------------

BASELINE = ("runs list (no charts)", "/")
COLUMNS = ("transferred", "HTML", "HTML received", "first paint", "DOMContentLoaded", "load",
           "charts drawn")  # fmt: skip


def row(name: str, cache: str, loads: list[Load]) -> str:
    def ms(values: list[float | None]) -> str:
        known = [v for v in values if v is not None]
        return f"{statistics.median(known):,.0f} ms" if known else "–"

    def kb(values: list[int]) -> str:
        return f"{statistics.median(values) / 1000:,.0f} kB"

    cells = [
        kb([x.transferred for x in loads]),
        kb([x.html_bytes for x in loads]),
        ms([x.html for x in loads]),
        ms([x.paint for x in loads]),
        ms([x.dcl for x in loads]),
        ms([x.load for x in loads]),
        ms([x.charts for x in loads]),
    ]
    return "| " + " | ".join([name, cache, *cells]) + " |"


@pytest.mark.skipif(not REPORT, reason="writes the page-weight table (bench/page_weight.py)")
def test_page_weight_report(
    open_context: Callable[[], tuple[BrowserContext, Page]], chart_pages: dict[str, str]
) -> None:
    rounds = int(os.environ.get("PAGE_WEIGHT_ROUNDS", "5"))
    pages = [BASELINE, *chart_pages.items()]
    # Unmeasured first: the server's own first-view work (display curves, templates) is not
    # what this table is about (bench/pages.py measures it).
    context, page = open_context()
    for name, path in pages:
        visit(page, name, path)
    context.close()
    measured: dict[tuple[str, str], list[Load]] = {}
    for _ in range(rounds):
        for name, path in pages:
            # Cold: a new context, so an empty cache; warm: the same page again in it.
            context, page = open_context()
            for cache in ("cold", "warm"):
                measured.setdefault((name, cache), []).append(visit(page, name, path))
            context.close()
    lines = [
        "| page | cache | " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * (len(COLUMNS) + 2),
        *(row(name, cache, loads) for (name, cache), loads in measured.items()),
    ]
    Path(REPORT).write_text("\n".join(lines) + "\n")

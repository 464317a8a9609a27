"""What the browser tests share: the marks, the per-page checks (accessibility basics, no
script injected) and small waits that survive the page reloading itself."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from runtime.browser import chromium_path
from runtime.supervisor import var_dir

CHROMIUM = chromium_path()
BROWSER_MISSING = not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK))
# Every browser test: the marker, and a skip that says why when there is no Chromium
# (`make test` installs it where it can; see dashboard/runtime/browser.py).
E2E = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        BROWSER_MISSING,
        reason=f"no Chromium at {CHROMIUM} (install the chromium package or set CHROMIUM_PATH)",
    ),
]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
PASSWORD = "pw-unused"  # what tests.permissions.make_user gives every account
XSS = "<img src=x onerror=alert(1)>"
SCREENSHOTS = var_dir(dict(os.environ)) / "screenshots"

# Runs in the page: the accessibility basics every page must meet, as a list of problems.
A11Y_SCRIPT = """() => {
  const problems = [];
  if (!document.title.trim()) { problems.push("the <title> is empty"); }
  if (!document.querySelector("main, [role=main]")) { problems.push("no <main> landmark"); }
  const visible = (el) => el.checkVisibility({visibilityProperty: true});
  const text = (el) => !!el && el.textContent.trim() !== "";
  const named = (el) => {
    if ((el.getAttribute("aria-label") || "").trim()) { return true; }
    const ids = (el.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean);
    return ids.some((id) => text(document.getElementById(id)));
  };
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.name ? "[name=" + el.name + "]" : "");
  const skipped = ["hidden", "submit", "button", "reset", "image"];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (skipped.includes((el.getAttribute("type") || "").toLowerCase()) || !visible(el)) {
      continue;
    }
    const byFor = el.id && Array.from(document.querySelectorAll("label"))
      .some((label) => label.htmlFor === el.id && text(label));
    if (!byFor && !text(el.closest("label")) && !named(el)) {
      problems.push("form field without a label: " + describe(el));
    }
  }
  for (const chart of document.querySelectorAll(".js-plotly-plot")) {
    const holder = chart.closest("figure") || chart.parentElement;
    if (!named(chart) && !holder.querySelector("table")) {
      problems.push("chart without a text alternative: " + describe(chart));
    }
  }
  return problems;
}"""

# axe-core 4.4 (the copy bundled with axe-playwright-python: no network): every rule, keeping
# the critical and serious violations. It runs as Playwright's own script, outside the page's
# Content-Security-Policy, so it neither needs an exception nor causes a violation.
AXE_RUN = """async () => {
  const found = await axe.run(document, {resultTypes: ["violations"]});
  return found.violations
    .filter((v) => v.impact === "critical" || v.impact === "serious")
    .map((v) => v.id + " (" + v.impact + "): " + v.help + " at " +
      v.nodes.slice(0, 5).map((n) => n.target.join(" ") +
        (n.any.length ? " (" + n.any[0].message + ")" : "")).join("; ") +
      (v.nodes.length > 5 ? " and " + (v.nodes.length - 5) + " more" : ""));
}"""
# Added to every document of a browser context: once the page has loaded and its scripts have
# drawn (charts, tables filled in after the load event: the document stays still for a moment,
# or two seconds have passed on a page that keeps changing), axe checks it and hands the verdict
# to tbAxeReport. tbAxeStarted lets the test tell a page left before axe finished (checked again
# at the end of the test) from one that was checked.
AXE_SETTLED = """new Promise((resolve) => {
  let quiet = null;
  const done = () => { observer.disconnect(); clearTimeout(cap); resolve(); };
  const observer = new MutationObserver(() => {
    clearTimeout(quiet);
    quiet = setTimeout(done, 150);
  });
  observer.observe(document, {subtree: true, childList: true, attributes: true,
    characterData: true});
  quiet = setTimeout(done, 150);
  const cap = setTimeout(done, 2000);
})"""
AXE_ON_LOAD = f"""{AXE_SCRIPT}
window.addEventListener("load", () => {{
  if (!/^https?:$/.test(location.protocol)) {{ return; }}
  const key = location.href + " @" + performance.timeOrigin;
  window.tbAxeStarted(key, location.href);
  window.tbAxeDone = {AXE_SETTLED}.then({AXE_RUN}).then((found) => window.tbAxeReport(key, found));
}});
"""


# Records every value the upload bar shows; sessionStorage survives the redirect that follows.
WATCH_UPLOAD_BAR = """() => {
  const bar = document.getElementById("upload-bar");
  sessionStorage.setItem("e2e-upload-bar", "[]");
  new MutationObserver(() => {
    const seen = JSON.parse(sessionStorage.getItem("e2e-upload-bar"));
    seen.push(bar.value);
    sessionStorage.setItem("e2e-upload-bar", JSON.stringify(seen));
  }).observe(bar, {childList: true, characterData: true, subtree: true});
}"""


def upload(page: Page, path: Path, name: str) -> list[int]:
    """Upload ``path`` on the upload page (already open, other fields filled or not); the
    values its progress bar showed on the way."""
    page.get_by_label("JSONL file").set_input_files(path)
    page.get_by_label("Name", exact=True).fill(name)
    page.evaluate(WATCH_UPLOAD_BAR)
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url(re.compile(r"/datasets/\d+/$"))
    return json.loads(page.evaluate("sessionStorage.getItem('e2e-upload-bar')"))


def accessibility_problems(page: Page) -> list[str]:
    return page.evaluate(A11Y_SCRIPT)


def axe_checked(page: Page) -> None:
    """Waits for the check axe started when the page loaded (see ``AXE_ON_LOAD``)."""
    evaluate_settled(page, "() => window.tbAxeDone")


def axe_violations(page: Page) -> list[str]:
    """axe-core's critical and serious violations on the page as it is now, one line each with
    the rule id, what it asks for and the elements (CSS selectors) that break it."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SCRIPT)  # a page opened outside ``page_as``
    axe_checked(page)  # axe refuses to start while another run is going
    return [f"axe {line} on {page.url}" for line in page.evaluate(AXE_RUN)]


def screenshot_path(scenario: str, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{scenario}--{name}.png"


def evaluate_settled(page: Page, script: str, arg: Any = None) -> Any:
    """``page.evaluate`` that retries while the page is navigating (a reload destroys the
    context the script runs in)."""
    for _ in range(50):
        try:
            return page.evaluate(script, arg)
        except PlaywrightError as exc:
            if "context was destroyed" not in str(exc) and "navigat" not in str(exc):
                raise
            page.wait_for_load_state("load")
    raise AssertionError(f"{page.url} kept navigating")


def poll(condition: Callable[[], Any], *, timeout: float, message: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message())
        time.sleep(0.2)

"""Browser end-to-end fixtures: the system's Chromium driven by Playwright against pytest-django's
live server (with the built-in sandbox as the provider), signed in through the real login page.

Every page a test opens records JavaScript dialogs (an injected ``alert`` is how the XSS probes
show), uncaught page errors, console errors and axe-core's critical or serious accessibility
violations (checked on every page load, and again by ``check_page`` once scripts have run); any
of them fails the test that opened it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps as django_apps
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    sync_playwright,
)

from datasets.models import BaseModel
from tests.e2e.pages import (
    AXE_ON_LOAD,
    BROWSER_MISSING,
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    accessibility_problems,
    axe_checked,
    axe_violations,
    screenshot_path,
)
from tests.jobs.conftest import (  # noqa: F401 - fixtures
    make_dataset,
    sandbox_connection,
    together_connection,
)
from tests.permissions import make_user

NAVIGATION_TIMEOUT_MS = 20_000
ACTION_TIMEOUT_MS = 15_000


@dataclass
class PageProblems:
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"JavaScript dialog opened: {d}" for d in self.dialogs]
        return "\n".join(lines + self.errors)


PROBLEMS = pytest.StashKey[PageProblems]()
AXE_FINISH = pytest.StashKey[Callable[[], None]]()


class AxeWatch:
    """axe-core on every page a context loads (``AXE_ON_LOAD``): violations go to the test's
    problems; pages left before axe finished are opened again at the end and checked then."""

    def __init__(self, context: BrowserContext, role: str, problems: PageProblems) -> None:
        self.context, self.role, self.problems = context, role, problems
        self.started: dict[str, str] = {}
        self.checked: set[str] = set()
        context.expose_binding("tbAxeStarted", lambda _, key, url: self.start(key, url))
        context.expose_binding("tbAxeReport", lambda _, key, found: self.report(key, found))
        context.add_init_script(AXE_ON_LOAD)

    def start(self, key: str, url: str) -> None:
        self.started[key] = url

    def report(self, key: str, found: list[str]) -> None:
        url = self.started.pop(key, key.rsplit(" @", 1)[0])
        self.checked.add(url)
        self.problems.errors.extend(f"axe {line} on {url} ({self.role})" for line in found)

    def finish(self) -> None:
        for page in self.context.pages:
            axe_checked(page)
        for url in sorted(set(self.started.values()) - self.checked):
            page = self.context.new_page()
            try:
                page.goto(url)
                axe_checked(page)
            finally:
                page.close()


def scenario_name(request: pytest.FixtureRequest) -> str:
    return request.node.name.removeprefix("test_")


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the browser tests, closed when they are done."""
    if BROWSER_MISSING:  # the tests are marked skipif already; this guards direct use
        pytest.skip(f"no Chromium at {CHROMIUM}")
    # Playwright's sync API keeps an asyncio loop running in this thread, and Django refuses
    # ORM calls from a thread with a running loop. The tests (and the database flush after
    # each one) are plain synchronous code, so the check is lifted while the browser is up.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def catalog(transactional_db: None) -> None:
    """Transactional tests flush the base-model catalog seeded by a migration; put it back."""
    if not BaseModel.objects.exists():
        importlib.import_module("datasets.migrations.0002_seed_base_models").seed(django_apps, None)


@pytest.fixture
def browser_problems(request: pytest.FixtureRequest) -> PageProblems:
    """What this test's pages recorded so far (dialogs, uncaught errors, console errors)."""
    return request.node.stash.setdefault(PROBLEMS, PageProblems())


@pytest.fixture
def page_as(
    request: pytest.FixtureRequest,
    browser: Browser,
    live_server: Any,
    catalog: None,
    browser_problems: PageProblems,
) -> Iterator[Callable[[str], Page]]:
    """``page_as(role)``: a new browser context signed in as a user of that role (viewer,
    member, staff) through the login page, one user per role and test. ``page_as("anonymous")``
    is a fresh context nobody signed in to (someone holding a share link, say), watched the
    same way."""
    problems = browser_problems
    scenario = scenario_name(request)
    contexts = []
    users: dict[str, Any] = {}
    watches: list[AxeWatch] = []

    def finish_axe() -> None:
        for watch in watches:
            watch.finish()

    request.node.stash[AXE_FINISH] = finish_axe

    def watch(page: Page, role: str) -> None:
        def on_dialog(dialog: Dialog) -> None:
            problems.dialogs.append(f"{dialog.type} {dialog.message!r} on {page.url} ({role})")
            dialog.dismiss()

        def on_console(message: ConsoleMessage) -> None:
            source = message.location.get("url", "")
            # Any failed load counts (/favicon.ico included: Tuneboard serves it).
            if message.type == "error":
                problems.errors.append(
                    f"console error on {page.url} ({role}): {message.text} [{source}]"
                )

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: problems.errors.append(
            f"uncaught error on {page.url} ({role}): {exc}"))  # fmt: skip
        page.on("console", on_console)

    def open_as(role: str) -> Page:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}, locale="en-US"
        )
        contexts.append(context)
        watches.append(AxeWatch(context, role, problems))
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        page = context.new_page()
        watch(page, role)
        if role == "anonymous":
            return page
        user = users.get(role) or make_user(role, username=f"{role}-e2e")
        users[role] = user
        page.goto("/accounts/login/")
        if len(users) == 1:  # the login page is checked like every other page, once a test
            page.screenshot(path=screenshot_path(scenario, "login"), full_page=True)
            problems_here = accessibility_problems(page)
            assert not problems_here, "login page: " + "; ".join(problems_here)
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        assert page.locator(".user-name").inner_text() == user.username
        return page

    try:
        yield open_as
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def check_page(request: pytest.FixtureRequest) -> Callable[[Page, str], None]:
    """``check_page(page, name)``: screenshot the page as var/screenshots/<scenario>--<name>.png,
    then assert the accessibility basics, axe-core's verdict and that nothing went wrong on it
    so far."""
    scenario = scenario_name(request)

    def check(page: Page, name: str) -> None:
        page.wait_for_load_state("load")
        page.screenshot(path=screenshot_path(scenario, name), full_page=True)
        problems = accessibility_problems(page)
        # Again here, not only at load: by now the page's scripts have drawn what they draw.
        problems += axe_violations(page)
        assert not problems, f"{name} ({page.url}):\n" + "\n".join(problems)
        recorded = request.node.stash.get(PROBLEMS, None)
        assert not (recorded and recorded.summary()), f"{name}: {recorded.summary()}"

    return check


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Fail a test whose pages opened a dialog, raised or broke an axe rule, even when its
    asserts passed."""
    try:
        result = yield
        finish_axe = item.stash.get(AXE_FINISH, None)
        if finish_axe is not None:
            finish_axe()
    except BaseException as exc:
        problems = item.stash.get(PROBLEMS, None)
        if problems and problems.summary():
            exc.add_note("In the browser:\n" + problems.summary())
        raise
    problems = item.stash.get(PROBLEMS, None)
    if problems and problems.summary():
        pytest.fail("In the browser:\n" + problems.summary(), pytrace=False)
    return result

"""The Content-Security-Policy in the browser: every page (signed in as staff, anonymous on the
login and share pages, the admin's too) loads with the policy enforced and without a single
violation, reported through the ``securitypolicyviolation`` event and the console, and every
chart on it is still drawn by plotly.js."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse
from playwright.sync_api import Browser, Page, expect

from dashboard.services import share_link_create
from evals.choices import run_choices
from evals.services import EvaluationRequest, evaluation_create
from jobs.models import ProviderConnection
from tests.e2e.conftest import PageProblems
from tests.e2e.pages import E2E, PASSWORD, axe_checked
from tests.e2e.plotly_css import (
    STATIC_CSS,
    bundle_rules,
    csp_hash,
    file_rules,
    other_inline_styles,
    stylesheet,
)
from tests.evals.conftest import Trained, train
from tests.evals.test_run import EXACT, run_to_end
from tests.sandbox.conftest import make_client

pytestmark = E2E

# Sends every violation to the test, from every page the context opens (before the page's
# own scripts run).
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.tbCspViolation(JSON.stringify({
    page: location.pathname + location.search, directive: event.violatedDirective,
    blocked: event.blockedURI, sample: event.sample, source: event.sourceFile,
    line: event.lineNumber,
  }));
});
"""
# Resolves once every chart matched by the selector has been drawn by plotly: an SVG with at
# least one trace in it. Returns how many there are.
CHARTS_DRAWN = """(selector) => {
  const charts = Array.from(document.querySelectorAll(selector));
  const drawn = (el) => el.classList.contains("js-plotly-plot") &&
    !!el.querySelector("svg.main-svg") && el.querySelectorAll("g.trace").length > 0;
  return charts.length > 0 && charts.every(drawn) && charts.length;
}"""
POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
}


def policy_of(header: str) -> dict[str, str]:
    directives = (part.strip().split(None, 1) for part in header.split(";") if part.strip())
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


class Watcher:
    """Opens pages in one browser context and collects the violations its pages report."""

    def __init__(self, page: Page, problems: PageProblems) -> None:
        self.page = page
        self.problems = problems
        self.violations: list[dict[str, Any]] = []
        page.context.expose_function(
            "tbCspViolation", lambda text: self.violations.append(json.loads(text))
        )
        page.context.add_init_script(REPORT_VIOLATIONS)

    def visit(self, path: str, *, charts: str | None = None, status: int = 200) -> None:
        response = self.page.goto(path)
        assert response is not None and response.status == status, (path, response)
        policy = policy_of(response.headers.get("content-security-policy", ""))
        assert {k: policy.get(k) for k in POLICY} == POLICY, (path, policy)
        # Styles: our own files, and inline only what is named by its hash (plotly's maplibre).
        own, *hashed = policy["style-src"].split()
        assert own == "'self'" and all(h.startswith("'sha256-") for h in hashed), (path, policy)
        if status != 200:
            self.page.wait_for_load_state("load")
            self.forget_status(status)
        self.settle(path, charts)

    def forget_status(self, status: int) -> None:
        """An error page is expected here: the console's report of its status is no problem."""
        note = f"the server responded with a status of {status}"
        self.problems.errors[:] = [e for e in self.problems.errors if note not in e]

    def settle(self, path: str, charts: str | None) -> None:
        self.page.wait_for_load_state("load")
        if charts is not None:
            count = self.page.wait_for_function(CHARTS_DRAWN, arg=charts).json_value()
            assert count >= 1, path
        # A round trip through the page: violations raised while loading have been delivered.
        self.page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 0))")
        axe_checked(self.page)  # axe's verdict on this page, before the next one replaces it
        assert not self.violations, f"{path}: {self.violations}"
        assert not self.problems.summary(), f"{path}: {self.problems.summary()}"


def _data(sandbox_url: str, sandbox_key: str, connection: ProviderConnection) -> dict[str, Any]:
    sdk = make_client(sandbox_url, key=sandbox_key)
    first: Trained = train(sdk, connection)
    second: Trained = train(sdk, connection, epochs=2)
    keys = [choice.key for choice in run_choices(first.job)][-2:]
    evaluation = run_to_end(
        evaluation_create(
            request=EvaluationRequest(
                name="csp", dataset=first.dataset, model_keys=keys, graders=[EXACT]
            ),
            user=None,
            enqueue=False,
        )
    )
    assert evaluation.status == "succeeded"
    owner = get_user_model().objects.get(username="staff-e2e")
    tokens = {
        "run": share_link_create(user=owner, job_ids=[first.job.pk])[1],
        "comparison": share_link_create(user=owner, job_ids=[first.job.pk, second.job.pk])[1],
        "evaluation": share_link_create(
            user=owner, evaluation_id=evaluation.pk, include_outputs=True
        )[1],
    }
    return {"first": first, "second": second, "evaluation": evaluation, "tokens": tokens}


@pytest.mark.django_db(transaction=True)
def test_every_page_loads_without_a_csp_violation_and_charts_still_render(
    page_as: Callable[[str], Page],
    browser_problems: PageProblems,
    sandbox_url: str,
    sandbox_key: str,
    sandbox_connection: ProviderConnection,
) -> None:
    staff = Watcher(page_as("staff"), browser_problems)
    data = _data(sandbox_url, sandbox_key, sandbox_connection)
    job, other, dataset = data["first"].job, data["second"].job, data["first"].dataset
    evaluation, connection = data["evaluation"], sandbox_connection

    # The detector itself: an inline style attribute is refused and reported.
    staff.visit("/system/")
    staff.page.evaluate("document.body.setAttribute('style', 'outline: 1px solid red')")
    expect(staff.page.locator("body")).to_have_attribute("style", "outline: 1px solid red")
    staff.page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 50))")
    assert [v["directive"] for v in staff.violations] == ["style-src-attr"]
    staff.violations.clear()
    browser_problems.errors[:] = [e for e in browser_problems.errors if "inline style" not in e]

    chart = '[data-tb-chart="loss"], [data-tb-chart="accuracy"]'
    pages: list[tuple[str, str | None]] = [
        ("/", None),
        (f"/jobs/{job.pk}/", chart),
        (f"/compare/?runs={job.pk},{other.pk}", chart),
        ("/datasets/", None),
        (f"/datasets/{dataset.pk}/", ".ds-plot"),
        (f"/datasets/{dataset.pk}/examples/", None),
        (f"/datasets/{dataset.pk}/derive/", None),
        ("/datasets/upload/", None),
        ("/jobs/new/", None),
        (f"/jobs/new/?clone={job.pk}", None),
        (f"/jobs/{job.pk}/edit/", None),
        ("/evaluations/", None),
        (f"/evaluations/{evaluation.pk}/", "#evaluation-chart"),
        (f"/evaluations/new/?job={job.pk}", None),
        ("/evaluations/playground/", None),
        ("/jobs/connections/", None),
        ("/jobs/connections/new/", None),
        (f"/jobs/connections/{connection.pk}/", None),
        (f"/jobs/connections/{connection.pk}/history/", None),
        ("/jobs/bundles/import/", None),
        ("/jobs/notifications/", None),
        ("/jobs/audit/", None),
        ("/share-links/", None),
        ("/system/", None),
        ("/accounts/password/", None),
    ]
    for path, charts in pages:
        staff.visit(path, charts=charts)

    # plotly's PNG download draws the chart through an image URL (img-src blob:).
    staff.visit(f"/jobs/{job.pk}/", charts=chart)
    loss = staff.page.locator('[data-tb-chart="loss"]')
    loss.hover()
    with staff.page.expect_download() as download:
        loss.locator('.modebar-btn[data-title="Download plot as a PNG"]').click()
    assert download.value.suggested_filename.endswith(".png")
    staff.settle("PNG download", None)
    staff.visit("/no/such/page/", status=404)

    # The admin: its index, every model's list, and forms with the admin's own widgets.
    admin_pages = ["/admin/"] + [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    ]
    admin_pages += [
        reverse("admin:auth_user_add"),
        reverse(
            "admin:auth_user_change", args=[get_user_model().objects.get(username="staff-e2e").pk]
        ),
        reverse("admin:jobs_job_change", args=[job.pk]),
        reverse("admin:datasets_dataset_change", args=[dataset.pk]),
        reverse("admin:auth_group_add"),
        reverse("admin:jobs_providerconnection_change", args=[connection.pk]),
    ]
    for path in admin_pages:
        staff.visit(path)

    # Someone without an account: the login page and the three kinds of share page.
    outsider = Watcher(page_as("anonymous"), browser_problems)
    outsider.visit("/accounts/login/")
    outsider.visit(f"/share/{data['tokens']['run']}/", charts=chart)
    outsider.visit(f"/share/{data['tokens']['comparison']}/", charts=chart)
    outsider.visit(f"/share/{data['tokens']['evaluation']}/", charts="#evaluation-chart")

    # Last, since it locks this address out: the lockout message is a page like the others.
    outsider.visit("/accounts/login/")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        outsider.page.get_by_label("Username").fill("staff-e2e")
        outsider.page.get_by_label("Password").fill(PASSWORD + "-wrong")
        outsider.page.get_by_role("button", name="Log in").click()
        outsider.page.wait_for_load_state("load")
    expect(outsider.page.get_by_role("alert")).to_contain_text("Too many failed logins")
    outsider.forget_status(429)
    outsider.settle("/accounts/login/ (locked out)", None)


def test_plotly_needs_no_inline_style_beyond_what_the_policy_names(browser: Browser) -> None:
    page = browser.new_page()
    try:
        version, rules = bundle_rules(page)
        shipped = file_rules(page, STATIC_CSS.read_text())
        hashes = sorted(csp_hash(text) for text in other_inline_styles(page))
    finally:
        page.close()
    allowed = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["style-src"]
    assert sorted(h for h in allowed if h.startswith("'sha256-")) == hashes, (
        f"plotly.js {version} adds <style> elements with these hashes: {hashes}; "
        "set them in CONTENT_SECURITY_POLICY style-src"
    )
    assert shipped == rules, (
        f"static/css/plotly.css is not plotly.js {version}'s stylesheet; regenerate it with "
        "`.venv/bin/python -m tests.e2e.plotly_css > static/css/plotly.css`"
    )
    assert STATIC_CSS.read_text() == stylesheet(version, rules)

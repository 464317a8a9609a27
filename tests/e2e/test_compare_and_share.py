"""Finished runs in the browser: two runs compared from the runs list (curves, the
hyperparameter differences, smoothing and the x axis, read back from the plotly graphs), and a
run shared by link with someone who has no account, until the link is revoked."""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from datasets.models import Dataset
from jobs.models import Job, ProviderConnection
from jobs.services import LaunchRequest, job_launch
from tests.e2e.conftest import PageProblems
from tests.e2e.pages import E2E, poll
from tests.sandbox.data import chat_examples

pytestmark = [*E2E, pytest.mark.django_db(transaction=True), pytest.mark.worker]

MINI = "gpt-4o-mini-2024-07-18"
EXAMPLES = 20  # × batch size 1: 20 steps an epoch

# The traces plotly drew as SVG on a chart: which run and series each is, and its line's path.
DRAWN = """(kind) => {
  const gd = document.querySelector(`[data-tb-chart="${kind}"]`);
  if (!gd || !gd.classList.contains("js-plotly-plot")) { return null; }
  return Array.from(gd.querySelectorAll("g.scatterlayer g.trace")).map((g) => {
    const trace = (g.__data__ && g.__data__[0] && g.__data__[0].trace) || {};
    const line = g.querySelector("path.js-line");
    return {...(trace.meta || {}), d: line ? line.getAttribute("d") || "" : ""};
  });
}"""
# What a chart plots, from its graph div: the x axis title and the training-loss lines.
PLOTTED = """() => {
  const gd = document.querySelector('[data-tb-chart="loss"]');
  return {
    title: gd._fullLayout.xaxis.title.text,
    lines: gd.data
      .filter((t) => t.meta && t.meta.series === "train_loss" && t.meta.role !== "points")
      .map((t) => ({run: t.meta.run, role: t.meta.role, x: Array.from(t.x), y: Array.from(t.y)})),
  };
}"""


def settled(*jobs: Job, timeout: float = 60) -> list[Job]:
    """Wait until every job has finished and had its last sync; the jobs, fresh."""
    ids = [job.pk for job in jobs]

    def done() -> bool:
        return Job.objects.filter(
            pk__in=ids, status__in=Job.TERMINAL, next_poll_at__isnull=True
        ).count() == len(ids)

    poll(done, timeout=timeout, message=lambda: str(
        list(Job.objects.filter(pk__in=ids).values("name", "status", "launch_error"))))  # fmt: skip
    fresh = {job.pk: job for job in Job.objects.filter(pk__in=ids)}
    assert all(fresh[pk].status == Job.Status.SUCCEEDED for pk in ids), fresh
    return [fresh[pk] for pk in ids]


def launch_in_background(connection: ProviderConnection, dataset: Dataset, **fields: Any) -> Job:
    """A launch through the service the launch form posts to, by the member signed in."""
    member = get_user_model().objects.get(username="member-e2e")
    request = LaunchRequest(connection=connection, base_model=MINI, training_dataset=dataset,
                            **fields)  # fmt: skip
    return job_launch(request=request, user=member)


def drawn_lines(page: Page, kind: str) -> dict[str, list[str]]:
    """Per run: the SVG paths of its training line(s) on the ``kind`` chart, once drawn."""
    handle = page.wait_for_function(
        f"""() => {{
          const traces = ({DRAWN})("{kind}");
          return traces && traces.some((t) => t.series === "train_{kind}" && t.d) && traces;
        }}"""
    )
    lines: dict[str, list[str]] = {}
    for trace in handle.json_value():
        if trace.get("series") == f"train_{kind}" and trace.get("role") in ("raw", "smoothed"):
            lines.setdefault(trace["run"], []).append(trace["d"])
    return lines


def is_drawn(path: str) -> bool:
    """A line through more than one point: a move and at least two more coordinates."""
    return path.startswith("M") and len(re.findall(r"[-\d.]+,[-\d.]+", path)) >= 3


def jitter(ys: list[float]) -> float:
    """The mean move from one point to the next."""
    return sum(abs(b - a) for a, b in pairwise(ys)) / len(ys)


def plotted(page: Page) -> dict[str, Any]:
    data = page.evaluate(PLOTTED)
    return {
        "title": data["title"],
        "lines": {(line["run"], line["role"]): line for line in data["lines"]},
    }


def test_member_compares_two_finished_runs(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    make_dataset: Callable[..., Dataset],
    sandbox_connection: ProviderConnection,
    celery_worker: str,
    celery_beat: object,
) -> None:
    dataset = make_dataset(chat_examples(EXAMPLES, seed=31), name="Support 20")
    page = page_as("member")
    # One run launched from the form, the other through the same service meanwhile.
    page.goto("/jobs/new/")
    page.get_by_label("Provider connection").select_option(label="Sandbox")
    page.get_by_label("Base model").select_option(MINI)
    page.get_by_label("Training dataset").select_option(str(dataset.pk))
    page.get_by_label("Epochs").fill("2")
    page.get_by_label("Name", exact=True).fill("Two epochs")
    page.get_by_role("button", name="Launch", exact=True).click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    short = Job.objects.get(name="Two epochs")
    long = launch_in_background(
        sandbox_connection, dataset, hyperparameters={"n_epochs": 3}, name="Three epochs"
    )
    short, long = settled(short, long)
    assert (short.hyperparameters["n_epochs"], long.hyperparameters["n_epochs"]) == (2, 3)
    assert short.hyperparameters["batch_size"] == long.hyperparameters["batch_size"] == 1
    assert (short.total_steps, long.total_steps) == (2 * EXAMPLES, 3 * EXAMPLES)
    runs = {str(short.pk): short, str(long.pk): long}

    # Select both on the runs list and compare them.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    for job in (short, long):
        page.get_by_label(f"Compare {job.name}", exact=True).check()
    expect(page.locator("#tb-compare-count")).to_have_text("2 selected.")
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(re.compile(r"/compare/\?runs="))
    expect(page.get_by_role("heading", name="Compare runs", level=1)).to_be_visible()
    for job in (short, long):
        expect(page.locator(".tb-run-list")).to_contain_text(job.name)

    # Both runs' curves are drawn, as SVG lines, on both charts.
    for kind in ("loss", "accuracy"):
        lines = drawn_lines(page, kind)
        assert set(lines) == set(runs), (kind, lines.keys())
        for run, paths in lines.items():
            assert paths and all(is_drawn(d) for d in paths), (kind, runs[run].name, paths)

    # Hyperparameters: differences only at first; "show all" adds the equal rows back.
    table = page.locator("[data-tb-hp-table]")
    epochs = table.locator("tbody tr").filter(
        has=page.get_by_role("rowheader", name="Epochs", exact=True)
    )
    batch = table.locator("tbody tr").filter(
        has=page.get_by_role("rowheader", name="Batch size", exact=True)
    )
    # One column per run, in the order the runs were selected.
    order = [name.strip() for name in table.locator("thead th").all_inner_texts()[1:]]
    assert sorted(order) == ["Three epochs", "Two epochs"], order
    by_name = {job.name: job for job in (short, long)}
    expect(epochs.locator("td")).to_have_text(
        [str(by_name[name].hyperparameters["n_epochs"]) for name in order]
    )
    expect(batch).to_be_hidden()
    same_rows = table.locator('tbody tr[data-same="true"]')
    differing = table.locator('tbody tr[data-same="false"]')
    assert same_rows.count() >= 2 and differing.count() >= 1  # batch size and LR multiplier
    page.get_by_role("link", name="Show all hyperparameters").click()
    expect(batch).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]hp=all"))  # the address keeps the choice
    expect(batch.locator("td")).to_have_text(["1", "1"])
    for i in range(same_rows.count()):
        expect(same_rows.nth(i)).to_be_visible()
    page.get_by_role("link", name="Differences only").click()
    for i in range(same_rows.count()):
        expect(same_rows.nth(i)).to_be_hidden()
    for i in range(differing.count()):
        expect(differing.nth(i)).to_be_visible()
    expect(epochs).to_be_visible()
    expect(page.get_by_role("link", name="Show all hyperparameters")).to_be_visible()
    assert "hp=all" not in page.url

    # Smoothing re-smooths the plotted training lines (the raw lines stay as they are).
    before = plotted(page)
    assert set(before["lines"]) == {(run, role) for run in runs for role in ("raw", "smoothed")}
    page.get_by_label("Smoothing").fill("0.9")
    expect(page.locator("#tb-cmp-smoothing-value")).to_have_text("0.90")
    after = plotted(page)
    for run, job in runs.items():
        old, new = before["lines"][(run, "smoothed")], after["lines"][(run, "smoothed")]
        assert len(new["y"]) == len(old["y"]) == job.total_steps, job.name
        assert new["y"] != old["y"], job.name
        assert old["y"] == before["lines"][(run, "raw")]["y"], "unsmoothed at 0"
        assert after["lines"][(run, "raw")]["y"] == before["lines"][(run, "raw")]["y"]
        # A strong EMA flattens the noisy curve: it moves less from one step to the next.
        assert jitter(new["y"]) < jitter(old["y"]) / 2, job.name

    # The x axis: steps, then epochs (fetched anew; the smoothing is kept).
    axis = page.get_by_label("X axis")
    assert axis.locator("option").all_inner_texts()[:2] == ["Steps", "Epochs"]
    assert re.search("step", before["title"], re.I), before["title"]
    assert all(line["x"][-1] == runs[run].total_steps for (run, _), line in before["lines"].items())
    axis.select_option(label="Epochs")
    page.wait_for_function(
        "() => /epoch/i.test(document.querySelector('[data-tb-chart=\"loss\"]')"
        "._fullLayout.xaxis.title.text)"
    )
    by_epoch = plotted(page)
    for (run, role), line in by_epoch["lines"].items():
        job = runs[run]
        steps = before["lines"][(run, role)]["x"]
        assert line["x"][-1] == pytest.approx(job.hyperparameters["n_epochs"]), (job.name, role)
        assert line["x"] == pytest.approx([s / EXAMPLES for s in steps]), (job.name, role)
    assert (
        by_epoch["lines"][(str(long.pk), "smoothed")]["y"]
        == after["lines"][(str(long.pk), "smoothed")]["y"]
    )
    expect(page.locator("#tb-cmp-loss-desc")).to_contain_text("epoch")
    for kind in ("loss", "accuracy"):
        assert set(drawn_lines(page, kind)) == set(runs)
    check_page(page, "compare")


def test_member_shares_a_run_and_revokes_the_link(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    browser_problems: PageProblems,
    make_dataset: Callable[..., Dataset],
    sandbox_connection: ProviderConnection,
    celery_worker: str,
    celery_beat: object,
) -> None:
    dataset = make_dataset(chat_examples(EXAMPLES, seed=41), name="Private support data")
    member = page_as("member")
    (job,) = settled(
        launch_in_background(
            sandbox_connection, dataset, hyperparameters={"n_epochs": 2}, name="Shared run"
        )
    )

    # Create the link on the run's page; the share links page shows its URL once.
    member.goto(f"/jobs/{job.pk}/")
    share_form = member.locator("form.tb-share-form")
    expect(share_form.get_by_label("Title")).to_have_value("Shared run")
    share_form.get_by_label("Title").fill("Results for the team")
    share_form.get_by_role("button", name="Create share link").click()
    member.wait_for_url(re.compile(r"/share-links/$"))
    share_url = member.get_by_role("textbox", name="Share link", exact=True).input_value()
    assert re.fullmatch(r"http://[^/]+/share/[^/]+/", share_url), share_url
    row = member.get_by_role("row").filter(has_text="Results for the team")
    expect(row).to_contain_text("active")
    check_page(member, "share-link-created")
    member.reload()  # shown once: gone on the next visit
    expect(member.get_by_role("textbox", name="Share link", exact=True)).to_have_count(0)

    # Someone without an account opens it: the charts render, nothing private shows.
    outsider = page_as("anonymous")
    response = outsider.goto(share_url)
    assert response is not None and response.status == 200
    expect(outsider.get_by_role("heading", name="Results for the team", level=1)).to_be_visible()
    for kind in ("loss", "accuracy"):
        lines = drawn_lines(outsider, kind)
        assert list(lines) and all(is_drawn(d) for paths in lines.values() for d in paths), kind
    expect(outsider.locator(".tb-diagnosis")).to_be_visible()
    content = outsider.content()
    for private in (job.provider_job_id, dataset.name, "member-e2e", job.fine_tuned_model):
        assert private not in content, private
    expect(outsider.get_by_role("navigation", name="Main")).to_have_count(0)
    check_page(outsider, "share")

    # Everything else still asks it to sign in, the shared run's own page included.
    for path in ("/", "/datasets/", f"/jobs/{job.pk}/", "/share-links/"):
        outsider.goto(path)
        expect(outsider).to_have_url(re.compile(r"/accounts/login/\?next="))
        expect(outsider.get_by_role("button", name="Log in")).to_be_visible()
        expect(outsider.get_by_role("heading", name="Log in")).to_be_visible()

    # The member revokes the link; the outsider's next visit finds nothing.
    member.reload()
    expect(row.locator("td.num")).to_have_text("1")  # the outsider's one view
    row.get_by_role("button", name=re.compile("^Revoke")).click()
    member.wait_for_url(re.compile(r"/share-links/\d+/revoke/"))
    expect(member.locator(".confirm-consequences")).to_contain_text("gets “not found” from then on")
    member.get_by_role("button", name="Revoke the link").click()
    member.wait_for_url(re.compile(r"/share-links/$"))
    expect(member.locator(".messages")).to_contain_text("Revoked the share link")
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button", name=re.compile("^Revoke"))).to_have_count(0)
    response = outsider.goto(share_url)
    assert response is not None and response.status == 404
    expect(outsider.get_by_role("heading", name="Link not available")).to_be_visible()
    # Chromium logs the refused document itself as a console error: expected here only.
    expected = f"status of 404 (Not Found) [{share_url}]"
    logged = [e for e in browser_problems.errors if e.endswith(expected)]
    assert len(logged) == 1, browser_problems.errors
    browser_problems.errors.remove(logged[0])
    check_page(outsider, "share-revoked")

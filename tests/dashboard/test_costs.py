"""Item 7 of issue 14: what a run cost, the same on every page. A finished, failed or
cancelled job costs its trained tokens × the catalog price, and nothing when it trained none
(never its planned cost); a job under way shows a planned cost, labelled as planned, and its
training loss as the latest, not the final one."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from dashboard.selectors_runs import prices
from jobs.costs import job_cost
from jobs.models import Job
from tests.dashboard.test_share import create_link
from tests.permissions import SHARE, client_for

pytestmark = pytest.mark.django_db

PRICE = Decimal(3)  # gpt-4o-mini-2024-07-18: $3 per 1M training tokens (seeded catalog)


def cost_cell(html: str, job: Job) -> str:
    row = re.search(rf'<tr[^>]*data-run="{job.pk}".*?</tr>', html, re.S)
    assert row, "the run is listed"
    cell = re.search(r'data-field="cost"[^>]*>([^<]*)</td>', row.group(0))
    assert cell
    return cell.group(1).strip()


@pytest.mark.parametrize(
    ("status", "tokens", "expected"),
    [
        ("succeeded", 2_000_000, Decimal(6)),
        ("cancelled", 560_000, Decimal("1.68")),  # cancelled at 28 %: what it trained
        ("cancelled", None, Decimal(0)),
        ("failed", None, Decimal(0)),  # failed file validation: nothing trained
        ("launch_failed", None, Decimal(0)),
        ("failed", 0, Decimal(0)),
        ("running", None, None),  # not known yet; the job page shows the plan
        ("queued", None, None),
        ("running", 100_000, Decimal("0.3")),  # so far
        ("lost", None, None),  # the provider no longer says: unknown, not nothing
    ],
)
def test_the_cost_rule(status: str, tokens: int | None, expected: Decimal | None) -> None:
    assert job_cost(status=status, trained_tokens=tokens, price_per_1m=PRICE) == expected


def test_nothing_trained_costs_nothing_even_without_a_price() -> None:
    assert job_cost(status="cancelled", trained_tokens=None, price_per_1m=None) == 0
    assert job_cost(status="succeeded", trained_tokens=10, price_per_1m=None) is None


def test_a_job_cancelled_before_training_costs_nothing_everywhere(make_job) -> None:  # type: ignore[no-untyped-def]
    cancelled = make_job(steps=12, status="cancelled", trained_tokens=None, name="stopped early")
    failed = make_job(status="failed", trained_tokens=None, name="bad file", fine_tuned_model="")
    finished = make_job(steps=12, status="succeeded", trained_tokens=2_000_000, name="done")
    table = prices()
    assert table.cost(cancelled) == 0 and table.cost(failed) == 0 and table.cost(finished) == 6
    viewer = client_for("viewer")

    # Runs list (sorted by cost in SQL: the $0 jobs sort as numbers, before the $6 one).
    html = viewer.get("/?sort=cost&dir=asc").content.decode()
    assert cost_cell(html, cancelled) == "$0.00" and cost_cell(html, failed) == "$0.00"
    assert cost_cell(html, finished) == "$6.00"
    order = [m for m in re.findall(r'data-run="([0-9a-f-]{36})"', html)]
    assert order.index(str(finished.pk)) > max(order.index(str(cancelled.pk)),
                                               order.index(str(failed.pk)))  # fmt: skip

    # Job page: the trained-token cost, no planned cost.
    page = viewer.get(f"/jobs/{cancelled.pk}/").content.decode()
    assert re.search(r"<dt>Training cost</dt><dd[^>]*><span[^>]*>\$0\.00</span>", page)
    assert "no tokens trained" in page and "Planned cost" not in page and "≈" not in page
    assert "Final training loss" in page and "Latest training loss" not in page
    page = viewer.get(f"/jobs/{finished.pk}/").content.decode()
    assert re.search(r"<dt>Training cost</dt><dd[^>]*><span[^>]*>\$6\.00</span>", page)

    # Compare page and a shared comparison.
    compare = viewer.get(f"/compare/?runs={cancelled.pk},{finished.pk}").content.decode()
    costs = re.findall(r'data-key="cost" data-value="([^"]*)">([^<]*)<', compare)
    assert [text for _, text in costs] == ["$0.00", "$6.00"]
    token = create_link(client_for("member"), job=str(cancelled.pk), label="", expires_in_days="7")
    shared = client_for(SHARE).get(f"/share/{token}/").content.decode()
    assert "<dt>Training cost</dt><dd>$0.00</dd>" in shared


def test_a_running_job_shows_a_planned_cost_and_its_latest_loss(make_job) -> None:  # type: ignore[no-untyped-def]
    running = make_job(
        steps=12, status="running", trained_tokens=None, finished_at=None, fine_tuned_model=""
    )
    viewer = client_for("viewer")
    page = viewer.get(f"/jobs/{running.pk}/").content.decode()
    assert "<dt>Planned cost</dt>" in page
    assert re.search(r"<dt>Training cost", page) is None  # nothing billed or counted yet
    assert "Latest training loss" in page and "Final training loss" not in page
    html = viewer.get("/").content.decode()
    assert cost_cell(html, running) == "—"
    assert 'title="Not known until the job ends' in html
    token = create_link(client_for("member"), job=str(running.pk), label="", expires_in_days="7")
    shared = client_for(SHARE).get(f"/share/{token}/").content.decode()
    assert "<dt>Training cost so far</dt>" in shared and "<dt>Latest training loss</dt>" in shared

"""Checkpoints and evaluation scores in the browser (issue 14, item 6): the checkpoints table's
copy button copies the full model id; a checkpoint deleted at the provider after its run
finished is left out of "Evaluate checkpoints" and marked on the run page; an evaluation page
highlights "best" only for a lead larger than the intervals, shows a tie otherwise, and says
when cells failed."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from evals.choices import base_choice, final_choice
from evals.models import Evaluation
from evals.running import evaluation_step
from evals.services import EvaluationRequest, evaluation_create
from jobs.models import Checkpoint, ProviderConnection
from tests.e2e.pages import E2E
from tests.evals.conftest import Trained, train
from tests.sandbox.conftest import make_client

pytestmark = [*E2E, pytest.mark.django_db(transaction=True)]

EXACT = {"kind": "exact_match", "options": {}}


@pytest.fixture
def trained(sandbox_url: str, sandbox_key: str, sandbox_connection: ProviderConnection) -> Trained:
    """A finished sandbox run with three checkpoints (steps 12, 24, 36) and its dataset."""
    return train(make_client(sandbox_url, key=sandbox_key), sandbox_connection)


def test_copy_a_checkpoint_id_and_a_deleted_checkpoint_is_not_offered(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    live_server: object,
    trained: Trained,
    sandbox_url: str,
    sandbox_key: str,
) -> None:
    first, second, last = Checkpoint.objects.filter(job=trained.job).order_by("step")
    page = page_as("member")
    page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"],
        origin=str(live_server.url),  # type: ignore[attr-defined]
    )
    page.goto(f"/jobs/{trained.job.pk}/")
    table = page.locator("table.jb-checkpoints")
    expect(table.locator("tbody tr")).to_have_count(3)
    row = table.locator("tbody tr").filter(has=page.locator(f'[data-copy="ckpt-{second.pk}"]'))
    # The compact id is shown, the full one is in its title and copied by the button.
    expect(row.locator("code")).to_have_text(second.short_name)
    assert second.short_name != second.model_name
    expect(row.locator("code")).to_have_attribute("title", second.model_name)
    button = row.get_by_role("button", name=re.compile(r"^Copy"))
    # The confirmation lasts 1.5 s: record every text the label takes instead of racing it.
    button.evaluate(
        """(b) => {
          window.__labels = [];
          new MutationObserver(() => window.__labels.push(b.firstChild.textContent))
            .observe(b, {subtree: true, characterData: true, childList: true});
        }"""
    )
    button.click()
    page.wait_for_function("() => window.__labels.includes('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == second.model_name
    expect(table).not_to_contain_text("Deleted by the provider")
    check_page(page, "checkpoints-table")

    # Deleted at the provider after the run finished: nothing here has seen it yet.
    assert make_client(sandbox_url, key=sandbox_key).models.delete(first.model_name).deleted
    page.get_by_role("link", name="Evaluate checkpoints").click()
    page.wait_for_url(re.compile(r"/evaluations/new/\?job="))
    models = page.get_by_label("Models")
    offered = models.locator("option").evaluate_all("(os) => os.map((o) => o.value)")
    selected = models.evaluate("(el) => Array.from(el.selectedOptions).map((o) => o.value)")
    assert f"ckpt:{first.pk}" not in offered
    assert [k for k in selected if k.startswith("ckpt:")] == [
        f"ckpt:{second.pk}",
        f"ckpt:{last.pk}",
    ]
    check_page(page, "evaluate-checkpoints-without-the-deleted-one")

    page.goto(f"/jobs/{trained.job.pk}/")
    deleted = table.locator("tbody tr").filter(has_text="Deleted by the provider")
    expect(deleted).to_have_count(1)
    expect(deleted.locator("code")).to_have_attribute("title", first.model_name)
    check_page(page, "checkpoints-table-with-a-deleted-one")


def run(trained: Trained, keys: list[str], name: str) -> Evaluation:
    evaluation = evaluation_create(
        request=EvaluationRequest(
            name=name, dataset=trained.dataset, model_keys=keys, graders=[EXACT]
        ),
        user=None,
        enqueue=False,
    )
    for _ in range(20):
        if evaluation_step(evaluation_id=evaluation.pk, budget=None).state == "done":
            break
    evaluation.refresh_from_db()
    return evaluation


def test_best_only_beyond_the_intervals_a_tie_otherwise_and_failed_cells_said(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    trained: Trained,
    sandbox_url: str,
    sandbox_key: str,
) -> None:
    job = trained.job
    first, second, last = Checkpoint.objects.filter(job=job).order_by("step")
    base = base_choice(job.connection, job.model or job.base_model).key
    final = final_choice(job).key
    # The base model never gives a trained reply (0/12), the final model always (12/12): the
    # intervals are far apart. The first checkpoint is deleted before anything calls it.
    assert make_client(sandbox_url, key=sandbox_key).models.delete(first.model_name).deleted
    clear = run(trained, [base, f"ckpt:{first.pk}", final], "clear lead")
    assert (clear.status, clear.cells_failed) == ("partial", 12)
    # The two later checkpoints and the final model all score 12/12: a tie of three.
    tied = run(trained, [base, f"ckpt:{second.pk}", f"ckpt:{last.pk}", final], "three tied")
    assert (tied.status, tied.cells_failed) == ("succeeded", 0)

    page = page_as("viewer")
    page.goto(f"/evaluations/{clear.pk}/")
    expect(page.locator("#evaluation-status")).to_have_text("Finished with failed cells")
    expect(page.locator("#evaluation-failed-note")).to_have_text(
        "12 of 36 cells failed (no answer): scores and win rates cover answered cells only."
    )
    cells = page.locator('#evaluation-summary td[data-metric="exact_match"]')
    expect(cells).to_have_count(3)
    best = page.locator('#evaluation-summary td.tb-best[data-metric="exact_match"]')
    expect(best).to_have_count(1)
    expect(best).to_contain_text("best")
    assert best.evaluate("(td) => td.closest('tr').dataset.position") == "2"
    expect(cells.filter(has_text="tie")).to_have_count(0)
    failed_row = page.locator('#evaluation-summary tbody tr[data-position="1"]')
    expect(failed_row.locator("td").nth(3)).to_have_text("12")  # the Failed column
    grid_failures = page.locator("#evaluation-grid td[data-status='failed']")
    expect(grid_failures).to_have_count(12)
    expect(grid_failures.first).to_contain_text("no longer serves this checkpoint model")
    check_page(page, "evaluation-best-and-failed-cells")

    page.goto(f"/evaluations/{tied.pk}/")
    expect(page.locator("#evaluation-status")).to_have_text("Succeeded")
    expect(page.locator("#evaluation-failed-note")).to_have_count(0)
    expect(page.locator('#evaluation-summary td.tb-best[data-metric="exact_match"]')).to_have_count(
        0
    )
    ties = page.locator('#evaluation-summary td[data-metric="exact_match"]').filter(
        has=page.get_by_title("The 95% intervals overlap the top score: no clear best")
    )
    expect(ties).to_have_count(3)
    assert ties.evaluate_all("(tds) => tds.map((td) => td.dataset.mean)") == ["1.0", "1.0", "1.0"]
    expect(page.locator("#evaluation-win-basis")).to_have_text(
        "Win rate vs baseline compares the grader “Exact match” row by row: a higher score "
        "wins, an equal score is a tie"
    )
    check_page(page, "evaluation-tie")

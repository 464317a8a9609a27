"""An evaluation started from a run page ("Evaluate checkpoints") and followed live until its
grid and summary render, then the playground comparing the base and the fine-tuned model."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from evals.models import Evaluation
from jobs.models import ProviderConnection
from tests.e2e.pages import E2E, XSS
from tests.evals.conftest import train
from tests.sandbox.conftest import make_client
from tests.support.tokenizer import damaged_bpe

pytestmark = [*E2E, pytest.mark.django_db(transaction=True), pytest.mark.worker]

CHART_STATE = """() => {
  const chart = document.getElementById("evaluation-chart");
  return {
    bars: chart ? chart.querySelectorAll(".point path").length : 0,
    marker: window.__e2eMarker === 1,
    status: document.getElementById("evaluation-status").textContent.trim(),
    rows: document.querySelectorAll("#evaluation-grid tbody tr").length,
  };
}"""


def test_evaluate_checkpoints_from_a_run_and_compare_in_the_playground(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    sandbox_url: str,
    sandbox_key: str,
    sandbox_connection: ProviderConnection,
    celery_worker: str,
) -> None:
    trained = train(make_client(sandbox_url, key=sandbox_key), sandbox_connection)
    page = page_as("member")
    page.goto(f"/jobs/{trained.job.pk}/")
    page.get_by_role("link", name="Evaluate checkpoints").click()
    page.wait_for_url(re.compile(r"/evaluations/new/\?job="))
    selected = page.get_by_label("Models").evaluate(
        "(el) => Array.from(el.selectedOptions).map((o) => o.textContent)"
    )
    assert len(selected) == 5 and sum(label.endswith("· final") for label in selected) == 1
    first_checkpoint = next(label for label in selected if label.endswith("· step 12"))
    check_page(page, "evaluation-form")
    # User text everywhere it is shown must stay text (the dialog listener fails the test).
    page.get_by_role("textbox", name="Name", exact=True).fill(f"checkpoints {XSS}")
    page.get_by_role("button", name="Estimate cost").click()
    expect(page.locator("#estimate-total")).to_contain_text("$")
    check_page(page, "evaluation-estimate")

    page.get_by_role("button", name="Start evaluation").click()
    page.wait_for_url(re.compile(r"/evaluations/\d+/$"))
    page.evaluate("window.__e2eMarker = 1")
    # The page follows the run and swaps in the results without reloading.
    expect(page.locator("#evaluation-status")).to_have_text("Succeeded", timeout=60_000)
    page.wait_for_function(
        "() => document.querySelectorAll('#evaluation-chart .point path').length > 0"
    )
    # The header follows too: a finished evaluation has nothing to cancel.
    expect(page.locator("#evaluation-actions").get_by_role("button", name="Cancel")).to_have_count(
        0
    )
    state = page.evaluate(CHART_STATE)
    assert state["marker"], "the evaluation page reloaded itself"
    assert state["rows"] == 12 and state["bars"] >= 5
    evaluation = Evaluation.objects.get()
    assert evaluation.status == "succeeded" and evaluation.cells_done == 60
    summary = page.locator("#evaluation-summary tbody tr")
    expect(summary).to_have_count(5)
    means = page.locator('#evaluation-summary td[data-metric="exact_match"]').evaluate_all(
        "(cells) => cells.map((c) => Number(c.dataset.mean))"
    )
    assert means[0] == 0.0 and means[-1] == 1.0
    check_page(page, "evaluation-results")

    page.get_by_label("Show").select_option("fails")
    page.get_by_label("Failing model").select_option(label=first_checkpoint)
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#evaluation-grid tbody tr")).to_have_count(3)
    check_page(page, "evaluation-filtered")

    # The run page now shows the scores of its models.
    page.goto(f"/jobs/{trained.job.pk}/")
    expect(page.locator("#run-evaluations")).to_contain_text(evaluation.name)
    assert evaluation.name == f"checkpoints {XSS}"
    page.goto("/evaluations/")
    expect(page.get_by_role("link", name=evaluation.name)).to_be_visible()
    check_page(page, "evaluations-list")

    # The playground: the trained prompt of the first example, base vs final, side by side.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Playground").click()
    check_page(page, "playground")
    page.get_by_role("checkbox", name="gpt-4o-mini-2024-07-18", exact=True).first.check()
    page.get_by_role("checkbox", name=re.compile(r"· final$")).first.check()
    question = trained.examples[0]["messages"][1]["content"]
    page.get_by_role("textbox", name="Conversation").fill(question)
    page.get_by_role("textbox", name="System message").fill(
        trained.examples[0]["messages"][0]["content"]
    )
    page.get_by_role("button", name=re.compile("^Ask")).click()
    trained_reply = trained.examples[0]["messages"][2]["content"]
    expect(page.get_by_text(trained_reply, exact=True).first).to_be_visible()
    check_page(page, "playground-replies")


def test_a_damaged_tokenizer_is_named_on_the_evaluation_form(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    sandbox_url: str,
    sandbox_key: str,
    sandbox_connection: ProviderConnection,
    tmp_path: Path,
) -> None:
    trained = train(make_client(sandbox_url, key=sandbox_key), sandbox_connection)
    page = page_as("member")
    with damaged_bpe(tmp_path / "bpe"):
        page.goto(f"/evaluations/new/?job={trained.job.pk}")
        alert = page.get_by_role("alert").filter(has_text="tokenizer")
        for button in ("Estimate cost", "Start evaluation"):
            page.get_by_role("button", name=button).click()
            page.wait_for_load_state("load")
            expect(alert).to_contain_text(
                "The tokenizer could not be loaded, so the prompts cannot be counted"
            )
            expect(alert).to_contain_text("o200k_base.tiktoken is damaged or replaced")
            expect(page.locator("#estimate-total")).to_have_count(0)
            assert "/evaluations/new/" in page.url
        check_page(page, "tokenizer-damaged")
    assert not Evaluation.objects.exists()

"""Datasets in the browser: uploads through the upload page (its XMLHttpRequest progress bar),
validation by the real worker, the report with its plotly histograms, and what an invalid
upload shows and withholds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from datasets.models import Dataset
from tests.e2e.pages import E2E, upload
from tests.sandbox.data import chat_examples, jsonl

pytestmark = [*E2E, pytest.mark.django_db(transaction=True), pytest.mark.worker]

# Per chart: how many bars plotly drew with a real shape (an empty bin is drawn as "M0,0Z").
DRAWN_BARS = """() => Array.from(document.querySelectorAll(".ds-plot")).map((chart) =>
  chart.classList.contains("js-plotly-plot")
    ? Array.from(chart.querySelectorAll("g.trace.bars g.point path"))
        .filter((path) => /[VH]/.test(path.getAttribute("d") || "")).length
    : -1)"""


def test_member_uploads_a_dataset_and_reads_its_report(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    celery_worker: str,
    tmp_path: Path,
) -> None:
    training = tmp_path / "support-chat.jsonl"
    training.write_bytes(jsonl(chat_examples(60, seed=11)))
    page = page_as("member")
    check_page(page, "runs")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Datasets").click()
    check_page(page, "datasets-empty")
    page.get_by_role("link", name="Upload a dataset").click()
    expect(page.locator("#upload-progress")).to_be_hidden()
    check_page(page, "upload")

    seen = upload(page, training, "Support chat")
    assert seen and seen[-1] == 100 and seen == sorted(seen), seen
    dataset = Dataset.objects.get()
    assert page.url.endswith(f"/datasets/{dataset.pk}/")
    # The page follows validation and reloads itself once with the report.
    expect(page.locator("#dataset-status")).to_have_text("Valid", timeout=30_000)
    expect(page.locator('[data-value="n_examples"]')).to_have_text("60")
    expect(page.locator('[data-value="format"]')).to_have_text("Chat")
    expect(page.locator("#findings-title")).to_contain_text("0 errors")
    expect(page.get_by_role("link", name="Launch a job")).to_be_visible()

    charts = page.locator(".ds-plot")
    assert charts.count() >= 3  # tokens, trained tokens and messages per example
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.ds-plot'))"
        ".every((c) => c.classList.contains('js-plotly-plot'))"
    )
    drawn = page.evaluate(DRAWN_BARS)  # plotly drew the bars, not only the empty div
    assert all(n > 0 for n in drawn), drawn
    assert page.locator(".js-plotly-plot path.point, .js-plotly-plot .bars path").count() > 0
    # Each chart's text alternative: its description and a data table of the same counts.
    first = charts.first
    assert "examples" in (first.get_attribute("aria-label") or "")
    page.locator("details.ds-chart-table summary").first.click()
    table = page.locator("details.ds-chart-table table").first
    expect(table).to_be_visible()
    counts = [int(c.replace(",", "")) for c in table.locator("td.num").all_inner_texts()]
    assert sum(counts) == 60
    check_page(page, "dataset-report")

    # The example browser's search finds message text, marks it, and does not find JSON keys.
    page.goto(page.url + "examples/")
    search = page.get_by_role("search").get_by_role("textbox")
    search.fill("bicycles")
    search.press("Enter")
    with_bicycles = [
        i + 1
        for i, e in enumerate(chat_examples(60, seed=11))
        if any("bicycles" in m["content"] for m in e["messages"])
    ]
    assert with_bicycles
    expect(page.locator("#search-summary")).to_contain_text(f"{len(with_bicycles)} match")
    expect(page.locator("article.ds-example")).to_have_count(len(with_bicycles))
    marks = page.locator("article.ds-example mark")
    assert marks.count() >= len(with_bicycles)
    assert set(marks.all_inner_texts()) == {"bicycles"}
    check_page(page, "dataset-search")
    search = page.get_by_role("search").get_by_role("textbox")
    search.fill('"role"')
    search.press("Enter")
    expect(page.locator("#search-summary")).to_contain_text("0 matches")
    expect(page.get_by_text("No matches.")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Datasets").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Support chat"))
    expect(row).to_contain_text("Valid")
    check_page(page, "datasets")


BROKEN = [
    json.dumps(chat_examples(1, seed=1)[0]),
    json.dumps(chat_examples(2, seed=2)[1]),
    '{"messages": [{"role": "user", "content": "cut off here"',  # line 3: not JSON
    *(json.dumps(e) for e in chat_examples(6, seed=3)[3:]),
]


def test_an_invalid_upload_shows_its_findings_and_cannot_be_launched(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    celery_worker: str,
    make_dataset: Callable[..., Dataset],
    sandbox_connection: object,
    tmp_path: Path,
) -> None:
    good = make_dataset(chat_examples(20, seed=5), name="Good one")
    broken_file = tmp_path / "broken.jsonl"
    broken_file.write_text("\n".join(BROKEN) + "\n")
    page = page_as("member")
    page.goto("/datasets/upload/")
    upload(page, broken_file, "Broken one")
    expect(page.locator("#dataset-status")).to_have_text("Invalid", timeout=30_000)
    broken = Dataset.objects.get(name="Broken one")
    assert broken.status == Dataset.Status.INVALID

    findings = page.locator("details.ds-finding")
    not_json = findings.filter(has_text="Not valid JSON")
    expect(not_json).to_have_count(1)
    expect(not_json.locator(".ds-finding-examples li")).to_have_count(1)
    expect(not_json.locator(".ds-finding-examples li .ds-line")).to_have_text("line 3")
    too_few = findings.filter(has_text="Too few examples")
    expect(too_few).to_contain_text("whole file")
    expect(too_few).to_contain_text("the file has 5 examples")
    # Error groups are open: line numbers are readable without a click.
    assert not_json.get_attribute("open") is not None
    # No way to launch it: no button here, no option on the launch form.
    expect(page.get_by_role("link", name="Launch a job")).to_have_count(0)
    expect(page.get_by_role("button", name="Launch a job")).to_have_count(0)
    check_page(page, "invalid-dataset")

    page.goto(f"/jobs/new/?dataset={broken.pk}")
    for select in ("#id_training_dataset", "#id_validation_dataset"):
        values = page.locator(f"{select} option").evaluate_all("os => os.map((o) => o.value)")
        assert str(broken.pk) not in values and str(good.pk) in values, (select, values)
    assert page.locator("#id_training_dataset").input_value() != str(broken.pk)
    expect(page.locator("#launch-form")).not_to_contain_text("Broken one")
    check_page(page, "launch-form")


def test_info_notes_are_counted_apart_from_problems(
    page_as: Callable[[str], Page],
    check_page: Callable[[Page, str], None],
    make_dataset: Callable[..., Dataset],
) -> None:
    examples = chat_examples(60, seed=7)
    examples[0]["messages"][-1]["weight"] = 1.0  # accepted: the JSON number 1, with a note
    examples[1]["messages"][-1]["content"] += " <|endoftext|>"  # spelled, not the token
    dataset = make_dataset(examples, name="Noted one")
    page = page_as("viewer")
    page.goto(f"/datasets/{dataset.pk}/")
    expect(page.locator("#dataset-status")).to_have_text("Valid")
    expect(page.locator("#findings-title")).to_have_text(
        "Findings 0 errors, 0 warnings · 2 info notes"
    )
    expect(
        page.get_by_text("No problems found; the notes below are for information.")
    ).to_be_visible()
    notes = page.locator("details.ds-finding-info")
    expect(notes).to_have_count(2)
    expect(notes.locator(".badge")).to_have_text(["info note", "info note"])
    # Notes stay folded: nothing to act on.
    assert notes.first.get_attribute("open") is None
    check_page(page, "info-notes")

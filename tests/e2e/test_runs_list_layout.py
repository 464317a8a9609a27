"""The runs list as a person sees it at 1280 and 1440 px and on a phone (390×844): no
horizontal scrolling, no number cut, compact model names with the full id on hover, a column
chooser remembered across visits, a header that stays in view, a navigation that folds away on
a phone (and still works without JavaScript), the first steps on an empty list, and "Compare
selected" with nothing ticked saying why nothing happened."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from datasets.models import Dataset
from jobs.models import Job
from jobs.services import connection_save
from tests.e2e.pages import E2E

pytestmark = [*E2E, pytest.mark.django_db(transaction=True)]

FT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme-research-org:support-bot-v2:AbC123xyZ"

# Widths in the page: the document, the table and its box, and every number cell that does
# not show its whole value on one line (the value: a running run's "latest" below its train
# loss is a note, on a line of its own).
MEASURE = """() => {
  const table = document.querySelector("table.tb-runs");
  const wrap = table.closest(".tb-table-wrap");
  const cut = [];
  for (const td of table.querySelectorAll("td.num")) {
    if (!td.checkVisibility()) { continue; }
    const range = document.createRange();
    range.selectNodeContents(td);
    const note = td.querySelector(".tb-latest");
    if (note) { range.setEndBefore(note); }
    const lines = new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top)));
    if (td.scrollWidth > td.clientWidth || lines.size > 1) { cut.push(td.textContent); }
  }
  const visibleHeads = Array.from(table.querySelectorAll("thead th")).filter((th) => th.checkVisibility());
  return {
    page: document.scrollingElement.scrollWidth,
    viewport: window.innerWidth,
    table: Math.ceil(table.getBoundingClientRect().width),
    box: wrap.clientWidth,
    boxScroll: wrap.scrollWidth,
    columns: visibleHeads.length,
    cut,
    widths: visibleHeads.map((th) => th.textContent.trim().slice(0, 12) + "=" + Math.round(th.getBoundingClientRect().width)),
    wide: Array.from(document.querySelectorAll("body *")).filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest(".tb-runs-wrap")).map((el) => el.tagName + "." + el.className).slice(0, 8),
  };
}"""


def make_runs(count: int) -> list[Job]:
    """Runs with the widest values a list shows: long names and tags, a fine-tuned base
    model, big token counts, costs, long losses, hours-long durations."""
    connection = connection_save(
        name="Acme OpenAI production", kind="openai", base_url="https://api.acme.example/v1",
        api_key="sk-e2e-key",
    )  # fmt: skip
    creator = get_user_model().objects.create_user(username="alexandra.montgomery-smith")
    dataset = Dataset.objects.create(
        name="support-tickets-2024-q3-cleaned-train.jsonl", file="datasets/layout.jsonl",
        size=10, line_count=1, status="valid", sha256="ab" * 32,
    )  # fmt: skip
    now = timezone.now()
    jobs = []
    for n in range(count):
        jobs.append(
            Job.objects.create(
                connection=connection,
                name=f"customer-support-tone-experiment-{n:02d}",
                notes="Compared against the March baseline with the new system prompt.",
                provider_job_id=f"ftjob-layout{n:04d}",
                base_model=FT_MODEL if n % 3 == 0 else "gpt-4o-mini-2024-07-18",
                status="succeeded" if n % 4 else "running",
                hyperparameters={
                    "n_epochs": 12,
                    "batch_size": 256,
                    "learning_rate_multiplier": 1.85,
                },
                trained_tokens=123_456_789 + n,
                final_train_loss=0.123456 + n / 1000,
                best_full_valid_loss=0.234567 + n / 1000,
                best_full_valid_step=12_345 + n,
                tags=["production-candidate", "tone", f"sweep-{n}"],
                created_by=creator,
                training_dataset=dataset,
                started_at=now - timedelta(hours=26, minutes=n),
                finished_at=now - timedelta(minutes=1) if n % 4 else None,
            )
        )
    return jobs


# Every line break inside a word of the table (letters or digits on both sides, in one text
# node: a <wbr> between two nodes is a break the page offers on purpose), and every cell whose
# content sticks out of it.
BREAKS = """() => {
  const table = document.querySelector("table.tb-runs");
  const letter = /[\\p{L}\\p{N}]/u;
  const broken = [];
  const overflowing = [];
  for (const cell of table.querySelectorAll("th, td")) {
    if (!cell.checkVisibility()) { continue; }
    if (cell.scrollWidth > cell.clientWidth) { overflowing.push(cell.textContent.trim().slice(0, 60)); }
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.parentElement.checkVisibility() || node.parentElement.closest(".sr-only")) { continue; }
      const text = node.data;
      let before = null;
      for (let i = 0; i < text.length; i++) {
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const rect = range.getClientRects()[0];
        const top = rect && rect.width > 0 ? Math.round(rect.top) : null;
        if (before && top !== null && top > before.top + 2 && letter.test(before.ch) && letter.test(text[i])) {
          let start = i, end = i;
          while (start > 0 && letter.test(text[start - 1])) { start--; }
          while (end < text.length && letter.test(text[end])) { end++; }
          broken.push(text.slice(start, end));
        }
        before = top === null ? null : {ch: text[i], top};
      }
    }
  }
  return {broken, overflowing};
}"""

LONG_MODEL = "ft:gpt-4o-mini-2024-07-18:acme-research-org:customer_support_tone_v2:AbC123xyZ"
UNBREAKABLE = "b7e4c1d09f2a6e3b8c5d7a1f"  # a tag with no word boundary at all


def make_long_runs(count: int) -> list[Job]:
    """Runs whose texts are as long as people make them, in each of the ways they join words:
    spaces, hyphens, underscores, dots, colons; and one tag that cannot break anywhere."""
    connection = connection_save(
        name="Acme OpenAI production (EU data residency)", kind="openai",
        base_url="https://api.acme.example/v1", api_key="sk-e2e-key",
    )  # fmt: skip
    creator = get_user_model().objects.create_user(username="alexandra.montgomery_smith")
    datasets = [
        Dataset.objects.create(
            name=name,
            file="datasets/layout.jsonl",
            size=10,
            line_count=1,
            status="valid",
            sha256=f"{i:02d}" * 32,
        )
        for i, name in enumerate(
            (
                "support_tickets_2024_q3_cleaned_deduplicated_train.jsonl",
                "Customer support tickets, third quarter, cleaned and deduplicated",
            )
        )
    ]
    now = timezone.now()
    names = (
        "customer_support_tone_experiment_with_the_new_system_prompt_{n:02d}",
        "Customer support tone experiment with the new system prompt, run {n:02d}",
        "customer-support-tone-experiment-with-the-new-system-prompt-{n:02d}",
    )
    return [
        Job.objects.create(
            connection=connection,
            name=names[n % 3].format(n=n),
            provider_job_id=f"ftjob-long{n:04d}",
            base_model=LONG_MODEL if n % 2 == 0 else "gpt-4.1-mini-2025-04-14",
            status="succeeded" if n % 4 else "running",
            hyperparameters={"n_epochs": 12, "batch_size": 256, "learning_rate_multiplier": 1.85},
            trained_tokens=123_456_789 + n,
            final_train_loss=0.123456 + n / 1000,
            best_full_valid_loss=0.234567 + n / 1000,
            best_full_valid_step=12_345 + n,
            tags=["production-candidate", "customer_support_tone", "sweep.lr.1.85", UNBREAKABLE],
            created_by=creator,
            training_dataset=datasets[n % 2],
            started_at=now - timedelta(hours=26, minutes=n),
            finished_at=now - timedelta(minutes=1) if n % 4 else None,
        )
        for n in range(count)
    ]


def measure(page: Page) -> dict[str, Any]:
    return page.evaluate(MEASURE)


def assert_fits(numbers: dict[str, Any], width: int) -> None:
    assert numbers["viewport"] == width
    assert numbers["page"] <= width, numbers  # no horizontal scrolling of the page
    assert numbers["table"] <= numbers["box"] and numbers["boxScroll"] <= numbers["box"], numbers
    assert numbers["cut"] == [], numbers


@pytest.mark.parametrize("width", [1280, 1440])
def test_the_runs_list_fits_a_laptop_screen(
    width: int, page_as: Callable[[str], Page], check_page: Callable[[Page, str], None]
) -> None:
    make_runs(30)
    page = page_as("member")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/")
    expect(page.locator("table.tb-runs tbody tr")).to_have_count(30)
    numbers = measure(page)
    assert numbers["columns"] == 18, numbers  # every column, the selection box included
    assert_fits(numbers, width)
    # The filters are on show, with no fold to open.
    expect(page.get_by_label("Search")).to_be_visible()
    expect(page.locator("#tb-filter-box > summary")).to_be_hidden()

    # A fine-tuned model is shown short, its full id on hover.
    models = page.locator("td.tb-model")
    expect(models.filter(has_text="ft:gpt-4o-mini:support-bot-v2")).to_have_count(10)
    expect(models.filter(has_text="ft:gpt-4o-mini:support-bot-v2").first).to_have_attribute(
        "title", FT_MODEL
    )
    expect(models.filter(has_text="2024")).to_have_count(0)

    # Scrolled down the list, the column headings stay in view.
    page.mouse.wheel(0, 1200)
    page.wait_for_function("() => window.scrollY > 600")
    head = page.locator("table.tb-runs thead th").nth(2)
    expect(head).to_be_in_viewport()
    top = head.evaluate("(th) => th.getBoundingClientRect().top")
    assert 0 <= top < 5
    check_page(page, f"runs-{width}")


@pytest.mark.parametrize("width", [1280, 1440])
def test_long_names_wrap_between_words(
    width: int, page_as: Callable[[str], Page], check_page: Callable[[Page, str], None]
) -> None:
    make_long_runs(12)
    page = page_as("member")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/")
    expect(page.locator("table.tb-runs tbody tr")).to_have_count(12)
    numbers = measure(page)
    assert numbers["columns"] == 18, numbers
    assert_fits(numbers, width)
    breaks = page.evaluate(BREAKS)
    # Only the tag without any boundary is broken inside a word (it must be, to fit), and
    # nothing sticks out of its cell.
    assert set(breaks["broken"]) <= {UNBREAKABLE}, breaks
    assert breaks["overflowing"] == [], breaks
    # The compact model name, with its full id on hover.
    model = page.locator("td.tb-model").filter(has_text="customer_support_tone_v2").first
    expect(model).to_have_attribute("title", LONG_MODEL)
    check_page(page, f"long-{width}")

    # Tags saved in place (by the page's script) wrap between their parts too.
    row = page.locator("table.tb-runs tbody tr").first
    row.get_by_text("Edit tags").click()
    row.get_by_label("Tags, comma-separated").fill("holdout_set_march_2025, tone")
    row.get_by_role("button", name="Save tags").click()
    expect(page.locator("#tb-inline-status")).to_have_text("Saved the tags.")
    badge = row.locator(".tb-tag").first
    expect(badge).to_have_text("holdout_set_march_2025")
    assert badge.inner_html() == "holdout_<wbr>set_<wbr>march_<wbr>2025"
    assert set(page.evaluate(BREAKS)["broken"]) <= {UNBREAKABLE}


def test_the_column_choice_is_remembered(page_as: Callable[[str], Page]) -> None:
    make_runs(3)
    page = page_as("viewer")
    page.goto("/")
    provider = page.get_by_role("columnheader", name="Provider")
    expect(provider).to_be_visible()
    page.get_by_text("Columns", exact=True).click()
    page.get_by_role("checkbox", name="Provider", exact=True).uncheck()
    page.get_by_role("checkbox", name="Trained tokens", exact=True).uncheck()
    # Hidden at once, and saved for the next visit.
    expect(provider).to_be_hidden()
    expect(page.get_by_role("columnheader", name="Trained tokens")).to_be_hidden()
    expect(page.locator("#tb-inline-status")).to_have_text("Saved the columns.")
    page.reload()
    expect(page.get_by_role("columnheader", name="Provider")).to_be_hidden()
    expect(page.get_by_role("columnheader", name="Cost")).to_be_visible()
    page.get_by_text("Columns", exact=True).click()
    expect(page.get_by_role("checkbox", name="Provider", exact=True)).not_to_be_checked()
    expect(page.get_by_role("checkbox", name="Cost", exact=True)).to_be_checked()


def test_on_a_phone_the_navigation_folds_away(
    page_as: Callable[[str], Page], check_page: Callable[[Page, str], None]
) -> None:
    make_runs(5)
    page = page_as("member")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    nav = page.get_by_role("navigation", name="Main")
    toggle = page.get_by_role("button", name="Menu")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(nav.get_by_role("link", name="Datasets")).to_be_hidden()
    header = page.locator("header.topbar").bounding_box()
    assert header and header["height"] <= 64, header  # not 40% of the screen
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390, measure(page)
    # The filter fields stay inside their card (folded until asked for).
    page.locator("#tb-filter-box > summary").click()
    outside = page.evaluate("""() => {
      const card = document.querySelector("form.tb-filters").getBoundingClientRect();
      return Array.from(document.querySelectorAll("form.tb-filters input, form.tb-filters select"))
        .filter((el) => el.type !== "hidden" && el.getBoundingClientRect().right > card.right)
        .map((el) => el.name);
    }""")
    assert outside == []
    check_page(page, "phone-nav-closed")

    # Opened with the keyboard, the links are there; Escape folds it again.
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(nav.get_by_role("link", name="Datasets")).to_be_visible()
    page.keyboard.press("Tab")
    expect(nav.get_by_role("link", name="Runs")).to_be_focused()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    check_page(page, "phone-nav-open")
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_be_focused()

    nav_link = nav.get_by_role("link", name="Datasets")
    toggle.click()
    nav_link.click()
    page.wait_for_url("**/datasets/")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390


# What sticks out of the window on a phone: the page's own width against the window's, and
# every element right of it (the runs table scrolls inside its own box, so not its cells).
PHONE = """() => ({
  page: document.scrollingElement.scrollWidth,
  window: document.scrollingElement.clientWidth,
  wide: Array.from(document.querySelectorAll("body *"))
    .filter((el) => el.checkVisibility() && el.getBoundingClientRect().right > document.scrollingElement.clientWidth + 0.5
      && !el.closest(".tb-runs-wrap"))
    .map((el) => el.tagName + "." + el.className + " " + el.textContent.trim().slice(0, 30)),
  box: (() => {
    const wrap = document.querySelector(".tb-runs-wrap");
    const r = wrap.getBoundingClientRect();
    return {left: r.left, right: r.right, scrolls: wrap.scrollWidth > wrap.clientWidth};
  })(),
  card: document.querySelector("#tb-filter-box").getBoundingClientRect().toJSON(),
})"""


def test_on_a_phone_the_filters_fold_and_nothing_scrolls_sideways(
    page_as: Callable[[str], Page], check_page: Callable[[Page, str], None]
) -> None:
    make_long_runs(8)
    page = page_as("member")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    filters = page.locator("#tb-filter-box")
    summary = filters.locator("summary")
    # No filter in use: the card is one line, its fields folded away.
    expect(summary).to_have_text("Filters")
    expect(page.get_by_label("Search")).to_be_hidden()
    card = filters.bounding_box()
    assert card and card["height"] < 80, card
    numbers = page.evaluate(PHONE)
    assert numbers["window"] == 390 and numbers["page"] <= numbers["window"], numbers
    assert numbers["wide"] == [], numbers
    # The table is the one thing wider than the phone, and it scrolls inside its own box.
    assert numbers["box"]["left"] >= 0 and numbers["box"]["right"] <= 390, numbers
    assert numbers["box"]["scrolls"], numbers
    check_page(page, "filters-folded")

    # Unfolded, every field fits; a filter applied keeps the card open and says so.
    summary.click()
    expect(page.get_by_label("Search")).to_be_visible()
    numbers = page.evaluate(PHONE)
    assert numbers["page"] <= 390 and numbers["wide"] == [], numbers
    page.get_by_role("form", name="Filter runs").get_by_label("Status").select_option("running")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**/?*status=running*")
    expect(filters).to_have_attribute("open", "")
    expect(summary).to_have_text("Filters · 1 in use")
    expect(page.get_by_label("Search")).to_be_visible()
    expect(page.locator("table.tb-runs tbody tr")).to_have_count(2)
    numbers = page.evaluate(PHONE)
    assert numbers["page"] <= 390 and numbers["wide"] == [], numbers
    check_page(page, "filters-in-use")

    # Folded again by hand, like any <details>.
    summary.click()
    expect(page.get_by_label("Search")).to_be_hidden()


def test_without_javascript_the_phone_navigation_is_still_there(
    browser: Browser, page_as: Callable[[str], Page], live_server: Any
) -> None:
    signed_in = page_as("member")
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, java_script_enabled=False
    )
    try:
        context.add_cookies(signed_in.context.cookies())
        page = context.new_page()
        page.goto("/")
        expect(page.get_by_role("button", name="Menu")).to_be_hidden()
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Datasets")).to_be_visible()
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
        # The folded filters open without the script too.
        expect(page.get_by_label("Search")).to_be_hidden()
        page.locator("#tb-filter-box > summary").click()
        expect(page.get_by_label("Search")).to_be_visible()
        # Without the script "Compare selected" still answers, with a message.
        page.get_by_role("button", name="Compare selected").click()
        expect(page.get_by_role("status").filter(has_text="No runs were selected")).to_be_visible()
    finally:
        context.close()


def test_the_empty_list_offers_first_steps(
    page_as: Callable[[str], Page], check_page: Callable[[Page, str], None]
) -> None:
    page = page_as("member")
    page.goto("/")
    steps = page.locator("ol.tb-first-steps")
    expect(steps.get_by_role("link", name="Upload a dataset")).to_be_visible()
    check_page(page, "empty")
    steps.get_by_role("link", name="Upload a dataset").click()
    page.wait_for_url("**/datasets/upload/")


def test_compare_selected_with_nothing_ticked_says_why(
    page_as: Callable[[str], Page], check_page: Callable[[Page, str], None]
) -> None:
    first, second = make_runs(2)
    page = page_as("viewer")
    page.goto("/")
    page.get_by_role("button", name="Compare selected").click()
    message = page.locator("#tb-compare-count")
    expect(message).to_have_text(
        "No runs selected: tick two to 20 runs in the first column, then compare."
    )
    expect(message).to_have_attribute("role", "alert")
    assert page.url.endswith("/")
    page.get_by_label(f"Compare {first.name}", exact=True).check()
    page.get_by_role("button", name="Compare selected").click()
    expect(message).to_have_text("1 selected: tick at least one more.")
    page.get_by_label(f"Compare {second.name}", exact=True).check()
    expect(message).to_have_text("2 selected.")
    check_page(page, "compare-selection")

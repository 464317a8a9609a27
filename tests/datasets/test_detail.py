"""The dataset page: numbers equal to the report, model switching, banners, charts, escaping."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from typing import Any

import plotly.graph_objects as go
import pytest
from django.test import Client
from django.utils import timezone

from datasets.models import BaseModel, Dataset
from datasets.validation import Distribution, Report
from tests.datasets.helpers import (
    GPT4O,
    GPT35,
    XSS,
    chat,
    chat_file,
    create_dataset,
    jsonl,
    validate_now,
)

pytestmark = pytest.mark.django_db


def card(page: Any, key: str) -> str:
    match = re.search(rf'data-value="{key}"[^>]*>([^<]*)<', page.content.decode())
    assert match, key
    return html.unescape(match.group(1))


def figure(page: Any, chart_id: str) -> dict[str, Any]:
    match = re.search(
        rf'<script id="{chart_id}-data" type="application/json">(.*?)</script>',
        page.content.decode(),
        re.DOTALL,
    )
    assert match, chart_id
    return json.loads(match.group(1))


def test_summary_cards_equal_the_report(viewer: Client) -> None:
    dataset = validate_now(create_dataset(chat_file(150)))
    report = Report.from_dict(dataset.report)
    estimate = report.estimates
    assert estimate is not None and estimate.training_cost is not None
    page = viewer.get(f"/datasets/{dataset.pk}/")
    assert page.status_code == 200
    assert card(page, "n_examples") == "150"
    assert card(page, "format") == "Chat"
    assert card(page, "total_tokens") == f"{report.tokens.total.total:,}"
    assert card(page, "n_epochs") == str(estimate.n_epochs) == "3"
    assert card(page, "billed_tokens") == f"{estimate.billed_tokens:,}"
    assert estimate.billed_tokens == 3 * report.tokens.total.total
    assert f"Exact estimate: {estimate.training_cost} USD" in page.content.decode()
    assert card(page, "cost") == (
        "< $0.01" if estimate.training_cost < 0.01 else f"${estimate.training_cost:,.2f}"
    )
    assert b"No problems found." in page.content
    assert b"vendor/plotly.min.js" in page.content


def findings_heading(page: Any) -> str:
    match = re.search(r'<h2 id="findings-title">(.*?)</h2>', page.content.decode(), re.S)
    assert match
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1)))


def test_findings_heading_counts_info_notes_apart(viewer: Client) -> None:
    # Three info notes (two weights written 1.0 / 0.0, one spelled special token), no problem.
    weighted = chat(0)
    weighted["messages"][1]["weight"] = 1.0
    zero = chat(1, answer="First answer.")
    zero["messages"].append({"role": "user", "content": "And again?"})
    zero["messages"].append({"role": "assistant", "content": "Second answer.", "weight": 0.0})
    token = chat(2, answer="Done.<|endoftext|>")
    lines = [weighted, zero, token] + [chat(i) for i in range(3, 60)]
    dataset = validate_now(create_dataset(jsonl(lines)))
    report = Report.from_dict(dataset.report)
    assert (report.error_count, report.warning_count, report.info_count) == (0, 0, 3)
    page = viewer.get(f"/datasets/{dataset.pk}/")
    assert findings_heading(page) == "Findings 0 errors, 0 warnings · 3 info notes"
    text = page.content.decode()
    assert "No problems found; the notes below are for information." in text
    assert '<span class="badge ">info note</span>' in text
    assert dataset.status == Dataset.Status.VALID

    # With a warning too (a duplicate line), each kind is counted on its own.
    dataset = validate_now(create_dataset(jsonl([token, *lines]), "dup.jsonl"))
    report = Report.from_dict(dataset.report)
    assert report.warning_count == 1 and report.info_count == 4
    page = viewer.get(f"/datasets/{dataset.pk}/")
    assert findings_heading(page) == "Findings 0 errors, 1 warning · 4 info notes"
    assert "No problems found" not in page.content.decode()

    # A clean file: no notes mentioned at all.
    clean = validate_now(create_dataset(chat_file(60, start=100), "clean.jsonl"))
    page = viewer.get(f"/datasets/{clean.pk}/")
    assert findings_heading(page) == "Findings 0 errors, 0 warnings"
    assert b"No problems found." in page.content


def test_cost_card_for_a_priced_dataset(viewer: Client, cookbook) -> None:  # type: ignore[no-untyped-def]
    dataset = validate_now(create_dataset((cookbook / "drone_training.jsonl").read_bytes()))
    page = viewer.get(f"/datasets/{dataset.pk}/")
    assert card(page, "n_examples") == "103"
    assert card(page, "billed_tokens") == "234,330"
    assert card(page, "cost") == "$0.70"
    assert "Exact estimate: 0.70299 USD" in page.content.decode()
    assert card(page, "format") == "Chat with tools"


def test_model_selector_recomputes_for_the_same_tokenizer(viewer: Client) -> None:
    dataset = validate_now(create_dataset(chat_file(150)))
    mini = Report.from_dict(dataset.report).estimates
    page = viewer.get(f"/datasets/{dataset.pk}/?model={GPT4O}")
    assert page.status_code == 200
    assert f"shown re-derived for {GPT4O}" in page.content.decode()
    expected = mini.training_cost * 25 / 3  # type: ignore[union-attr, operator]
    assert f"Exact estimate: {expected} USD" in page.content.decode()
    # A GET never writes: the stored report is still the gpt-4o-mini one.
    assert Dataset.objects.get(pk=dataset.pk).report_model_id == "gpt-4o-mini-2024-07-18"


def test_other_tokenizer_offers_revalidation_to_members_only(
    viewer: Client, member: Client
) -> None:
    dataset = validate_now(create_dataset(chat_file(20)))
    url = f"/datasets/{dataset.pk}/?model={GPT35}"
    as_member = member.get(url).content.decode()
    assert "must be validated again" in as_member
    assert f"Re-validate for {GPT35}" in as_member
    as_viewer = viewer.get(url).content.decode()
    assert "must be validated again" in as_viewer
    assert f"Re-validate for {GPT35}" not in as_viewer


def test_unknown_model_parameter_is_harmless(viewer: Client) -> None:
    dataset = validate_now(create_dataset(chat_file(20)))
    page = viewer.get(f"/datasets/{dataset.pk}/?model=%3Cscript%3E")
    assert page.status_code == 200
    assert b"Unknown base model" in page.content


def test_banner_for_a_shut_down_model(viewer: Client) -> None:
    dataset = validate_now(create_dataset(chat_file(20)), "gpt-3.5-turbo-0613")
    page = viewer.get(f"/datasets/{dataset.pk}/")
    assert "gpt-3.5-turbo-0613 was shut down on 2024-09-13" in page.content.decode()


def test_banner_for_a_model_shutting_down_soon(viewer: Client) -> None:
    today = timezone.localdate()
    BaseModel.objects.create(
        id="soon-gone", encoding="o200k_base", training_context=65536, inference_context=65536,
        shutdown_on=today + timedelta(days=30),
    )  # fmt: skip
    dataset = validate_now(create_dataset(chat_file(20)))
    page = viewer.get(f"/datasets/{dataset.pk}/?model=soon-gone")
    text = page.content.decode()
    assert f"soon-gone shuts down on {today + timedelta(days=30):%Y-%m-%d} (in 30 days)" in text
    assert "was shut down" not in text
    assert "shuts down" not in viewer.get(f"/datasets/{dataset.pk}/").content.decode()


def test_histograms_carry_the_report_buckets_and_the_context_line(viewer: Client) -> None:
    examples = [chat(i) for i in range(10)] + [chat(i, system="Be brief.") for i in range(10, 15)]
    examples += [chat(i, answer="word " * (20 * i)) for i in range(15, 40)]
    BaseModel.objects.create(
        id="tiny-context", encoding="o200k_base", training_context=400, inference_context=400,
        training_price_per_1m="10",
    )  # fmt: skip
    dataset = validate_now(create_dataset(jsonl(examples)))
    report = Report.from_dict(dataset.report)
    page = viewer.get(f"/datasets/{dataset.pk}/?model=tiny-context")

    messages = figure(page, "chart-messages")
    assert messages["data"][0]["x"] == [2.0, 3.0]
    assert messages["data"][0]["y"] == [35, 5]
    assert messages["layout"]["shapes"] == []

    total = figure(page, "chart-total")
    hist = report.tokens.total.histogram()
    assert total["data"][0]["y"] == hist["counts"]
    assert sum(total["data"][0]["y"]) == 40
    (line,) = total["layout"]["shapes"]
    assert (line["type"], line["x0"], line["x1"], line["yref"]) == ("line", 400, 400, "paper")
    trained = figure(page, "chart-trained")
    assert trained["data"][0]["y"] == report.tokens.trained.histogram()["counts"]
    for fig in (messages, total, trained):
        go.Figure(fig)  # plotly accepts it as it is (raises on unknown properties)

    # Text alternatives: an aria-label summary and a data table.
    over = report.tokens.total.count_above(400)
    assert over > 0
    text = page.content.decode()
    assert f"training context 400 tokens, {over} examples above it" in text
    assert 'role="figure"' in text and "Data table" in text
    assert f"× {over}" in text  # the exceeds_context finding, recomputed for the model


def test_far_context_limit_is_named_not_drawn(viewer: Client) -> None:
    dataset = validate_now(create_dataset(chat_file(20)))
    total = figure(viewer.get(f"/datasets/{dataset.pk}/"), "chart-total")
    assert total["layout"]["shapes"] == []
    assert total["layout"]["annotations"][0]["text"] == "training context 65,536 →"


def test_histogram_counts_match_distribution_edges() -> None:
    from datasets.charts import histogram_figure

    dist = Distribution({5: 2, 17: 1, 44: 3, 100: 4})
    fig = histogram_figure(dist, x_title="tokens", limit=90)
    hist = dist.histogram()
    expected = [0] * 20  # width 5 from 5: [5, 10), [10, 15), ... [100, 105)
    expected[0], expected[2], expected[7], expected[19] = 2, 1, 3, 4
    assert fig["data"][0]["y"] == hist["counts"] == expected
    assert fig["data"][0]["customdata"][0] == [5, 9]
    assert fig["data"][0]["x"][0] == 7.5 and fig["data"][0]["width"][0] == 5
    assert fig["layout"]["shapes"][0]["x0"] == 90


def test_user_content_is_escaped(viewer: Client) -> None:
    bad_line = f'{{"messages": "{XSS}"'.encode()  # invalid JSON echoing the payload
    content = jsonl([chat(i) for i in range(12)] + [bad_line])
    dataset = validate_now(create_dataset(content, title=XSS, description=XSS, tags=["<b>x</b>"]))
    for url in (
        f"/datasets/{dataset.pk}/",
        "/datasets/",
        f"/datasets/{dataset.pk}/examples/?page=1",
        f"/datasets/{dataset.pk}/examples/?q=onerror",
    ):
        text = viewer.get(url).content.decode()
        assert XSS not in text, url
        assert "<b>x</b>" not in text, url
    detail = viewer.get(f"/datasets/{dataset.pk}/").content.decode()
    assert html.escape(XSS) in detail or "&lt;img src=x onerror=alert(1)&gt;" in detail


def test_live_progress_section_while_busy(viewer: Client) -> None:
    dataset = create_dataset(chat_file(20))
    page = viewer.get(f"/datasets/{dataset.pk}/")
    text = page.content.decode()
    assert 'id="validation-live"' in text
    assert f'data-status-url="/datasets/{dataset.pk}/status.json"' in text
    assert "js/dataset_detail.js" in text
    assert "plotly" not in text  # no charts yet, so no plotly
    status = viewer.get(f"/datasets/{dataset.pk}/status.json")
    assert status["Cache-Control"].startswith("max-age=0")
    assert status.json() == {
        "status": "uploaded", "progress_bytes": 0, "progress_total": dataset.size,
        "percent": 0.0, "done": False, "error": "",
    }  # fmt: skip
    assert viewer.get("/datasets/999999/status.json").status_code == 404


def test_error_state_shows_the_message_and_retry_for_members(member: Client) -> None:
    dataset = create_dataset(chat_file(20))
    Dataset.objects.filter(pk=dataset.pk).update(
        status=Dataset.Status.ERROR, error_message=f"boom {XSS}"
    )
    text = member.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "Validation failed" in text and "boom &lt;img" in text
    assert "Validate again" in text


def test_download_streams_the_file(viewer: Client) -> None:
    content = chat_file(30)
    dataset = create_dataset(content, "my data.jsonl")
    response = viewer.get(f"/datasets/{dataset.pk}/download/")
    assert response.status_code == 200
    assert response.streaming
    assert b"".join(response.streaming_content) == content
    assert response["Content-Disposition"] == 'attachment; filename="my data.jsonl"'
    assert response["Content-Type"] == "application/jsonl"
    dataset.file.storage.delete(dataset.file.name)
    assert viewer.get(f"/datasets/{dataset.pk}/download/").status_code == 404


def test_missing_dataset_is_404(viewer: Client) -> None:
    for url in ("/datasets/999999/", "/datasets/999999/examples/", "/datasets/999999/download/"):
        assert viewer.get(url).status_code == 404


def test_derived_lineage_is_shown(member: Client) -> None:
    dataset = create_dataset(chat_file(50), user=None)
    assert (
        member.post(
            f"/datasets/{dataset.pk}/split/", {"train": "0.8", "validation": "0.2", "seed": "3"}
        ).status_code
        == 302
    )
    child = Dataset.objects.get(parent=dataset, derivation__part="train")
    parent_page = member.get(f"/datasets/{dataset.pk}/").content.decode()
    assert f'href="/datasets/{child.pk}/"' in parent_page
    child_page = member.get(f"/datasets/{child.pk}/").content.decode()
    assert "train part of a split" in child_page and "seed 3" in child_page

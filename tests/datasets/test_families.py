"""Provider families on the dataset page and in the selectors the launch rules call: which
providers and methods a dataset is valid for, why not, and how exact its token counts are."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.test import Client

from datasets import selectors, services
from datasets.models import BaseModel, Dataset
from datasets.validation import Report
from tests.datasets.helpers import GPT35, chat, chat_file, create_dataset, jsonl, validate_now

pytestmark = pytest.mark.django_db


def text_file(n: int = 12) -> bytes:
    return jsonl({"text": f"Plain training text number {i}."} for i in range(n))


def dpo_file(n: int = 12) -> bytes:
    return jsonl(
        {
            "input": {"messages": [{"role": "user", "content": f"Pick {i}"}]},
            "preferred_output": [{"role": "assistant", "content": f"good {i}"}],
            "non_preferred_output": [{"role": "assistant", "content": f"bad {i}"}],
        }
        for i in range(n)
    )


def validity_table(page: Any) -> dict[str, dict[str, str]]:
    """family → {"label", "valid", "format", "methods", "reason"} as the page shows them."""
    text = page.content.decode()
    table = re.search(r'<table class="table" id="validity">(.*?)</table>', text, re.S)
    assert table, "no validity table"
    rows = {}
    for family, body in re.findall(r'<tr data-family="([a-z_]+)">(.*?)</tr>', table.group(1), re.S):
        label = re.search(r"<th[^>]*>(.*?)</th>", body, re.S)
        cells = dict(re.findall(r'<td data-cell="([a-z]+)">(.*?)</td>', body, re.S))
        rows[family] = {
            key: html.unescape(re.sub(r"<[^>]+>", "", value)).strip()
            for key, value in {"label": label.group(1) if label else "", **cells}.items()
        }
    return rows


def shown_family(page: Any) -> str:
    match = re.search(r'<p class="muted" id="findings-family">(.*?)</p>', page.content.decode())
    assert match
    return html.unescape(match.group(1))


def tokenizer_notes(page: Any) -> dict[str, str]:
    found = re.findall(
        r'<p class="muted ds-footnote" data-tokenizer-note="([a-z_]+)">(.*?)</p>',
        page.content.decode(),
    )
    return {family: html.unescape(note) for family, note in found}


def test_a_text_file_is_valid_for_together_only(viewer: Client) -> None:
    dataset = validate_now(create_dataset(text_file()))
    assert (dataset.status, dataset.format) == (Dataset.Status.VALID, "text")
    assert dataset.validity == {
        "openai": {
            "valid": False,
            "format": "unknown",
            "methods": [],
            "reason": "the Text format is not accepted",
        },
        "together": {"valid": True, "format": "text", "methods": ["supervised"], "reason": ""},
    }
    page = viewer.get(f"/datasets/{dataset.pk}/")
    assert page.status_code == 200
    assert validity_table(page) == {
        "openai": {
            "label": "OpenAI",
            "valid": "not valid",
            "format": "Unknown",
            "methods": "—",
            "reason": "the Text format is not accepted",
        },
        "together": {
            "label": "Together AI",
            "valid": "valid",
            "format": "Generic text",
            "methods": "supervised",
            "reason": "",
        },
    }
    # The findings shown first are those of the family that accepts the file; OpenAI's are a
    # click away, none lost.
    assert shown_family(page) == "By Together AI's rules: valid."
    assert "No problems found." in page.content.decode()
    openai = viewer.get(f"/datasets/{dataset.pk}/?family=openai")
    assert shown_family(openai) == "By OpenAI's rules: not valid."
    assert "Unrecognised example" in openai.content.decode()

    assert selectors.dataset_valid_for(dataset, family="together", method="supervised") == (
        True,
        "",
    )
    assert selectors.dataset_valid_for(dataset, family="openai", method="supervised") == (
        False,
        "OpenAI: the Text format is not accepted.",
    )
    assert selectors.dataset_valid_for(dataset, family="together", method="dpo") == (
        False,
        "Together AI: Generic text data trains supervised jobs, not DPO.",
    )


def test_a_chat_file_is_valid_for_both(viewer: Client) -> None:
    dataset = validate_now(create_dataset(chat_file(60)))
    assert dataset.status == Dataset.Status.VALID and dataset.format == "chat"
    page = viewer.get(f"/datasets/{dataset.pk}/")
    table = validity_table(page)
    assert {f: (r["valid"], r["format"], r["methods"]) for f, r in table.items()} == {
        "openai": ("valid", "Chat", "supervised"),
        "together": ("valid", "Conversational", "supervised"),
    }
    # The first family that accepts it is OpenAI: its findings and estimates, as before.
    assert shown_family(page) == "By OpenAI's rules: valid."
    assert 'estimate OpenAI\'s "auto" settings' in page.content.decode()
    together = viewer.get(f"/datasets/{dataset.pk}/?family=together")
    assert shown_family(together) == "By Together AI's rules: valid."
    for family in ("openai", "together"):
        assert selectors.dataset_valid_for(dataset, family=family, method="supervised") == (
            True,
            "",
        )
        ok, reason = selectors.dataset_valid_for(dataset, family=family, method="dpo")
        assert not ok and reason.endswith("data trains supervised jobs, not DPO.")
    families = selectors.dataset_families(dataset)
    assert [(f.family, f.valid, f.methods) for f in families] == [
        ("openai", True, ("supervised",)),
        ("together", True, ("supervised",)),
    ]


def test_a_dpo_file_trains_dpo_on_both(viewer: Client) -> None:
    dataset = validate_now(create_dataset(dpo_file()))
    assert (dataset.status, dataset.format) == (Dataset.Status.VALID, "dpo")
    table = validity_table(viewer.get(f"/datasets/{dataset.pk}/"))
    assert {f: (r["valid"], r["methods"]) for f, r in table.items()} == {
        "openai": ("valid", "DPO"),
        "together": ("valid", "DPO"),
    }
    for family, label in (("openai", "OpenAI"), ("together", "Together AI")):
        assert selectors.dataset_valid_for(dataset, family=family, method="dpo") == (True, "")
        assert selectors.dataset_valid_for(dataset, family=family, method="supervised") == (
            False,
            f"{label}: Preference (DPO) data trains DPO jobs, not supervised.",
        )
    # gpt-3.5 trains no DPO: the same file is then Together's only.
    other = validate_now(create_dataset(dpo_file(13), "dpo-35.jsonl"), GPT35)
    assert other.status == Dataset.Status.VALID
    ok, reason = selectors.dataset_valid_for(other, family="openai", method="dpo")
    assert not ok and "does not support DPO" in reason


def test_the_page_says_together_counts_are_an_estimate_and_with_which_encoding(
    viewer: Client,
) -> None:
    dataset = validate_now(create_dataset(chat_file(20)))
    notes = tokenizer_notes(viewer.get(f"/datasets/{dataset.pk}/"))
    assert set(notes) == {"together"}
    assert notes["together"].startswith(
        "Token counts for Together AI are an estimate made with o200k_base:"
    )
    # The encoding named is the one the engine counted with.
    older = validate_now(create_dataset(chat_file(20, start=50), "older.jsonl"), GPT35)
    notes = tokenizer_notes(viewer.get(f"/datasets/{older.pk}/"))
    assert "an estimate made with cl100k_base" in notes["together"]


def test_a_few_examples_are_enough_for_together(viewer: Client) -> None:
    dataset = validate_now(create_dataset(jsonl([chat(i) for i in range(3)])))
    assert dataset.status == Dataset.Status.VALID
    report = Report.from_dict(dataset.report)
    # OpenAI's verdict, findings and counts are exactly what they were.
    assert not report.is_valid and report.count("too_few_examples") == 1
    assert report.to_dict()["is_valid"] is False
    table = validity_table(viewer.get(f"/datasets/{dataset.pk}/"))
    assert table["openai"]["reason"] == (
        "1 error; first: the file has 3 examples; at least 10 are required"
    )
    assert table["together"]["valid"] == "valid"


def test_the_launch_choices_filter_on_the_summary_column() -> None:
    chat_set = validate_now(create_dataset(chat_file(20), "chat.jsonl"))
    text_set = validate_now(create_dataset(text_file(), "text.jsonl"))
    dpo_set = validate_now(create_dataset(dpo_file(), "dpo.jsonl"))
    invalid = validate_now(create_dataset(b'{"nope": 1}\n', "bad.jsonl"))
    assert invalid.status == Dataset.Status.INVALID

    def pks(family: str, method: str) -> set[int]:
        return {d.pk for d in selectors.datasets_valid_for(family=family, method=method)}

    assert pks("openai", "supervised") == {chat_set.pk}
    assert pks("together", "supervised") == {chat_set.pk, text_set.pk}
    assert pks("openai", "dpo") == pks("together", "dpo") == {dpo_set.pk}
    assert pks("nobody", "supervised") == set()
    # The same verdicts from a values() row, as a launch form lists datasets.
    row = Dataset.objects.filter(pk=text_set.pk).values("status", "format", "validity").get()
    assert selectors.families_from_row(**row) == selectors.dataset_families(text_set)


def test_rows_from_before_families_keep_their_openai_verdict(viewer: Client) -> None:
    """A dataset validated before rule sets: a report without parts and no validity entry
    (as an old row or a hand-made one has). Its OpenAI verdict is its status; Together asks
    for a new validation; nothing breaks."""
    dataset = validate_now(create_dataset(chat_file(20)))
    stored = dict(dataset.report)
    del stored["parts"], stored["families"]
    Dataset.objects.filter(pk=dataset.pk).update(report=stored, validity={})
    dataset.refresh_from_db()
    assert selectors.dataset_valid_for(dataset, family="openai", method="supervised") == (
        True,
        "",
    )
    ok, reason = selectors.dataset_valid_for(dataset, family="together", method="supervised")
    assert not ok
    assert reason == (
        "Together AI: it was validated before Together AI's rules were added; validate it again."
    )
    assert dataset.pk in {
        d.pk for d in selectors.datasets_valid_for(family="openai", method="supervised")
    }
    for query in ("", "?family=together", "?family=openai"):
        page = viewer.get(f"/datasets/{dataset.pk}/{query}")
        assert page.status_code == 200
        assert shown_family(page) == "By OpenAI's rules: valid."
    assert validity_table(viewer.get(f"/datasets/{dataset.pk}/"))["together"]["valid"] == (
        "not checked"
    )


@pytest.mark.parametrize(
    "query",
    [
        "?family=",
        "?family=nobody",
        "?family=%00",
        "?family=openai&family=together",
        "?family=together&model=nope",
        "?family=" + "x" * 5000,
    ],
)
def test_odd_family_parameters_never_fail(viewer: Client, query: str) -> None:
    dataset = validate_now(create_dataset(text_file(), "odd.jsonl"))
    page = viewer.get(f"/datasets/{dataset.pk}/{query}")
    assert page.status_code == 200
    assert shown_family(page).startswith("By ")


def test_a_broken_validity_column_is_read_as_not_checked() -> None:
    dataset = validate_now(create_dataset(chat_file(20)))
    for broken in ({"together": "yes"}, {"together": None}, [], "x"):
        Dataset.objects.filter(pk=dataset.pk).update(validity=broken)
        dataset.refresh_from_db()
        ok, reason = selectors.dataset_valid_for(dataset, family="together", method="supervised")
        assert not ok and "validate it again" in reason
        assert selectors.dataset_valid_for(dataset, family="openai", method="supervised")[0]


def test_not_yet_validated_or_failed_datasets_are_valid_for_nothing() -> None:
    dataset = create_dataset(chat_file(20))
    ok, reason = selectors.dataset_valid_for(dataset, family="openai", method="supervised")
    assert (ok, reason) == (False, "OpenAI: it is still being validated.")
    Dataset.objects.filter(pk=dataset.pk).update(status=Dataset.Status.ERROR)
    dataset.refresh_from_db()
    ok, reason = selectors.dataset_valid_for(dataset, family="together", method="supervised")
    assert (ok, reason) == (False, "Together AI: its validation failed; validate it again.")


def test_recomputing_for_another_model_updates_every_verdict() -> None:
    dataset = validate_now(create_dataset(dpo_file()))
    assert dataset.validity["openai"]["valid"]
    gpt4o = BaseModel.objects.get(pk="gpt-4o-2024-08-06")
    assert services.dataset_validation_request(dataset=dataset, model=gpt4o) == "recomputed"
    dataset.refresh_from_db()
    assert dataset.validity["openai"]["methods"] == ["dpo"]
    assert dataset.validity["together"]["methods"] == ["dpo"]
    assert dataset.report_model_id == gpt4o.pk

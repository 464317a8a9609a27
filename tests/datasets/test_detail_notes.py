"""Issue 14.2 on the dataset page: notes are shown as notes (a valid dataset stays valid),
and the "auto" epochs estimate is the cookbook's."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from datasets.models import Dataset
from tests.datasets.helpers import chat, create_dataset, jsonl, validate_now

pytestmark = pytest.mark.django_db


def test_notes_are_shown_as_info_and_the_estimate_is_the_cookbooks(viewer: Client) -> None:
    lines = [chat(i) for i in range(12)]
    lines[3]["messages"][-1]["weight"] = 1.0
    lines[5]["messages"][0]["content"] = "stop at <|endoftext|>"
    dataset = validate_now(create_dataset(jsonl(lines)))
    assert dataset.status == Dataset.Status.VALID
    page = viewer.get(f"/datasets/{dataset.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    estimate = re.search(r'data-value="n_epochs"[^>]*>([^<]*)<', text)
    assert estimate and estimate.group(1) == "8"  # 100 // 12, not ⌈100 / 12⌉ = 9
    for title in ("Weight written as a decimal", "Text spells a special token"):
        summary = re.search(
            rf'<span class="badge ([^"]*)">([\w ]+)</span> <strong>{title}</strong>', text
        )
        assert summary, title
        assert summary.groups() == ("", "info note")
    assert "line 4</span> message 2: weight 1.0 is the number 1; accepted" in html.unescape(text)
    assert "line 6</span> message 1: text contains &lt;|endoftext|&gt;" in text

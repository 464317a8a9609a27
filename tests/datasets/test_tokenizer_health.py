"""Issue 14.1: a tokenizer failure is reported as one — by /healthz, the System page and a
validation — never as an unreadable dataset, and an intact tokenizer is checked too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from core.services import heartbeat_record
from datasets import services
from datasets.models import Dataset
from tests.datasets.helpers import chat_file, create_dataset
from tests.permissions import client_for
from tests.support.tokenizer import damaged_bpe

pytestmark = pytest.mark.django_db

DAMAGED = (
    "o200k_base: BPE file o200k_base.tiktoken is damaged or replaced (its sha256 is not the "
    "shipped file's); restore it from the Tuneboard release"
)


@pytest.fixture
def damaged(tmp_path: Path) -> Iterator[Path]:
    with damaged_bpe(tmp_path / "bpe") as path:
        yield path


def _alive() -> None:
    heartbeat_record(name="beat")
    heartbeat_record(name="worker")


def test_healthz_checks_the_tokenizer() -> None:
    _alive()
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json()["tokenizer"] == {"ok": True}


def test_healthz_reports_a_damaged_bpe_file(damaged: Path) -> None:
    _alive()
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["tokenizer"] == {"ok": False, "error": DAMAGED}
    assert body["database"] == {"ok": True}
    assert str(damaged.parent) not in response.content.decode()  # no paths on a public page


def test_system_page_shows_the_tokenizer(damaged: Path) -> None:
    page = client_for("viewer").get("/system/")
    assert page.status_code == 200
    html = page.content.decode()
    row = html[html.index('<th scope="row">Tokenizer</th>') :].split("</tr>")[0]
    assert "Down" in row
    assert DAMAGED.replace("'", "&#x27;") in row


def test_validation_with_a_damaged_tokenizer_says_so(damaged: Path) -> None:
    dataset = create_dataset(chat_file(20))
    ok = services.dataset_validate(dataset_id=dataset.pk, model_id=dataset.requested_model_id)
    assert ok is False
    dataset.refresh_from_db()
    assert dataset.status == Dataset.Status.ERROR
    assert dataset.error_message == (
        f"The tokenizer could not be loaded, so no dataset can be validated: {DAMAGED}."
    )
    assert "could not be read" not in dataset.error_message
    assert dataset.claim is None

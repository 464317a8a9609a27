"""Issue 14.1 on the launch page: the cost estimate comes from the token counts a validation
stored, so a damaged tokenizer leaves it as it was; a dataset whose validation could not run
because of the tokenizer is refused with that reason, not as a dataset that is not valid."""

from __future__ import annotations

from collections.abc import Callable
from html import unescape
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets.models import Dataset
from datasets.services import dataset_create_from_upload, dataset_validate
from jobs.models import ProviderConnection
from tests.jobs.test_views import _catalog  # noqa: F401 - autouse fixture
from tests.jobs.test_views_launch import MINI, connection  # noqa: F401 - fixture
from tests.permissions import client_for
from tests.sandbox.data import chat_examples, jsonl
from tests.support.tokenizer import damaged_bpe

pytestmark = pytest.mark.django_db

DAMAGED = (
    "o200k_base: BPE file o200k_base.tiktoken is damaged or replaced (its sha256 is not the "
    "shipped file's); restore it from the Tuneboard release"
)


def test_the_launch_estimate_needs_no_tokenizer(
    connection: ProviderConnection,  # noqa: F811
    make_dataset: Callable[..., Dataset],
    tmp_path: Path,
) -> None:
    dataset = make_dataset(chat_examples(20))
    member = client_for("member")
    query = {"training_dataset": str(dataset.pk), "base_model": MINI, "n_epochs": "2"}
    before = member.get("/jobs/new/estimate/", query).content.decode()
    assert "$" in before and "billed tokens over 2 epochs" in before
    with damaged_bpe(tmp_path / "bpe"):
        during = member.get("/jobs/new/estimate/", query)
        assert during.status_code == 200 and during.content.decode() == before
        page = member.get(f"/jobs/new/?dataset={dataset.pk}")
        assert page.status_code == 200 and "billed tokens over" in page.content.decode()


def test_a_dataset_the_tokenizer_could_not_validate_is_refused_with_that_reason(
    connection: ProviderConnection,  # noqa: F811
    tmp_path: Path,
) -> None:
    dataset = dataset_create_from_upload(
        upload=SimpleUploadedFile("chats.jsonl", jsonl(chat_examples(20))), name="Chats",
        uploaded_by=None,
    ).dataset  # fmt: skip
    with damaged_bpe(tmp_path / "bpe"):
        assert dataset_validate(dataset_id=dataset.pk, model_id=dataset.requested_model_id) is False
    dataset.refresh_from_db()
    assert dataset.status == Dataset.Status.ERROR
    response = client_for("member").get("/jobs/new/", {"dataset": str(dataset.pk)})
    assert response.status_code == 200
    said = [str(message) for message in get_messages(response.wsgi_request)]
    assert said == [
        "The dataset “Chats” could not be validated. The tokenizer could not be loaded, so no "
        f"dataset can be validated: {DAMAGED}. Choose a training dataset below."
    ]
    assert said[0] in unescape(response.content.decode())

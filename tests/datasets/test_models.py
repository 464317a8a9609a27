"""The base-model catalog and the dataset table's constraints."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import IntegrityError

from datasets import selectors
from datasets.models import BaseModel, Dataset
from datasets.validation import DEFAULT_MODELS, get_default_model
from tests.datasets.helpers import chat_file, create_dataset

pytestmark = pytest.mark.django_db


def test_catalog_is_seeded_with_the_engine_defaults() -> None:
    rows = {m.pk: m.to_spec() for m in BaseModel.objects.all()}
    assert rows == {spec.id: spec for spec in DEFAULT_MODELS}


def test_to_spec_prices_keep_the_engine_form() -> None:
    spec = BaseModel.objects.get(pk="gpt-4o-mini-2024-07-18").to_spec()
    assert str(spec.training_price_per_1m) == "3"
    assert (
        str(BaseModel.objects.get(pk="gpt-4.1-nano-2025-04-14").to_spec().training_price_per_1m)
        == "1.5"
    )
    assert BaseModel.objects.get(pk="gpt-4-0613").to_spec().training_price_per_1m is None
    assert spec == get_default_model("gpt-4o-mini-2024-07-18")


def test_default_model_skips_shut_down_ones() -> None:
    assert selectors.base_model_default().pk == "gpt-4o-mini-2024-07-18"  # type: ignore[union-attr]
    BaseModel.objects.filter(pk="gpt-4o-mini-2024-07-18").update(shutdown_on=date(2020, 1, 1))
    assert selectors.base_model_default().pk == "babbage-002"  # type: ignore[union-attr]


def test_model_notice_levels() -> None:
    today = date(2025, 1, 1)
    model = BaseModel(id="m", shutdown_on=today + timedelta(days=1))
    assert selectors.model_notice(model, today).text == "m shuts down on 2025-01-02 (in 1 day)."  # type: ignore[union-attr]
    model = BaseModel(id="m", shutdown_on=today + timedelta(days=200), deprecated_on=today)
    assert selectors.model_notice(model, today).level == "warn"  # type: ignore[union-attr]
    assert selectors.model_notice(BaseModel(id="m"), today) is None


def test_sha256_is_unique_and_hex() -> None:
    dataset = create_dataset(chat_file(12))
    fields = {"name": "x", "size": 1, "line_count": 1, "file": "x.jsonl"}
    with pytest.raises(IntegrityError):
        Dataset.objects.create(sha256=dataset.sha256, **fields)


def test_sha256_must_be_lowercase_hex() -> None:
    with pytest.raises(IntegrityError):
        Dataset.objects.create(name="x", size=1, line_count=1, file="x.jsonl", sha256="Z" * 64)

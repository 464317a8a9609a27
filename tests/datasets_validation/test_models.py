"""Requirement 4: the base-model table that seeds the database."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import pytest
import tiktoken

from datasets.validation import DEFAULT_MODELS, ModelSpec, get_default_model

EXPECTED = {
    # id: (encoding, training context, inference context, training price, vision, dpo)
    "gpt-4.1-2025-04-14": ("o200k_base", 65_536, 1_047_576, "25", False, True),
    "gpt-4.1-mini-2025-04-14": ("o200k_base", 65_536, 1_047_576, "5", False, True),
    "gpt-4.1-nano-2025-04-14": ("o200k_base", 65_536, 1_047_576, "1.50", False, True),
    "gpt-4o-2024-08-06": ("o200k_base", 65_536, 128_000, "25", True, True),
    "gpt-4o-mini-2024-07-18": ("o200k_base", 65_536, 128_000, "3", False, True),
    "gpt-4-0613": ("cl100k_base", 8_192, 8_192, None, False, False),
    "gpt-3.5-turbo-0125": ("cl100k_base", 16_385, 16_385, "8", False, False),
    "gpt-3.5-turbo-1106": ("cl100k_base", 16_385, 16_385, "8", False, False),
    "gpt-3.5-turbo-0613": ("cl100k_base", 4_096, 4_096, "8", False, False),
    "babbage-002": ("cl100k_base", 16_384, 16_384, "0.40", False, False),
    "davinci-002": ("cl100k_base", 16_384, 16_384, "6", False, False),
}


def test_default_models_table() -> None:
    assert [m.id for m in DEFAULT_MODELS] == list(EXPECTED)
    for spec in DEFAULT_MODELS:
        encoding, train_ctx, infer_ctx, price, vision, dpo = EXPECTED[spec.id]
        assert spec.encoding == encoding
        assert spec.encoding == tiktoken.encoding_name_for_model(spec.id)
        assert (spec.training_context, spec.inference_context) == (train_ctx, infer_ctx)
        assert spec.training_price_per_1m == (Decimal(price) if price else None)
        assert (spec.supports_vision, spec.supports_dpo) == (vision, dpo)
        assert spec.provider_kind == "openai"
        assert spec.legacy_completion is (spec.id in ("babbage-002", "davinci-002"))
        for value in (spec.input_price_per_1m, spec.output_price_per_1m):
            assert value is None or isinstance(value, Decimal)


def test_inference_prices_and_dates() -> None:
    mini = get_default_model("gpt-4o-mini-2024-07-18")
    assert mini is not None
    assert (mini.input_price_per_1m, mini.output_price_per_1m) == (Decimal("0.30"), Decimal("1.20"))
    old = get_default_model("gpt-3.5-turbo-0613")
    assert old is not None
    assert (old.deprecated_on, old.shutdown_on) == (date(2023, 11, 6), date(2024, 9, 13))
    gpt4 = get_default_model("gpt-4-0613")
    assert gpt4 is not None and gpt4.input_price_per_1m is None


def test_lookup_and_immutability() -> None:
    assert get_default_model("gpt-4o-2024-08-06") is DEFAULT_MODELS[3]
    assert get_default_model("gpt-5") is None
    spec = DEFAULT_MODELS[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.training_context = 1  # type: ignore[misc]
    assert isinstance(spec, ModelSpec)
    # Field names and values are what a data migration needs to seed a table.
    fields = {f.name for f in dataclasses.fields(ModelSpec)}
    assert {
        "id",
        "provider_kind",
        "encoding",
        "training_context",
        "inference_context",
        "training_price_per_1m",
        "input_price_per_1m",
        "output_price_per_1m",
        "supports_vision",
        "supports_dpo",
        "deprecated_on",
        "shutdown_on",
    } <= fields

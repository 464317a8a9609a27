"""Requirement 4: "auto" hyperparameter estimates, billed tokens, cost, and re-pricing a stored
report for another model."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from datasets.validation import (
    EncodingMismatchError,
    Report,
    can_recompute,
    estimate_hyperparameters,
    estimate_training_cost,
    recompute_for_model,
)

from .helpers import BABBAGE, GPT4O, GPT4O_MINI, GPT35, chat, jsonl, model, simple, validate


@pytest.mark.parametrize(
    ("n", "epochs"),
    [
        (0, 3),
        (1, 25),  # 100 would be needed; capped at 25
        (4, 25),
        (5, 20),
        (10, 10),
        (12, 8),  # 100 // 12 (the cookbook's floor division)
        (30, 3),  # 100 // 30
        (33, 3),
        (34, 3),
        (8_333, 3),
        (8_334, 2),  # 3 × 8,334 > 25,000 → 25,000 // 8,334
        (12_500, 2),
        (12_501, 1),
        (1_000_000, 1),
    ],
)
def test_default_epochs(n: int, epochs: int) -> None:
    assert estimate_hyperparameters(n)["n_epochs"] == epochs


@pytest.mark.parametrize(
    ("n", "batch", "rate"),
    [
        (1, 1, 0.05),
        (749, 1, 0.05),
        (750, 2, 0.05),
        (4_249, 8, 0.05),
        (4_250, 9, 0.1),
        (32_249, 64, 0.1),
        (32_250, 65, 0.2),
        (128_000, 256, 0.2),
        (10_000_000, 256, 0.2),
    ],
)
def test_default_batch_size_and_learning_rate(n: int, batch: int, rate: float) -> None:
    hyper = estimate_hyperparameters(n)
    assert (hyper["batch_size"], hyper["learning_rate_multiplier"]) == (batch, rate)
    assert hyper["is_estimate"] is True


def test_training_cost_is_exact_decimal() -> None:
    assert estimate_training_cost(1_234_567, model(GPT4O_MINI)) == Decimal("3.703701")
    assert estimate_training_cost(2_000_000, model(GPT4O)) == Decimal("50")
    assert estimate_training_cost(10, model("gpt-4-0613")) is None


def test_report_estimate_for_a_file() -> None:
    examples = [chat(("user", f"q{i}"), ("assistant", "answer")) for i in range(20)]
    report = validate(jsonl(examples), model_id=GPT4O)
    estimate = report.estimates
    assert estimate is not None
    per_epoch = report.tokens.total.total
    assert (estimate.n_examples, estimate.n_epochs, estimate.batch_size) == (20, 5, 1)
    assert estimate.billed_tokens_per_epoch == per_epoch
    assert estimate.billed_tokens == per_epoch * 5
    assert estimate.training_cost == Decimal(25) * per_epoch * 5 / Decimal(1_000_000)
    data = estimate.to_dict()
    assert data["training_cost"] == str(estimate.training_cost)
    assert data["training_price_per_1m"] == "25"
    assert data["context_limit"] == 65_536


def test_estimate_without_a_model_has_no_cost() -> None:
    report = validate(jsonl(simple(i) for i in range(12)), model_id=None)
    assert report.estimates is not None
    assert report.estimates.training_cost is None
    assert report.estimates.context_limit is None
    assert report.estimates.n_epochs == 8  # 100 // 12


def mixed_file() -> bytes:
    image = {"type": "image_url", "image_url": {"url": "https://e.com/a.png"}}
    lines: list[Any] = [simple(i) for i in range(40)]
    lines += [chat(("user", "word " * (5000 + i)), ("assistant", "ok")) for i in range(3)]
    lines += [
        {
            "messages": [
                {"role": "user", "content": [image]},
                {"role": "assistant", "content": f"pic {i}"},
            ]
        }
        for i in range(4)
    ]
    lines += [
        {
            "input": {"messages": [{"role": "user", "content": "q"}]},
            "preferred_output": [{"role": "assistant", "content": "a"}],
            "non_preferred_output": [{"role": "assistant", "content": "b"}],
        }
    ]
    lines += [{"prompt": "p", "completion": "c"}, b"", simple(0)]
    return jsonl(lines)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (GPT4O_MINI, GPT4O),
        (GPT4O, "gpt-4.1-nano-2025-04-14"),
        (GPT35, "gpt-3.5-turbo-0613"),
        ("gpt-3.5-turbo-0613", BABBAGE),
        (GPT35, "gpt-4-0613"),
    ],
)
def test_recompute_equals_a_fresh_validation(first: str, second: str) -> None:
    data = mixed_file()
    stored = json.loads(json.dumps(validate(data, model_id=first).to_dict()))
    recomputed = recompute_for_model(Report.from_dict(stored), model(second))
    assert recomputed.to_dict() == validate(data, model_id=second).to_dict()


def test_recompute_changes_model_dependent_findings() -> None:
    report = validate(mixed_file(), model_id=GPT35)
    assert report.count("exceeds_context") == 0
    assert report.count("dpo_not_supported") == 1
    tighter = recompute_for_model(report, model("gpt-3.5-turbo-0613"))
    assert tighter.count("exceeds_context") == 3
    assert tighter.lines("exceeds_context") == [41, 42, 43]
    legacy = recompute_for_model(report, model(BABBAGE))
    assert legacy.count("chat_format_not_supported") == 49
    assert legacy.count("legacy_format") == 1
    assert "legacy_format_not_supported" not in legacy.findings
    assert report.count("legacy_format_not_supported") == 1  # the original is untouched


def test_recompute_refuses_another_encoding() -> None:
    report = validate(mixed_file(), model_id=GPT4O)
    assert can_recompute(report, model(GPT4O_MINI))
    assert not can_recompute(report, model(GPT35))
    with pytest.raises(EncodingMismatchError, match="validated again"):
        recompute_for_model(report, model(GPT35))


def test_recompute_without_a_model() -> None:
    report = validate(mixed_file(), model_id=GPT4O)
    plain = recompute_for_model(report, None)
    assert plain.model_id is None
    assert plain.to_dict() == validate(mixed_file(), model_id=None).to_dict()

"""Requirement 2: findings, categories and the JSON form of the report."""

from __future__ import annotations

import json
import re

import pytest

import datasets.validation as api
from datasets.validation import CATEGORIES, Finding, Report, Severity

from .helpers import GPT4O, jsonl, padded, simple, validate


def sample_report() -> Report:
    lines = padded([simple(1), b"", b"{oops", simple(1), {"messages": [{"role": "bot"}]}])
    return validate(jsonl(lines), model_id=GPT4O)


def test_public_api_names() -> None:
    for name in (
        "ModelSpec",
        "DEFAULT_MODELS",
        "get_default_model",
        "validate_stream",
        "Report",
        "Finding",
        "Severity",
        "CATEGORIES",
        "estimate_hyperparameters",
        "estimate_training_cost",
        "recompute_for_model",
        "EncodingMismatchError",
    ):
        assert hasattr(api, name), name
    assert set(api.__all__) <= set(dir(api))


def test_report_is_json_serialisable_and_round_trips() -> None:
    report = sample_report()
    data = json.loads(json.dumps(report.to_dict()))
    again = Report.from_dict(data)
    assert again.to_dict() == report.to_dict()
    assert again.first_error() == report.first_error()


def test_report_summary_fields() -> None:
    report = sample_report()
    data = report.to_dict()
    assert data["is_valid"] is False
    assert data["format"] == "chat"
    assert data["model_id"] == GPT4O
    assert (data["n_lines"], data["n_examples"], data["n_blank_lines"]) == (60, 58, 1)
    assert data["n_invalid_lines"] == 1
    assert data["n_bytes"] == len(
        jsonl(padded([simple(1), b"", b"{oops", simple(1), {"messages": [{"role": "bot"}]}]))
    )
    by_code = {g["code"]: g for g in data["findings"]}
    assert list(by_code) == [
        "invalid_json",
        "invalid_role",
        "missing_content",
        "no_trainable_assistant",
        "blank_line",
        "duplicate_example",
    ]
    assert (data["error_count"], data["warning_count"]) == (4, 2)
    assert by_code["invalid_json"] == {
        "code": "invalid_json",
        "severity": "error",
        "title": "Not valid JSON",
        "count": 1,
        "examples": [
            {
                "code": "invalid_json",
                "severity": "error",
                "line": 3,
                "excerpt": "{oops",
                "message": "not valid JSON: Expecting property name enclosed in double "
                "quotes (column 2)",
            }
        ],
    }


def test_findings_store_at_most_twenty_examples_per_category() -> None:
    report = validate(jsonl([b"x"] * 45 + [b""] * 30))
    assert report.findings["invalid_json"].count == 45
    assert len(report.findings["invalid_json"].examples) == 20
    assert report.findings["blank_line"].count == 30
    assert [f.line for f in report.findings["blank_line"].examples] == list(range(46, 66))


def test_categories_are_complete() -> None:
    for code, info in CATEGORIES.items():
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", code), code
        assert isinstance(info.severity, Severity)
        assert info.title and info.explanation.endswith("."), code
        severity, title, explanation = info  # usable as a plain tuple too
        assert (severity, title, explanation) == tuple(info)


@pytest.mark.parametrize(
    ("code", "severity"),
    [
        ("bom", "warning"),
        ("invalid_utf8", "error"),
        ("blank_line", "warning"),
        ("invalid_json", "error"),
        ("not_an_object", "error"),
        ("too_few_examples", "error"),
        ("few_examples", "warning"),
        ("duplicate_example", "warning"),
        ("too_many_image_examples", "error"),
        ("exceeds_context", "warning"),
        ("legacy_format", "warning"),
        ("legacy_format_not_supported", "error"),
        ("mixed_formats", "error"),
        ("unknown_top_level_key", "warning"),
        ("invalid_weight", "error"),
        ("line_too_long", "error"),
    ],
)
def test_severities_from_the_product_issue(code: str, severity: str) -> None:
    assert CATEGORIES[code].severity == severity


def test_first_error_sentence_for_an_api_emulator() -> None:
    lines = padded([simple(i) for i in range(6)] + [b"{not json"])
    error = validate(jsonl(lines)).first_error()
    assert isinstance(error, Finding)
    sentence = "The job failed due to an invalid training file. " + error.located_message()
    assert sentence == (
        "The job failed due to an invalid training file. Line 7: not valid JSON: Expecting "
        "property name enclosed in double quotes (column 2)"
    )


def test_unsupported_report_version() -> None:
    data = sample_report().to_dict()
    data["version"] = 99
    with pytest.raises(ValueError, match="unsupported report version"):
        Report.from_dict(data)

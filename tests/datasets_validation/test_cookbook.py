"""The validator on real files from OpenAI's cookbook (read in place, never copied)."""

from __future__ import annotations

from pathlib import Path

from datasets.validation import validate_stream

from .helpers import GPT4O_MINI, GPT35, codes, model


def test_pretty_printed_json_is_rejected_line_by_line(cookbook: Path) -> None:
    with (cookbook / "01-testing-example.jsonl").open("rb") as fh:
        report = validate_stream(fh, model=model(GPT4O_MINI))
    assert (report.n_lines, report.n_examples, report.n_blank_lines) == (207, 0, 5)
    assert codes(report) == {"invalid_json": 202, "too_few_examples": 1, "blank_line": 5}
    assert report.lines("blank_line") == [126, 128, 131, 176, 184]
    assert report.lines("invalid_json")[:3] == [1, 2, 3]
    assert report.format == "unknown"
    error = report.first_error()
    assert error is not None and error.line == 1
    assert error.excerpt == "{"
    assert report.findings["invalid_json"].examples[1].excerpt == '    "messages": ['


def test_drone_tool_calling_file_is_valid(cookbook: Path) -> None:
    with (cookbook / "drone_training.jsonl").open("rb") as fh:
        report = validate_stream(fh, model=model(GPT4O_MINI))
    assert report.is_valid
    assert codes(report) == {}
    assert (report.n_lines, report.n_examples, report.format) == (103, 103, "chat_tools")
    summary = report.tokens.total.summary()
    assert (summary["n"], summary["sum"], summary["min"], summary["max"]) == (103, 78110, 742, 771)
    assert report.tokens.trained.total == 1408
    assert report.tokens.messages.counts == {3: 103}
    estimate = report.estimates
    assert estimate is not None
    assert (estimate.n_epochs, estimate.billed_tokens) == (3, 3 * 78110)
    assert str(estimate.training_cost) == "0.70299"


def test_toy_file_has_too_few_examples(cookbook: Path) -> None:
    report = validate_stream((cookbook / "toy_chat_fine_tuning.jsonl").read_bytes())
    assert codes(report) == {"too_few_examples": 1}
    assert (report.n_examples, report.format) == (5, "chat")
    assert report.tokens.total.summary()["max"] == 8031
    assert report.estimates is not None and report.estimates.n_epochs == 20


def test_short_sql_file_gets_the_few_examples_warning(cookbook: Path) -> None:
    with (cookbook / "uploaded_output.jsonl").open("rb") as fh:
        report = validate_stream(fh, model=model(GPT35))
    assert codes(report) == {"few_examples": 1}
    assert report.is_valid
    assert (report.n_examples, report.tokens.encoding) == (11, "cl100k_base")

"""Requirement 3, file rules: encoding, blank lines, JSON, objects, example counts, duplicates."""

from __future__ import annotations

from typing import Any

import pytest

from datasets.validation import Severity, validate_stream
from datasets.validation import vision as vision_module
from datasets.validation.checks import ExampleChecker

from .helpers import chat, codes, jsonl, messages_of, padded, simple, validate


def test_valid_file_has_no_findings() -> None:
    report = validate(jsonl(padded([])))
    assert report.is_valid
    assert codes(report) == {}
    assert (report.n_lines, report.n_examples, report.error_count, report.warning_count) == (
        60,
        60,
        0,
        0,
    )
    assert report.format == "chat"


def test_bom_at_start_is_a_warning_and_ignored() -> None:
    data = b"\xef\xbb\xbf" + jsonl(padded([]))
    report = validate(data)
    assert codes(report) == {"bom": 1}
    assert report.lines("bom") == [1]
    assert report.findings["bom"].severity is Severity.WARNING
    assert report.n_examples == 60
    assert report.is_valid


def test_bom_later_in_the_file_is_invalid_json() -> None:
    data = jsonl(padded([simple(1), b"\xef\xbb\xbf" + jsonl([simple(2)]).strip()]))
    report = validate(data)
    assert codes(report) == {"invalid_json": 1}
    assert report.lines("invalid_json") == [2]


def test_invalid_utf8_is_an_error_for_that_line_only() -> None:
    bad = b'{"messages": [{"role": "user", "content": "caf\xe9"}]}'
    data = jsonl(padded([simple(1), bad, simple(2), b"\xff\xfe{}"], total=64))
    report = validate(data)
    assert codes(report) == {"invalid_utf8": 2}
    assert report.lines("invalid_utf8") == [2, 4]
    assert messages_of(report, "invalid_utf8") == [
        "invalid UTF-8 at byte 47 (b'\\xe9\"}]')",
        "invalid UTF-8 at byte 1 (b'\\xff\\xfe{}')",
    ]
    # The raw excerpt keeps the readable text around the bad byte.
    assert report.findings["invalid_utf8"].examples[0].excerpt.startswith('{"messages"')
    assert (report.n_lines, report.n_examples, report.n_invalid_lines) == (64, 62, 2)
    assert not report.is_valid


def test_blank_lines_are_warnings_with_line_numbers() -> None:
    lines = padded([simple(1), b"", simple(2), b"   \t", b"\r"], total=63)
    report = validate(jsonl(lines))
    assert codes(report) == {"blank_line": 3}
    assert report.lines("blank_line") == [2, 4, 5]
    assert (report.n_lines, report.n_examples, report.n_blank_lines) == (63, 60, 3)
    assert report.is_valid


def test_lines_that_are_not_json() -> None:
    lines = padded(
        [
            simple(1),
            b'{"messages": [',  # pretty-printed JSON split over lines
            b"{'messages': []}",  # Python repr, not JSON
            b'{"a": NaN}',  # Python's json accepts NaN; JSON does not
            b'{"a": 1} {"b": 2}',  # two values on one line
            b'{"a": Infinity}',
            b"[" * 100_000,  # nesting deeper than the parser's recursion limit
        ],
        total=67,
    )
    report = validate(jsonl(lines))
    assert codes(report) == {"invalid_json": 6}
    assert report.lines("invalid_json") == [2, 3, 4, 5, 6, 7]
    assert messages_of(report, "invalid_json")[:5] == [
        "not valid JSON: Expecting value (column 15)",
        "not valid JSON: Expecting property name enclosed in double quotes (column 2)",
        "not valid JSON: NaN is not valid JSON",
        "not valid JSON: Extra data (column 10)",
        "not valid JSON: Infinity is not valid JSON",
    ]
    assert (report.n_examples, report.n_invalid_lines) == (61, 6)


def test_json_values_that_are_not_objects() -> None:
    lines = padded([b"[1, 2]", b'"text"', b"42", b"null", b"true"], total=65)
    report = validate(jsonl(lines))
    assert codes(report) == {"not_an_object": 5}
    assert report.lines("not_an_object") == [1, 2, 3, 4, 5]
    assert messages_of(report, "not_an_object") == [
        "line is a JSON array, not an object",
        "line is a JSON string, not an object",
        "line is a JSON number, not an object",
        "line is a JSON null, not an object",
        "line is a JSON boolean, not an object",
    ]


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, {"too_few_examples": 1}),
        (9, {"too_few_examples": 1}),
        (10, {"few_examples": 1}),
        (49, {"few_examples": 1}),
        (50, {}),
    ],
)
def test_example_count_thresholds(n: int, expected: dict[str, int]) -> None:
    report = validate(jsonl(simple(i) for i in range(n)))
    assert codes(report) == expected
    assert report.is_valid is (n >= 10)
    for code in expected:
        assert report.lines(code) == [None]


def test_example_count_message() -> None:
    report = validate(jsonl(simple(i) for i in range(3)))
    assert messages_of(report, "too_few_examples") == [
        "the file has 3 examples; at least 10 are required"
    ]
    error = report.first_error()
    assert error is not None
    assert error.located_message() == "the file has 3 examples; at least 10 are required"


def test_exact_duplicates_are_counted_with_the_first_line() -> None:
    a, b = simple(1), simple(2)
    lines = padded([a, b, a, a, b, chat(("user", "question 1"), ("assistant", "answer 1 "))])
    # Surrounding whitespace does not make a line different; inner differences do.
    lines.append(b"  " + jsonl([a]).strip() + b"  \r")
    report = validate(jsonl(lines))
    assert codes(report) == {"duplicate_example": 4}
    assert report.lines("duplicate_example") == [3, 4, 5, 61]
    assert messages_of(report, "duplicate_example") == [
        "same as line 1",
        "same as line 1",
        "same as line 2",
        "same as line 1",
    ]
    assert report.is_valid


def test_duplicates_keep_only_twenty_examples_but_count_all() -> None:
    report = validate(jsonl([simple(0)] * 75))
    group = report.findings["duplicate_example"]
    assert group.count == 74
    assert len(group.examples) == 20
    assert [f.line for f in group.examples] == list(range(2, 22))


def _image_example(i: int) -> dict[str, object]:
    part = {"type": "image_url", "image_url": {"url": f"https://example.com/{i}.png"}}
    return {
        "messages": [
            {"role": "user", "content": [part]},
            {"role": "assistant", "content": "ok"},
        ]
    }


def test_more_than_50000_image_examples_is_an_error() -> None:
    assert vision_module.MAX_IMAGE_EXAMPLES == 50_000
    lines = [_image_example(i) for i in range(50_003)] + [simple(1)]
    report = validate(jsonl(lines), model_id="gpt-4o-2024-08-06")
    assert codes(report) == {"too_many_image_examples": 3}
    assert report.lines("too_many_image_examples") == [50_001, 50_002, 50_003]
    assert messages_of(report, "too_many_image_examples")[0] == (
        "image example number 50,001; a file may hold at most 50,000"
    )
    assert report.n_image_examples == 50_003
    assert report.format == "vision"


def test_excerpts_are_raw_and_at_most_200_characters() -> None:
    long_line = b'{"note": "<b>' + b"y" * 500 + b'</b>"}'
    report = validate(jsonl(padded([long_line])))
    excerpt = report.findings["unknown_format"].examples[0].excerpt
    assert excerpt.startswith('{"note": "<b>yyy')  # not HTML-escaped: the renderer does that
    assert len(excerpt) == 200
    assert excerpt.endswith("…")


def test_first_error_is_the_earliest_blocking_line() -> None:
    lines = padded([simple(1), b"", simple(2), b"", b"{bad", simple(3), b"[]"])
    report = validate(jsonl(lines))
    error = report.first_error()
    assert error is not None
    assert (error.line, error.code) == (5, "invalid_json")
    assert error.located_message() == (
        "Line 5: not valid JSON: Expecting property name enclosed in double quotes (column 2)"
    )


def test_first_error_is_none_for_a_valid_file() -> None:
    assert validate(jsonl(padded([b""]))).first_error() is None


def test_a_validator_bug_on_one_line_becomes_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    original = ExampleChecker.check

    def flaky(self: ExampleChecker, obj: dict[str, object], line: int, *args: Any) -> Any:
        if line == 3:
            raise KeyError("boom")
        return original(self, obj, line, *args)

    monkeypatch.setattr(ExampleChecker, "check", flaky)
    report = validate(jsonl(padded([])))
    assert codes(report) == {"internal_error": 1}
    assert messages_of(report, "internal_error") == ["KeyError: 'boom'"]
    assert report.lines("internal_error") == [3]
    assert (report.n_lines, report.n_examples) == (60, 60)


def test_empty_input() -> None:
    report = validate_stream(b"")
    assert (report.n_lines, report.n_examples, report.format) == (0, 0, "unknown")
    assert codes(report) == {"too_few_examples": 1}

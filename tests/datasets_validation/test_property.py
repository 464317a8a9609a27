"""Requirement 5: every byte sequence yields a consistent report (hypothesis)."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets.validation import Report, Severity, validate_stream
from datasets.validation.findings import EXCERPT_CHARS, MAX_EXAMPLES_PER_CATEGORY
from datasets.validation.jsontext import has_unicode_escape

from .helpers import model

INVALID_LINE_CODES = ("invalid_utf8", "line_too_long", "invalid_json", "not_an_object")
FAST = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])

KEYS = st.sampled_from(
    [
        "messages",
        "role",
        "content",
        "name",
        "weight",
        "tool_calls",
        "tool_call_id",
        "function_call",
        "refusal",
        "type",
        "text",
        "image_url",
        "url",
        "detail",
        "id",
        "function",
        "arguments",
        "tools",
        "functions",
        "parallel_tool_calls",
        "input",
        "preferred_output",
        "non_preferred_output",
        "prompt",
        "completion",
        "parameters",
        "text",  # Together's generic text format
    ]
)
SCALARS = (
    st.sampled_from(
        [
            "user",
            "assistant",
            "system",
            "tool",
            "function",
            "developer",
            "text",
            "image_url",
            "https://e.com/a.png",
            "data:image/png;base64,iVBORw0KGgo=",
            "low",
            "{}",
            0,
            1,
            0.5,
            True,
            None,
            "",
        ]
    )
    | st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEYS | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)


def expected_lines(data: bytes) -> int:
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def assert_consistent(report: Report, data: bytes) -> None:
    assert report.n_bytes == len(data)
    assert report.n_lines == expected_lines(data)
    assert report.n_lines == report.n_examples + report.n_blank_lines + report.n_invalid_lines
    assert report.n_blank_lines == report.count("blank_line")
    assert report.n_invalid_lines == sum(report.count(code) for code in INVALID_LINE_CODES)
    assert sum(report.format_counts.values()) == report.n_examples
    assert report.tokens.total.n <= report.n_examples
    assert "internal_error" not in report.findings
    errors = warnings = 0
    for code, group in report.findings.items():
        assert group.code == code
        assert group.count >= max(1, len(group.examples))
        assert len(group.examples) <= MAX_EXAMPLES_PER_CATEGORY
        lines = [f.line for f in group.examples if f.line is not None]
        assert lines == sorted(lines)
        assert all(1 <= line <= report.n_lines for line in lines)
        assert all(len(f.excerpt) <= EXCERPT_CHARS for f in group.examples)
        if group.severity is Severity.ERROR:
            errors += group.count
        else:
            warnings += group.count
    assert (report.error_count, report.warning_count) == (errors, warnings)
    assert report.is_valid is (errors == 0)
    # Every rule set sees every example once, and its verdict follows its own findings.
    for verdict in report.verdicts():
        view = report.for_family(verdict.family)
        assert view is not None and verdict.checked
        assert sum(view.format_counts.values()) == report.n_examples
        assert view.tokens.total.n <= report.n_examples
        assert "internal_error" not in view.findings
        assert verdict.valid is (view.is_valid and bool(verdict.methods))
        assert bool(verdict.reason) is not verdict.valid
    again = Report.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.to_dict() == report.to_dict()


@FAST
@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=700))
def test_arbitrary_bytes(data: bytes, chunk: int) -> None:
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    assert_consistent(validate_stream(iter(chunks)), data)


@FAST
@given(
    st.lists(
        JSON_VALUES
        | st.just(b"")
        | st.binary(max_size=20)
        | st.sampled_from([b"\xef\xbb\xbf{}", b'{"messages": [', b"\r", b"NaN"]),
        max_size=30,
    ),
    st.sampled_from([b"\n", b"\r\n"]),
    st.sampled_from(["gpt-4o-2024-08-06", "gpt-3.5-turbo-0613", "babbage-002"]),
)
def test_arbitrary_json_values_as_lines(items: list[Any], newline: bytes, model_id: str) -> None:
    lines = []
    for item in items:
        if isinstance(item, bytes):
            lines.append(item.replace(b"\n", b" "))
        else:
            lines.append(json.dumps(item).encode())
    data = b"".join(line + newline for line in lines)
    assert_consistent(validate_stream(data, model=model(model_id)), data)


# An escape is a backslash preceded by an even number of backslashes.
_U_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u")


@FAST
@given(
    st.text(alphabet=st.sampled_from('<|\\"u0a é🙂\ud800\n')),
    st.booleans(),
    st.booleans(),
)
def test_a_line_without_a_unicode_escape_is_found_to_have_none(
    text: str, ascii_only: bool, html_safe: bool
) -> None:
    line = json.dumps({"content": text}, ensure_ascii=ascii_only)
    if html_safe:  # as Go's encoder writes it
        line = line.replace("<", "\\u003c")
    raw = line.encode("utf-8", "surrogatepass")
    assert has_unicode_escape(raw) == (_U_ESCAPE.search(raw) is not None)
    # What the checks rely on: without one, every string holds only characters written as
    # themselves, so "<|" and surrogates can come only from the bytes of the line.
    if not has_unicode_escape(raw) and b"<" not in raw:
        assert "<" not in json.loads(raw)["content"]

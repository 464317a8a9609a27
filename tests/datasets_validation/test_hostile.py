"""Hostile files: lone surrogates are an error with their line, and excerpts of huge values cost
what they show, so validation work does not grow with the size of one bad value."""

from __future__ import annotations

import json
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

from datasets.validation import Severity
from datasets.validation.engine import Validation
from datasets.validation.findings import EXCERPT_CHARS, make_excerpt
from datasets.validation.jsontext import find_lone_surrogate, json_clip, scrub

from .helpers import codes, jsonl, padded, simple, validate


def _escaped(example: dict[str, Any]) -> bytes:
    # ensure_ascii spells a lone surrogate as the escape "\ud800", as hostile files do.
    return json.dumps(example).encode()


def test_lone_surrogates_are_an_error_with_their_line() -> None:
    lines = [
        simple(1),
        _escaped({"messages": [{"role": "user", "content": "bad \ud800 here"}, {"role": "assistant", "content": "ok"}]}),
        _escaped({"messages": [{"role": "user", "content": "fine \ud83d\ude00"}, {"role": "assistant", "content": "ok"}]}),
        # An escaped backslash: the text "\ud800", six characters, is no surrogate.
        b'{"messages": [{"role": "user", "content": "\\\\ud800"}, {"role": "assistant", "content": "ok"}]}',
        _escaped({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "\udc00k": 1}]}),
        _escaped({"messages": [{"role": "\udfff", "content": "q"}, {"role": "assistant", "content": "a"}]}),
    ]  # fmt: skip
    report = validate(jsonl(padded(lines)))
    group = report.findings["lone_surrogate"]
    assert group.severity is Severity.ERROR
    assert group.count == 3
    assert [f.line for f in group.examples] == [2, 5, 6]
    assert [f.message for f in group.examples] == [
        "lone surrogate \\ud800 in messages[0].content: it stands for no character; "
        "encode the text as UTF-8",
        "lone surrogate \\udc00 in a key of messages[1]: it stands for no character; "
        "encode the text as UTF-8",
        "lone surrogate \\udfff in messages[0].role: it stands for no character; "
        "encode the text as UTF-8",
    ]
    assert not report.is_valid
    assert report.first_error() is not None and report.first_error().line == 2  # type: ignore[union-attr]
    # Other findings on those lines quote the values too: nothing stored may hold a surrogate,
    # or the report cannot be written as UTF-8 (PostgreSQL refuses "\ud800" in jsonb).
    assert codes(report)["invalid_role"] == 1
    json.dumps(report.to_dict(), ensure_ascii=False).encode("utf-8")


def test_surrogate_helpers() -> None:
    value = json.loads('{"a": [1, {"\\udc01": "x\\ud800y"}], "b": "\\ud83d\\ude00"}')
    assert find_lone_surrogate(value) == ("a key of a[1]", "\\udc01")
    assert scrub(value) == {"a": [1, {"\ufffd": "x\ufffdy"}], "b": "\U0001f600"}
    assert find_lone_surrogate(value) is None
    deep = json.loads("[" * 900 + '"\\udbff"' + "]" * 900)
    assert find_lone_surrogate(deep) == ("[0]" * 900, "\\udbff")


def _tree(width: int, depth: int) -> Any:
    return 0 if depth == 0 else [_tree(width, depth - 1) for _ in range(width)]


def test_excerpts_cost_what_they_show() -> None:
    def peak(run: Callable[[], object]) -> int:
        tracemalloc.start()
        try:
            run()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # A message whose unknown keys each quote the message, and which carries 1.7M numbers.
    huge = {"role": "bogus", "x": _tree(120, 3), "s": "y" * 3_000_000}
    assert len(json_clip(huge, EXCERPT_CHARS)) == EXCERPT_CHARS
    assert make_excerpt(huge).startswith('{"role": "bogus", "x": [[[0, 0')
    assert make_excerpt({"s": "y" * 3_000_000}) == '{"s": "' + "y" * (EXCERPT_CHARS - 8) + "…"
    # A bounded excerpt allocates a few KB; a copy or full dump of the value would take MBs.
    assert peak(lambda: make_excerpt(huge)) < 64_000
    deep = json.loads("[" * 900 + "]" * 900)
    assert json_clip(deep, 40) == "[" * 32 + "[…]" + "]" * 4 + "…"  # no RecursionError
    assert json_clip([[[]]], 40) == "[[[]]]" and json_clip({"a": None}, 40) == '{"a": null}'


def _calls(run: Callable[[], object]) -> int:
    """Python and C function calls made while ``run`` runs: a deterministic measure of work
    (no clock), blind to work inside one C call (the JSON parse, which is linear)."""
    count = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return count


def _bomb(width: int) -> bytes:
    """One line: a message with 30 errors, each quoting the message, which carries a nested
    array of width³ numbers (17 MB of them took 100 s to validate)."""
    message: dict[str, Any] = {"role": "bogus", "content": "hi", "x0": _tree(width, 3)}
    message |= {f"x{i}": i for i in range(1, 30)}
    example = {"messages": [message, {"role": "assistant", "content": "ok"}]}
    return jsonl(padded([example], total=12))


def test_validation_work_does_not_grow_with_one_huge_value() -> None:
    small, large = _bomb(12), _bomb(40)  # 1,728 and 64,000 numbers: 37 times more
    assert len(large) > 10 * len(small)
    run = lambda data: lambda: Validation(threads=1).run(data)  # noqa: E731
    run(small)()  # load the BPE tables outside the measurement
    small_calls, large_calls = _calls(run(small)), _calls(run(large))
    report = Validation(threads=1).run(large)
    assert codes(report)["invalid_message_key"] == 30 and codes(report)["invalid_role"] == 1
    # Same errors, same excerpts: the work is the same whatever the size of the nested array.
    assert large_calls < small_calls * 1.1, (small_calls, large_calls)


def test_deep_and_wide_lines_are_reported_not_fatal() -> None:
    lines = [
        b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"messages": [{"role": "user", "content": "q", "x": ' + b"[" * 800 + b"]" * 800
        + b'}, {"role": "assistant", "content": "a", "weight": ' + b"[" * 800 + b"]" * 800 + b"}]}",
        jsonl([{"messages": [simple(1)["messages"][0]] * 50_000 + [{"role": "assistant", "content": "a"}]}]).strip(),
    ]  # fmt: skip
    report = validate(jsonl(padded(lines)))
    found = codes(report)
    assert found["invalid_json"] == 1  # too deep to parse
    assert "internal_error" not in found
    assert found["invalid_message_key"] == 1 and found["invalid_weight"] == 1
    assert report.n_examples == 59
    assert all(len(f.message) <= 500 for g in report.findings.values() for f in g.examples)

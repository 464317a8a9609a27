"""Word-level diff of an output against its reference (evals/textdiff.py)."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evals.textdiff import MATCH_BUDGET, WORD_DIFF_LIMIT, word_diff

Segments = list[tuple[str, str]]


def rebuilt(diff: Segments) -> tuple[str, str]:
    """(reference, output) reassembled from the segments."""
    reference = "".join(text for op, text in diff if op != "insert")
    output = "".join(text for op, text in diff if op != "delete")
    return reference, output


def assert_well_formed(diff: Segments, reference: str, output: str) -> None:
    assert rebuilt(diff) == (reference, output)
    assert all(op in {"equal", "insert", "delete"} and text for op, text in diff)
    assert all(a[0] != b[0] for a, b in itertools.pairwise(diff))
    # Within a changed stretch the deletion comes first.
    assert all((a[0], b[0]) != ("insert", "delete") for a, b in itertools.pairwise(diff))


@pytest.mark.parametrize(
    ("reference", "output", "expected"),
    [
        ("", "", []),
        ("same", "same", [("equal", "same")]),
        ("", "new", [("insert", "new")]),
        ("old", "", [("delete", "old")]),
        (
            "The capital is Paris.",
            "The capital is Lyon.",
            [("equal", "The capital is "), ("delete", "Paris"), ("insert", "Lyon"), ("equal", ".")],
        ),
        (
            "the quick brown fox",
            "a slow red fox.",
            [
                ("delete", "the quick brown"),
                ("insert", "a slow red"),
                ("equal", " fox"),
                ("insert", "."),
            ],
        ),
        (
            "one two three",
            "one three",
            [("equal", "one "), ("delete", "two "), ("equal", "three")],
        ),
        (
            "one three",
            "one two three",
            [("equal", "one "), ("insert", "two "), ("equal", "three")],
        ),
        # Punctuation is its own token, so "Paris" still matches in "Paris!".
        ("Paris", "Paris!", [("equal", "Paris"), ("insert", "!")]),
        # A whitespace-only change is shown as such, not as a changed word.
        (
            "Paris is big",
            "Paris  is\nbig",
            [
                ("equal", "Paris"),
                ("delete", " "),
                ("insert", "  "),
                ("equal", "is"),
                ("delete", " "),
                ("insert", "\n"),
                ("equal", "big"),
            ],
        ),
        ("answer\n", "answer", [("equal", "answer"), ("delete", "\n")]),
        ("  x", "x", [("delete", "  "), ("equal", "x")]),
        # Unicode words and scripts without spaces (one token per ideograph).
        (
            "Ünïcode naïve café",
            "Ünïcode naive café",
            [("equal", "Ünïcode "), ("delete", "naïve"), ("insert", "naive"), ("equal", " café")],
        ),
        (
            "我爱北京天安门",
            "我爱上海天安门",
            [("equal", "我爱"), ("delete", "北京"), ("insert", "上海"), ("equal", "天安门")],
        ),
        (
            "東京は晴れです",
            "東京は雨です",
            [("equal", "東京は"), ("delete", "晴れ"), ("insert", "雨"), ("equal", "です")],
        ),
        (
            "mix日本text",
            "mix中国text",
            [("equal", "mix"), ("delete", "日本"), ("insert", "中国"), ("equal", "text")],
        ),
    ],
)
def test_word_diff(reference: str, output: str, expected: Segments) -> None:
    diff = word_diff(reference, output)
    assert diff == expected
    assert_well_formed(diff, reference, output)


def test_changed_stretches_are_merged_with_deletion_first() -> None:
    # Two adjacent changes with a whitespace change between them come out as one stretch.
    diff = word_diff("a b c", "a x\ny c")
    assert diff == [("equal", "a "), ("delete", "b"), ("insert", "x\ny"), ("equal", " c")]


def test_a_json_output_against_its_reference() -> None:
    diff = word_diff('{"name": "Ada", "age": 36}', '{"name": "Ada", "age": 37}')
    assert diff == [
        ("equal", '{"name": "Ada", "age": '),
        ("delete", "36"),
        ("insert", "37"),
        ("equal", "}"),
    ]


def test_long_inputs_fall_back_to_a_line_diff() -> None:
    lines = [f"line {i} says something\n" for i in range(2000)]
    reference = "".join(lines)
    changed = lines.copy()
    changed[1000] = "line 1000 says something else\n"
    output = "".join(changed)
    assert len(output) > WORD_DIFF_LIMIT
    diff = word_diff(reference, output)
    assert_well_formed(diff, reference, output)
    # Whole lines, not words: the changed line is replaced as a unit.
    assert diff[1:3] == [
        ("delete", "line 1000 says something"),
        ("insert", "line 1000 says something else"),
    ]
    assert diff[0] == ("equal", "".join(lines[:1000]))


def test_word_level_right_at_the_limit() -> None:
    reference = ("word " * (WORD_DIFF_LIMIT // 5))[:WORD_DIFF_LIMIT]
    output = reference.replace("word", "bird", 1)
    assert len(reference) == WORD_DIFF_LIMIT
    assert word_diff(reference, output)[:2] == [("delete", "word"), ("insert", "bird")]


@pytest.mark.parametrize(
    ("reference", "output"),
    [
        # Degenerate repetition on both sides: quadratic for the matcher.
        ("x " + "the " * 3000, "the " * 3000 + "y"),
        ("a b " * 2400, "b a " * 2400),
        # Many identical lines past the word limit.
        ("\n" * 200_000, "x" + "\n" * 200_000 + "y"),
        ("x\n" * 50_000, "y\n" + "x\n" * 49_999 + "z\n"),
        # One enormous line.
        ("a" * 300_000, "b" * 300_000),
    ],
)
def test_pathological_inputs_stay_fast(reference: str, output: str) -> None:
    # Each takes at most about 0.15 s here; the bound is there to catch a blow-up (speed
    # itself belongs in bench/), so it sits far above that and a loaded machine cannot fail it.
    start = time.perf_counter()
    diff = word_diff(reference, output)
    assert time.perf_counter() - start < 10.0
    assert_well_formed(diff, reference, output)


def test_over_budget_diffs_keep_the_common_start_and_end() -> None:
    middle_old = " ".join(["a", "b"] * 1200)
    middle_new = " ".join(["b", "a"] * 1200)
    assert (middle_old.count("a") * middle_new.count("a")) * 2 > MATCH_BUDGET
    reference = f"Start here.\n{middle_old}\nThe end.\n"
    output = f"Start here.\n{middle_new}\nThe end.\n"
    diff = word_diff(reference, output)
    assert_well_formed(diff, reference, output)
    assert diff[0] == ("equal", "Start here.\n")
    assert diff[-1] == ("equal", "\nThe end.\n")


_words = st.lists(
    st.sampled_from(["the", "cat", "sat", "on", "mat", "Paris", "é", "日本", ".", ",", "42"]),
    max_size=30,
)
_spaces = st.sampled_from([" ", "  ", "\n", "\t", " \n ", "", "\u00a0"])


@st.composite
def texts(draw: st.DrawFn) -> str:
    """Text from a small vocabulary, so that the two sides share words."""
    words = draw(_words)
    return draw(_spaces) + "".join(w + draw(_spaces) for w in words)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reference=st.one_of(texts(), st.text()), output=st.one_of(texts(), st.text()))
def test_segments_always_rebuild_both_texts(reference: str, output: str) -> None:
    assert_well_formed(word_diff(reference, output), reference, output)


@settings(max_examples=100, deadline=None)
@given(text=st.one_of(texts(), st.text()))
def test_identical_texts_are_one_equal_segment(text: str) -> None:
    assert word_diff(text, text) == ([("equal", text)] if text else [])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.sampled_from(["alpha\n", "beta  \n", "\n", "gamma\r\n", "δ\n"]), max_size=40),
    extra=st.text(max_size=20),
)
def test_line_fallback_rebuilds_both_texts(lines: list[str], extra: str) -> None:
    padding = "#" * (WORD_DIFF_LIMIT + 1) + "\n"
    reference = padding + "".join(lines)
    output = padding + "".join(reversed(lines)) + extra
    assert_well_formed(word_diff(reference, output), reference, output)

"""Deterministic graders, grader specs and the LLM-judge text helpers (evals/graders.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evals.graders import (
    JUDGE_PROMPT,
    KINDS,
    PAIRWISE_PROMPT,
    GraderError,
    GraderSpec,
    check_template,
    grade,
    grade_all,
    judge_messages,
    parse_judge_score,
    parse_pairwise,
    parse_specs,
    prompt_text,
)


def spec(kind: str, **options: Any) -> GraderSpec:
    return parse_specs([{"kind": kind, "options": options}])[0]


def score(kind: str, output: str | None, reference: str = "", **options: Any) -> float | None:
    return grade(spec(kind, **options), output=output, reference=reference)


# --- kinds and specs ---------------------------------------------------------------------


def test_kinds_are_exactly_the_documented_ones() -> None:
    assert KINDS == {
        "exact_match": "Exact match",
        "contains": "Contains",
        "regex": "Regex",
        "json_valid": "JSON valid",
        "json_equals": "JSON equals reference",
        "json_schema": "JSON schema valid",
        "token_f1": "Token F1",
    }


def test_parse_specs_fills_defaults() -> None:
    specs = parse_specs(
        [
            {"kind": "exact_match"},
            {"kind": "contains", "options": {}},
            {"kind": "regex", "options": {"pattern": "^ok$"}},
            {"kind": "json_valid", "options": None},
            {"kind": "token_f1"},
        ]
    )
    assert [s.options for s in specs] == [
        {"ignore_case": False, "ignore_whitespace": True, "ignore_punctuation": False},
        {"text": "", "ignore_case": False},
        {"pattern": "^ok$", "ignore_case": False},
        {},
        {},
    ]


def test_parse_specs_assigns_ids_by_kind_with_numbered_repeats() -> None:
    specs = parse_specs(
        [
            {"kind": "regex", "options": {"pattern": "a"}},
            {"kind": "exact_match"},
            {"kind": "regex", "options": {"pattern": "b"}},
            {"kind": "regex", "options": {"pattern": "c"}},
            {"kind": "exact_match", "options": {"ignore_case": True}},
        ]
    )
    assert [s.id for s in specs] == ["regex", "exact_match", "regex_2", "regex_3", "exact_match_2"]


def test_explicit_ids_are_kept_and_never_reused() -> None:
    specs = parse_specs(
        [
            {"kind": "regex", "options": {"pattern": "a"}},
            {"kind": "contains", "id": "regex_2"},
            {"kind": "regex", "options": {"pattern": "b"}},
            {"kind": "token_f1", "id": "f1"},
        ]
    )
    assert [s.id for s in specs] == ["regex", "regex_2", "regex_3", "f1"]


@pytest.mark.parametrize("bad_id", ["", "Upper", "1abc", "has space", "x" * 41, 7])
def test_invalid_ids_are_rejected(bad_id: Any) -> None:
    with pytest.raises(GraderError, match="id"):
        parse_specs([{"kind": "token_f1", "id": bad_id}])


def test_duplicate_explicit_ids_are_rejected() -> None:
    with pytest.raises(GraderError, match="'same' is used twice"):
        parse_specs([{"kind": "token_f1", "id": "same"}, {"kind": "json_valid", "id": "same"}])


def test_labels_describe_the_options() -> None:
    specs = parse_specs(
        [
            {"kind": "exact_match"},
            {"kind": "exact_match", "options": {"ignore_case": True}},
            {
                "kind": "exact_match",
                "options": {"ignore_whitespace": False, "ignore_punctuation": True},
            },
            {"kind": "contains"},
            {"kind": "contains", "options": {"text": "Paris", "ignore_case": True}},
            {"kind": "regex", "options": {"pattern": r"^\d+$"}},
            {"kind": "json_schema", "options": {"schema": {"type": "object"}}},
            {"kind": "json_equals"},
        ]
    )
    assert [s.label for s in specs] == [
        "Exact match",
        "Exact match (case-insensitive)",
        "Exact match (exact whitespace, ignoring punctuation)",
        "Contains reference",
        "Contains “Paris” (case-insensitive)",
        r"Regex /^\d+$/",
        "JSON schema valid",
        "JSON equals reference",
    ]


def test_long_label_snippets_are_shortened() -> None:
    assert spec("contains", text="x" * 200).label == "Contains “" + "x" * 29 + "…”"


def test_a_stored_label_is_kept_and_a_blank_one_derived() -> None:
    specs = parse_specs(
        [
            {"kind": "token_f1", "label": "  Overlap   score "},
            {"kind": "token_f1", "label": "   "},
        ]
    )
    assert [s.label for s in specs] == ["Overlap score", "Token F1"]
    with pytest.raises(GraderError, match="label is longer than 100"):
        parse_specs([{"kind": "token_f1", "label": "x" * 101}])
    with pytest.raises(GraderError, match="label must be a string"):
        parse_specs([{"kind": "token_f1", "label": 3}])


def test_to_dict_round_trips() -> None:
    specs = parse_specs(
        [
            {"kind": "exact_match", "options": {"ignore_case": True}},
            {"kind": "contains", "options": {"text": "café"}},
            {"kind": "regex", "options": {"pattern": "(?i)yes", "ignore_case": False}},
            {"kind": "regex", "options": {"pattern": "no"}},
            {"kind": "json_valid"},
            {"kind": "json_equals"},
            {"kind": "json_schema", "options": {"schema": {"type": "array", "items": {}}}},
            {"kind": "token_f1", "id": "f1"},
        ]
    )
    dicts = [s.to_dict() for s in specs]
    assert parse_specs(dicts) == specs
    assert dicts[3] == {
        "id": "regex_2",
        "kind": "regex",
        "label": "Regex /no/",
        "options": {"pattern": "no", "ignore_case": False},
    }


def test_specs_do_not_share_state_with_their_input() -> None:
    schema: dict[str, Any] = {"type": "object"}
    parsed = spec("json_schema", schema=schema)
    schema["type"] = "array"
    parsed.to_dict()["options"]["schema"]["type"] = "string"
    assert parsed.options["schema"] == {"type": "object"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "at least one grader"),
        ("exact_match", "must be a list"),
        ([{"kind": "token_f1"}] * 13, "At most 12 graders"),
        (["exact_match"], "must be an object"),
        ([{"options": {}}], "Unknown grader kind None"),
        ([{"kind": "bleu"}], "Unknown grader kind 'bleu' \\(expected one of: exact_match, "),
        ([{"kind": "token_f1", "weight": 2}], "Unknown grader field 'weight'"),
        ([{"kind": "exact_match", "options": []}], "Exact match grader: options must be an object"),
        (
            [{"kind": "exact_match", "options": {"ignore_accents": True}}],
            "Exact match grader: unknown option 'ignore_accents'",
        ),
        ([{"kind": "json_valid", "options": {"strict": True}}], "unknown option 'strict'"),
        (
            [{"kind": "exact_match", "options": {"ignore_case": "yes"}}],
            "option 'ignore_case' must be true or false",
        ),
        (
            [{"kind": "exact_match", "options": {"ignore_case": 1}}],
            "option 'ignore_case' must be true or false",
        ),
        ([{"kind": "contains", "options": {"text": 5}}], "option 'text' must be a string"),
        ([{"kind": "regex"}], "Regex grader: option 'pattern' is required"),
        ([{"kind": "regex", "options": {"pattern": ""}}], "Regex grader: the pattern is empty"),
        (
            [{"kind": "regex", "options": {"pattern": "a" * 501}}],
            "longer than 500 characters",
        ),
        ([{"kind": "json_schema"}], "JSON schema grader: option 'schema' is required"),
        (
            [{"kind": "json_schema", "options": {"schema": "{}"}}],
            "option 'schema' must be a JSON object",
        ),
    ],
)
def test_parse_specs_errors(raw: Any, message: str) -> None:
    with pytest.raises(GraderError, match=message):
        parse_specs(raw)


def test_twelve_graders_are_allowed() -> None:
    assert len(parse_specs([{"kind": "token_f1"}] * 12)) == 12


def test_a_500_character_pattern_is_allowed() -> None:
    assert spec("regex", pattern="a" * 500).options["pattern"] == "a" * 500


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("abc)", "Regex grader: unbalanced parenthesis at position 3"),
        ("(abc", "Regex grader: missing \\), unterminated subpattern at position 0"),
        ("[a-", "Regex grader: unterminated character set at position 0"),
        ("*x", "Regex grader: nothing to repeat at position 0"),
        ("a{3,1}", "Regex grader: min repeat greater than max repeat at position 2"),
        ("a{99999999999}", "Regex grader: the repetition number is too large"),
    ],
)
def test_bad_regexes_surface_a_clear_message(pattern: str, message: str) -> None:
    with pytest.raises(GraderError, match=f"^{message}$"):
        parse_specs([{"kind": "regex", "options": {"pattern": pattern}}])


def test_grader_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unbalanced parenthesis"):
        spec("regex", pattern=")")


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "foo"}, "JSON schema grader: invalid schema at /type: 'foo' is not valid"),
        (
            {"properties": {"age": {"minimum": "ten"}}},
            "invalid schema at /properties/age/minimum: 'ten' is not of type 'number'",
        ),
        ({"required": "name"}, "invalid schema at /required: 'name' is not of type 'array'"),
        ({"pattern": "(x"}, "invalid schema at /pattern: '\\(x' is not a 'regex'"),
        ({"const": float("nan")}, "the schema is not plain JSON"),
        ({"enum": [{1, 2}]}, "the schema is not plain JSON"),
    ],
)
def test_bad_schemas_are_rejected(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(GraderError, match=message):
        spec("json_schema", schema=schema)


# --- grading -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_failed_cell_has_no_score(kind: str) -> None:
    options = {"regex": {"pattern": "x"}, "json_schema": {"schema": {}}}.get(kind, {})
    assert grade(spec(kind, **options), output=None, reference="x") is None


@pytest.mark.parametrize(
    ("output", "reference", "options", "expected"),
    [
        ("Paris", "Paris", {}, 1.0),
        ("Paris", "paris", {}, 0.0),
        ("Paris", "paris", {"ignore_case": True}, 1.0),
        ("  Paris \n", "Paris", {}, 1.0),
        ("New   York\tCity", "New York City", {}, 1.0),
        ("New   York", "New York", {"ignore_whitespace": False}, 0.0),
        (" Paris", "Paris", {"ignore_whitespace": False}, 0.0),
        ("Paris.", "Paris", {}, 0.0),
        ("Paris.", "Paris", {"ignore_punctuation": True}, 1.0),
        ("«Bonjour !»", "Bonjour", {"ignore_punctuation": True}, 1.0),
        ("Hello, world!", "hello world", {"ignore_punctuation": True, "ignore_case": True}, 1.0),
        # Symbols are not punctuation: "$5" and "5" differ.
        ("$5", "5", {"ignore_punctuation": True}, 0.0),
        ("STRASSE", "straße", {"ignore_case": True}, 1.0),
        ("ΣΊΣΥΦΟΣ", "σίσυφος", {"ignore_case": True}, 1.0),
        ("cafe\u0301", "café", {}, 1.0),  # decomposed vs composed
        ("café", "cafe", {}, 0.0),
        ("", "", {}, 1.0),
        ("   ", "", {}, 1.0),
        ("   ", "", {"ignore_whitespace": False}, 0.0),
        ("a\u00a0b", "a b", {}, 1.0),  # a no-break space is whitespace too
    ],
)
def test_exact_match(output: str, reference: str, options: dict[str, Any], expected: float) -> None:
    assert score("exact_match", output, reference, **options) == expected


@pytest.mark.parametrize(
    ("output", "reference", "options", "expected"),
    [
        ("The capital is Paris.", "Paris", {}, 1.0),
        ("The capital is paris.", "Paris", {}, 0.0),
        ("The capital is PARIS.", "Paris", {"ignore_case": True}, 1.0),
        ("The capital is Paris.", "Paris\n", {}, 1.0),  # the reference's newline is incidental
        ("Lyon", "Paris", {}, 0.0),
        ("Die Straße", "STRASSE", {"ignore_case": True}, 1.0),
        ("naïve", "nai\u0308ve", {}, 1.0),
        ("I refuse.", "irrelevant", {"text": "refuse"}, 1.0),
        ("I decline.", "refuse", {"text": "refuse"}, 0.0),
        ("a  b", "", {"text": " b"}, 1.0),  # explicit text is taken literally
        ("ab", "", {"text": " b"}, 0.0),
        # An empty reference expects nothing: only an empty or blank output contains it.
        ("", "", {}, 1.0),
        (" \n", "", {}, 1.0),
        ("anything", "", {}, 0.0),
        ("anything", "   ", {}, 0.0),
    ],
)
def test_contains(output: str, reference: str, options: dict[str, Any], expected: float) -> None:
    assert score("contains", output, reference, **options) == expected


@pytest.mark.parametrize(
    ("output", "options", "expected"),
    [
        ("The answer is 42.", {"pattern": r"\b42\b"}, 1.0),
        ("The answer is 420.", {"pattern": r"\b42\b"}, 0.0),
        ("YES", {"pattern": "^yes$"}, 0.0),
        ("YES", {"pattern": "^yes$", "ignore_case": True}, 1.0),
        ("YES", {"pattern": "(?i)^yes$"}, 1.0),
        ("line one\nanswer: B", {"pattern": "^answer: [A-D]$"}, 0.0),
        ("line one\nanswer: B", {"pattern": "(?m)^answer: [A-D]$"}, 1.0),
        ("Ελληνικά", {"pattern": r"^\w+$"}, 1.0),
        ("日本語です", {"pattern": "日本"}, 1.0),
        ("", {"pattern": "^$"}, 1.0),
        ("", {"pattern": "x"}, 0.0),
    ],
)
def test_regex(output: str, options: dict[str, Any], expected: float) -> None:
    assert score("regex", output, "ignored", **options) == expected


def test_regex_searches_only_the_first_100_000_characters() -> None:
    grader = spec("regex", pattern="needle")
    assert grade(grader, output="x" * 99_994 + "needle", reference="") == 1.0
    assert grade(grader, output="x" * 99_995 + "needle", reference="") == 0.0


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ('{"a": 1}', 1.0),
        ("[1, 2, 3]", 1.0),
        ('"just a string"', 1.0),
        ("42", 1.0),
        ("null", 1.0),
        ('  {"a": 1}\n', 1.0),
        ('```json\n{"a": 1}\n```', 1.0),
        ('```JSON\n{"a": 1}\n```', 1.0),
        ('```\n{"a": 1}\n```', 1.0),
        ('```json {"a": 1}```', 1.0),
        ('\n```json\n{"a": 1}\n```\n', 1.0),
        ('{"emoji": "🙂", "text": "Ünïcode"}', 1.0),
        ("", 0.0),
        ("```json\n```", 0.0),
        ("{'a': 1}", 0.0),
        ('{"a": 1,}', 0.0),
        ('Here you go: {"a": 1}', 0.0),
        ('```json\n{"a": 1}\n``` and some prose', 0.0),
        ('```json\n{"a": 1}\n```\n```json\n{"b": 2}\n```', 0.0),
        ('```python\n{"a": 1}\n```', 0.0),
        ("NaN", 0.0),
        ('{"a": Infinity}', 0.0),
        ("[" * 100_000, 0.0),  # nesting deep enough to exhaust recursion
        ("1" * 5000, 0.0),  # an integer too long for int()
    ],
)
def test_json_valid(output: str, expected: float) -> None:
    assert score("json_valid", output) == expected


@pytest.mark.parametrize(
    ("output", "reference", "expected"),
    [
        ('{"a": 1, "b": [1, 2]}', '{"b": [1, 2], "a": 1}', 1.0),
        ('{"a": 1}', '{"a": 1.0}', 1.0),
        ('```json\n{"name": "Zoë"}\n```', '{"name": "Zo\\u00eb"}', 1.0),
        ('{"a": [1, 2]}', '{"a": [2, 1]}', 0.0),
        ('{"a": 1}', '{"a": 1, "b": null}', 0.0),
        ('{"a": null}', "{}", 0.0),
        ("true", "1", 0.0),
        ("false", "0", 0.0),
        ('{"ok": true}', '{"ok": 1}', 0.0),
        ("[true]", "[true]", 1.0),
        ('"1"', "1", 0.0),
        ("1", "2", 0.0),
        ("not json", '{"a": 1}', 0.0),
        ('{"a": 1}', "not json", 0.0),
        ("not json", "not json", 0.0),
    ],
)
def test_json_equals(output: str, reference: str, expected: float) -> None:
    assert score("json_equals", output, reference) == expected


@pytest.mark.parametrize("depth", [400, 800])
def test_json_equals_handles_deep_nesting(depth: int) -> None:
    nested = "[" * depth + "]" * depth
    assert score("json_valid", nested) == 1.0  # parses, so the comparison is what is tested
    assert score("json_equals", nested, nested) == 1.0
    assert score("json_equals", nested, "[" * depth + "1" + "]" * depth) == 0.0


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ('{"name": "Ada", "age": 36}', 1.0),
        ('```json\n{"age": 36, "name": "Ada"}\n```', 1.0),
        ('{"name": "Ada"}', 0.0),
        ('{"name": "Ada", "age": -1}', 0.0),
        ('{"name": "Ada", "age": 36.5}', 0.0),
        ('{"name": "", "age": 3}', 0.0),
        ('{"name": "Ada", "age": 36, "extra": 1}', 0.0),
        ('["Ada", 36]', 0.0),
        ("name: Ada, age: 36", 0.0),
    ],
)
def test_json_schema(output: str, expected: float) -> None:
    assert score("json_schema", output, "", schema=PERSON) == expected


def test_json_schema_with_an_unresolvable_ref_scores_zero_without_network() -> None:
    grader = spec("json_schema", schema={"$ref": "https://example.invalid/schema.json"})
    assert grade(grader, output="{}", reference="") == 0.0


def test_json_schema_follows_local_refs() -> None:
    schema = {
        "$defs": {"tag": {"type": "string", "pattern": "^#"}},
        "type": "array",
        "items": {"$ref": "#/$defs/tag"},
    }
    grader = spec("json_schema", schema=schema)
    assert grade(grader, output='["#a", "#b"]', reference="") == 1.0
    assert grade(grader, output='["#a", "b"]', reference="") == 0.0


@pytest.mark.parametrize(
    ("output", "reference", "expected"),
    [
        ("Paris", "Paris", 1.0),
        ("The Paris!", "paris", 1.0),  # articles, case and punctuation are ignored
        ("the cat sat", "a cat sat down", 0.8),  # P = 2/2, R = 2/3
        ("cat cat cat", "cat", 0.5),  # multiset overlap 1: P = 1/3, R = 1
        ("red green", "blue yellow", 0.0),
        ("", "", 1.0),
        ("the a an", "", 1.0),  # only articles: both sides normalise to nothing
        ("...", "!?", 1.0),
        ("", "Paris", 0.0),
        ("Paris", "", 0.0),
        ("don't", "dont", 1.0),  # SQuAD drops the apostrophe, joining the word
        ("«Zürich»", "zürich", 1.0),
        ("Αθήνα Ελλάδα", "αθήνα", 2 / 3),
        ("theory", "the ory", 0.0),  # "the" is removed only as a whole word
    ],
)
def test_token_f1(output: str, reference: str, expected: float) -> None:
    assert score("token_f1", output, reference) == pytest.approx(expected)


def test_grade_all_keys_scores_by_spec_id() -> None:
    specs = parse_specs(
        [
            {"kind": "exact_match", "options": {"ignore_case": True}},
            {"kind": "contains"},
            {"kind": "regex", "options": {"pattern": "^[A-Z]"}},
            {"kind": "regex", "options": {"pattern": "x"}},
            {"kind": "token_f1"},
        ]
    )
    assert grade_all(specs, output="paris", reference="Paris") == {
        "exact_match": 1.0,
        "contains": 0.0,
        "regex": 0.0,
        "regex_2": 0.0,
        "token_f1": 1.0,
    }
    assert grade_all(specs, output=None, reference="Paris") == dict.fromkeys(
        ["exact_match", "contains", "regex", "regex_2", "token_f1"]
    )


def test_grade_fills_defaults_for_hand_built_specs() -> None:
    hand_built = GraderSpec(id="em", kind="exact_match", label="EM", options={})
    assert grade(hand_built, output=" a  b ", reference="a b") == 1.0


def test_grade_rejects_an_unknown_kind() -> None:
    with pytest.raises(GraderError, match="Unknown grader kind 'bleu'"):
        grade(GraderSpec(id="b", kind="bleu", label="BLEU", options={}), output="", reference="")


ALL_KINDS = parse_specs(
    [
        {"kind": "exact_match"},
        {"kind": "exact_match", "options": {"ignore_case": True, "ignore_punctuation": True}},
        {"kind": "contains"},
        {"kind": "contains", "options": {"text": "a", "ignore_case": True}},
        {"kind": "regex", "options": {"pattern": r"(\w+)\s+\1"}},
        {"kind": "json_valid"},
        {"kind": "json_equals"},
        {"kind": "json_schema", "options": {"schema": PERSON}},
        {"kind": "token_f1"},
    ]
)
_text = st.one_of(
    st.text(),
    st.text(alphabet='ab {}[]":,.!`json \n0123456789truefalsn'),
    st.sampled_from(['{"name": "A", "age": 1}', "```json\n[1]\n```", "a a", "the"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(output=_text, reference=_text)
def test_grades_are_always_none_or_a_unit_float(output: str, reference: str) -> None:
    assert grade_all(ALL_KINDS, output=None, reference=reference) == dict.fromkeys(
        s.id for s in ALL_KINDS
    )
    for grader in ALL_KINDS:
        value = grade(grader, output=output, reference=reference)
        assert type(value) is float
        assert 0.0 <= value <= 1.0


@settings(max_examples=100, deadline=None)
@given(text=st.text())
def test_every_output_matches_itself(text: str) -> None:
    for kind in ("exact_match", "token_f1"):
        assert score(kind, text, text) == 1.0


# --- judge templates ---------------------------------------------------------------------


def test_default_templates_are_verbatim() -> None:
    assert JUDGE_PROMPT == (
        "You are grading an answer against a reference answer.\n\nQuestion:\n{prompt}\n\n"
        "Reference answer:\n{reference}\n\nCandidate answer:\n{output}\n\nHow well does the "
        "candidate answer match the reference in meaning and correctness? Reply with "
        '"Score: N" where N is an integer from 0 (wrong) to 10 (equivalent).'
    )
    assert PAIRWISE_PROMPT == (
        "You are comparing two answers to the same question against a reference answer.\n\n"
        "Question:\n{prompt}\n\nReference answer:\n{reference}\n\nAnswer A:\n{output}\n\n"
        "Answer B:\n{baseline}\n\nWhich answer is closer to the reference in meaning and "
        'correctness? Reply with exactly one of "A", "B" or "TIE".'
    )


def test_default_templates_pass_their_own_check() -> None:
    check_template(JUDGE_PROMPT, pairwise=False)
    check_template(PAIRWISE_PROMPT, pairwise=True)


@pytest.mark.parametrize(
    ("template", "pairwise"),
    [
        ("{reference} vs {output}", False),
        ("Q: {prompt}\n{reference}\n{output}\n{output}", False),
        ('{{"score": N}} {reference} {output}', False),
        ("{output} or {baseline}?", True),  # a pairwise judge may do without a reference
        ("{prompt} {reference} {output} {baseline} {{}}", True),
    ],
)
def test_valid_templates(template: str, pairwise: bool) -> None:
    check_template(template, pairwise=pairwise)


@pytest.mark.parametrize(
    ("template", "pairwise", "message"),
    [
        ("{output}", False, "missing placeholder \\{reference\\}"),
        ("{reference}", False, "missing placeholder \\{output\\}"),
        ("nothing", False, "missing placeholder \\{reference\\}, \\{output\\}"),
        ("{reference} {output}", True, "missing placeholder \\{baseline\\}"),
        ("{output} {baseline}", False, "\\{baseline\\} is only for pairwise judges"),
        ("{reference} {output} {answer}", False, "unknown placeholder \\{answer\\}"),
        ("{reference} {output} {}", False, "unknown placeholder \\{\\}"),
        ("{reference} {output} {0}", False, "unknown placeholder \\{0\\}"),
        ("{reference} {output.upper}", False, "unknown placeholder \\{output.upper\\}"),
        ("{reference} {output!r}", False, "\\{output!r\\}; placeholders take no format"),
        ("{reference} {output:>10}", False, "\\{output:>10\\}; placeholders take no format"),
        ('{reference} {output} {"score": 1}', False, "unknown placeholder"),
        ("{reference} {output} {", False, "Write \\{\\{ and \\}\\} for literal braces"),
        ("{reference} {output} }", False, "single '\\}' encountered"),
    ],
)
def test_invalid_templates(template: str, pairwise: bool, message: str) -> None:
    with pytest.raises(GraderError, match=f"^Judge template: .*{message}"):
        check_template(template, pairwise=pairwise)


def test_judge_messages_fill_the_default_template() -> None:
    messages = judge_messages(JUDGE_PROMPT, prompt_text="user: 2+2?", reference="4", output="four")
    assert messages == [
        {
            "role": "user",
            "content": "You are grading an answer against a reference answer.\n\n"
            "Question:\nuser: 2+2?\n\nReference answer:\n4\n\nCandidate answer:\nfour\n\n"
            "How well does the candidate answer match the reference in meaning and "
            'correctness? Reply with "Score: N" where N is an integer from 0 (wrong) to 10 '
            "(equivalent).",
        }
    ]


def test_judge_messages_insert_values_verbatim() -> None:
    # Braces and placeholder names inside values must neither break nor be expanded.
    nasty = '{"a": {0}} {output} {{x}} }{ {baseline!r:>9}'
    messages = judge_messages(
        "P={prompt}|R={reference}|O={output}|B={baseline}|{{lit}}",
        prompt_text=nasty,
        reference="{reference}",
        output="{prompt}",
        baseline="}",
    )
    assert messages[0]["content"] == f"P={nasty}|R={{reference}}|O={{prompt}}|B=}}|{{lit}}"


def test_judge_messages_pairwise() -> None:
    content = judge_messages(
        PAIRWISE_PROMPT, prompt_text="q", reference="r", output="mine", baseline="theirs"
    )[0]["content"]
    assert "Answer A:\nmine\n\nAnswer B:\ntheirs\n\n" in content


def test_judge_messages_check_the_template_against_the_mode() -> None:
    with pytest.raises(GraderError, match="missing placeholder \\{baseline\\}"):
        judge_messages(JUDGE_PROMPT, prompt_text="q", reference="r", output="o", baseline="b")
    with pytest.raises(GraderError, match="only for pairwise"):
        judge_messages(PAIRWISE_PROMPT, prompt_text="q", reference="r", output="o")


# --- judge replies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Score: 7", 0.7),
        ("score: 10", 1.0),
        ("SCORE:0", 0.0),
        ("The answer is close.\nScore: 8", 0.8),
        ("Score: 3\nOn reflection... Score: 9", 0.9),  # the last one wins
        ("**Score:** 6", 0.6),
        ("**Score: 6**", 0.6),
        ("Score = 5", 0.5),
        ("Final score: 4.", 0.4),
        ("Score: 8/10", 0.8),
        ("Score: 8 / 10", 0.8),
        ("Score: 8 out of 10", 0.8),
        ("Score: 4/5", None),  # another scale, not 0.4
        ("Score: 11", None),
        ("Score: -1", None),
        ("Score: 7.5", None),
        ("Score: 7.0", 0.7),
        ("Score: 11\nScore: 12", None),
        ("Score: N", None),
        ("7", 0.7),
        (" 10\n", 1.0),
        ("0", 0.0),
        ("11", None),
        ("7/10", None),
        ("I give it a 7", None),
        ("Scores: 7", None),
        ("underscore: 7", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_judge_score(reply: str | None, expected: float | None) -> None:
    assert parse_judge_score(reply) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("A", 1.0),
        ("B", 0.0),
        ("TIE", 0.5),
        ("a", 1.0),
        ("b.", 0.0),
        ("Tie.", 0.5),
        ("  tie!\n", 0.5),
        ("Answer A", 1.0),
        ("answer b", 0.0),
        ("Answer: B", 0.0),
        ('"A"', 1.0),
        ("**B**", 0.0),
        ("`TIE`", 0.5),
        ("C", None),
        ("A or B", None),
        ("Answer A is better", None),
        ("It's a tie", None),
        ("AB", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_parse_pairwise(reply: str | None, expected: float | None) -> None:
    assert parse_pairwise(reply) == expected


# --- prompt rendering --------------------------------------------------------------------


def test_prompt_text_renders_string_contents() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?\nOne word."},
        {"role": "assistant", "content": "Paris"},
        {"role": "user", "content": "And Italy?"},
    ]
    assert prompt_text(messages) == (
        "system: Be brief.\nuser: Capital of France?\nOne word.\nassistant: Paris\nuser: And Italy?"
    )


def test_prompt_text_renders_content_parts() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "input_audio", "input_audio": {"data": "...", "format": "wav"}},
                {"type": "file", "file": {"file_id": "file-1"}},
                {"type": "video"},
            ],
        },
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't tell."}]},
    ]
    assert prompt_text(messages) == (
        "user: What is in this picture?\n[image]\n[audio]\n[file]\n[video]\n"
        "assistant: I can't tell."
    )


def test_prompt_text_renders_tool_calls_and_empty_content() -> None:
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather"}}],
        },
        {"role": "tool", "content": '{"temp": 3}', "tool_call_id": "c1"},
        {"role": "assistant"},
    ]
    assert prompt_text(messages) == (
        "user: Weather in Oslo?\nassistant: [tool call: get_weather]\n"
        'tool: {"temp": 3}\nassistant: '
    )


def test_prompt_text_of_nothing_is_empty() -> None:
    assert prompt_text([]) == ""


def test_prompt_text_survives_a_part_whose_type_is_not_a_string() -> None:
    # An unhashable "type" used to reach a dict lookup and raise TypeError.
    messages = [{"role": "user", "content": [{"type": ["text"]}, {"type": None}]}]
    assert prompt_text(messages) == "user: [['text']]\n[part]"

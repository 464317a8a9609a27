"""Rule sets ("provider families"): one pass checks a file against OpenAI's and Together AI's
rules; each says whether the file is valid for it, for which methods, and why not."""

from __future__ import annotations

from typing import Any

import pytest

from datasets.validation import RULE_SETS, Report, validate_stream
from datasets.validation.engine import Validation
from datasets.validation.rulesets import SHARED_CODES

from .helpers import BABBAGE, GPT4O_MINI, GPT35, chat, jsonl, model, simple

N = 12  # above both families' minimum example counts


def text_line(i: int) -> dict[str, Any]:
    return {"text": f"Some plain training text number {i}."}


def instruction(i: int) -> dict[str, Any]:
    return {"prompt": f"Question {i}:", "completion": f" answer {i}"}


def preference(i: int) -> dict[str, Any]:
    return {
        "input": {"messages": [{"role": "user", "content": f"Pick {i}"}]},
        "preferred_output": [{"role": "assistant", "content": f"good {i}"}],
        "non_preferred_output": [{"role": "assistant", "content": f"bad {i}"}],
    }


def with_tools(i: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"Weather {i}?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": f"c{i}",
                        "type": "function",
                        "function": {"name": "weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": f"c{i}", "content": "sunny"},
            {"role": "assistant", "content": "It is sunny."},
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {}}}],
    }


FILES = {
    "chat": [simple(i) for i in range(N)],
    "chat_tools": [with_tools(i) for i in range(N)],
    "text": [text_line(i) for i in range(N)],
    "instruction": [instruction(i) for i in range(N)],
    "preference": [preference(i) for i in range(N)],
}


def verdicts(report: Report) -> dict[str, tuple[bool, tuple[str, ...]]]:
    return {v.family: (v.valid, v.methods) for v in report.verdicts()}


# file × model the report is made for → family → (valid, methods)
TABLE = [
    (
        "chat",
        GPT4O_MINI,
        {"openai": (True, ("supervised",)), "together": (True, ("supervised",))},
    ),
    (
        "chat_tools",
        GPT4O_MINI,
        {"openai": (True, ("supervised",)), "together": (True, ("supervised",))},
    ),
    ("text", GPT4O_MINI, {"openai": (False, ()), "together": (True, ("supervised",))}),
    ("text", None, {"openai": (False, ()), "together": (True, ("supervised",))}),
    # prompt/completion: OpenAI's legacy models only; Together's instruction format
    ("instruction", GPT4O_MINI, {"openai": (False, ()), "together": (True, ("supervised",))}),
    (
        "instruction",
        BABBAGE,
        {"openai": (True, ("supervised",)), "together": (True, ("supervised",))},
    ),
    ("preference", GPT4O_MINI, {"openai": (True, ("dpo",)), "together": (True, ("dpo",))}),
    # gpt-3.5 trains no DPO: the file is still Together's
    ("preference", GPT35, {"openai": (False, ()), "together": (True, ("dpo",))}),
    ("chat", BABBAGE, {"openai": (False, ()), "together": (True, ("supervised",))}),
]


@pytest.mark.parametrize(("name", "model_id", "expected"), TABLE)
def test_formats_by_family_and_method(
    name: str, model_id: str | None, expected: dict[str, tuple[bool, tuple[str, ...]]]
) -> None:
    report = validate_stream(jsonl(FILES[name]), model=model(model_id) if model_id else None)
    assert verdicts(report) == expected
    for verdict in report.verdicts():
        assert verdict.checked
        assert bool(verdict.reason) is not verdict.valid
    assert report.is_usable is any(valid for valid, _ in expected.values())


def test_reasons_say_why_not() -> None:
    text = {v.family: v for v in validate_stream(jsonl(FILES["text"])).verdicts()}
    assert text["openai"].reason == "the Text format is not accepted"
    assert text["together"].format == "text" and text["together"].reason == ""
    legacy = validate_stream(jsonl(FILES["instruction"]), model=model(GPT4O_MINI)).verdicts()
    assert legacy[0].reason.startswith(f"{N} errors; first: Line 1: prompt/completion example")
    assert legacy[0].note == "" and legacy[1].valid
    babbage = validate_stream(jsonl(FILES["instruction"]), model=model(BABBAGE)).verdicts()
    assert babbage[0].note == "babbage-002 and davinci-002 only"


def test_the_openai_report_is_untouched_by_other_rule_sets() -> None:
    """The primary's findings, format and tokens are what the engine reported before rule
    sets: a Together-only file is still unknown to OpenAI, its lines uncounted."""
    report = validate_stream(jsonl(FILES["text"]), model=model(GPT4O_MINI))
    assert report.format == "unknown" and not report.is_valid
    assert report.count("unknown_format") == N
    assert report.tokens.total.n == 0
    assert not any(code.startswith("together_") for code in report.findings)
    together = report.for_family("together")
    assert together is not None
    assert together.format == "text" and together.is_valid
    assert together.tokens.total.n == N and together.tokens.total.total > 0
    assert together.estimates is None


def test_token_counts_are_shared_not_repeated() -> None:
    """A file both families read is tokenized once: Together's counts are OpenAI's."""
    report = validate_stream(jsonl(FILES["chat"]), model=model(GPT4O_MINI))
    together = report.for_family("together")
    assert together is not None
    assert together.tokens.to_dict() == report.tokens.to_dict()
    assert report.parts["together"].tokens.total.n == 0
    note = report.verdicts()[1].tokenizer_note
    assert "estimate" in note and "o200k_base" in note
    assert report.verdicts()[0].tokenizer_note == ""


def test_one_tokenization_per_line() -> None:
    runner = Validation(model=model(GPT4O_MINI))
    data = jsonl([*FILES["chat"], *FILES["text"], *FILES["instruction"]])
    runner.run(data)
    assert runner.tally.n_ended == 3 * N


def together(lines: list[Any]) -> Report:
    view = validate_stream(jsonl(lines)).for_family("together")
    assert view is not None
    return view


def together_codes(lines: list[Any]) -> dict[str, int]:
    return {code: g.count for code, g in together(lines).findings.items()}


@pytest.mark.parametrize(
    ("example", "code"),
    [
        (chat(("assistant", "hi"), ("user", "q"), ("assistant", "a")), "together_role_order"),
        (chat(("user", "a"), ("user", "b"), ("assistant", "c")), "together_role_order"),
        (chat(("user", "q"), ("assistant", "a"), system="s") | {}, None),
        (chat(("user", "q")), "together_no_assistant"),
        (chat(("developer", "d"), ("user", "q"), ("assistant", "a")), "together_invalid_role"),
        (chat(("user", ""), ("assistant", "a")), "together_invalid_content"),
        (chat(("user", "q"), ("assistant", "")), "together_invalid_content"),
        ({"messages": []}, "together_invalid_messages"),
        ({"messages": "hi"}, "together_invalid_messages"),
        ({"messages": [{"role": "user", "content": "q"}, "x"]}, "together_invalid_messages"),
        ({"text": ""}, "together_invalid_text"),
        ({"text": 5}, "together_invalid_text"),
        ({"prompt": "p", "completion": ""}, "together_invalid_instruction"),
        ({"prompt": 1, "completion": "c"}, "together_invalid_instruction"),
        ({"prompt": "p"}, "together_unknown_format"),
        (
            {"text": "t", "messages": [{"role": "user", "content": "q"}]},
            "together_ambiguous_format",
        ),
        ({"other": 1}, "together_unknown_format"),
        (preference(0) | {"preferred_output": []}, "together_invalid_preference"),
        (
            preference(0) | {"non_preferred_output": [{"role": "user", "content": "x"}]},
            "together_invalid_preference",
        ),
        (
            preference(0)
            | {
                "input": {
                    "messages": [
                        {"role": "user", "content": "q"},
                        {"role": "assistant", "content": "a"},
                    ]
                }
            },
            "together_invalid_preference",
        ),
        (preference(0) | {"input": "q"}, "together_invalid_preference"),
        # Together's own example input starts with an assistant turn: allowed in preference input.
        (
            preference(0)
            | {
                "input": {
                    "messages": [
                        {"role": "assistant", "content": "Hi"},
                        {"role": "user", "content": "q"},
                    ]
                }
            },
            None,
        ),
    ],
)
def test_together_rules(example: dict[str, Any], code: str | None) -> None:
    lines = [example, *[simple(i) for i in range(3)]] if "messages" in example else [example]
    found = together_codes(lines)
    if code is None:
        assert not any(c.startswith("together_") for c in found), found
    else:
        assert found.get(code) == 1, found
        assert together(lines).lines(code) == [1]


def test_weights_are_the_integers_0_and_1_on_any_message() -> None:
    ok = chat(("user", "q"), ("assistant", "a"))
    ok["messages"][0]["weight"] = 0
    ok["messages"][1]["weight"] = 1
    decimal = chat(("user", "q"), ("assistant", "a"))
    decimal["messages"][1]["weight"] = 1.0
    boolean = chat(("user", "q"), ("assistant", "a"))
    boolean["messages"][1]["weight"] = True
    assert together_codes([ok]) == {}
    assert together_codes([ok, decimal, boolean]) == {"together_invalid_weight": 2}
    # OpenAI allows weights on assistant messages only, and reads 1.0 as 1 (a note).
    openai = validate_stream(jsonl([ok, decimal]))
    assert openai.count("invalid_weight") == 1 and openai.count("decimal_weight") == 1


def test_one_format_per_file() -> None:
    found = together_codes([text_line(0), text_line(1), simple(2)])
    assert found == {"together_mixed_formats": 1}
    view = together([text_line(0), text_line(1), simple(2)])
    assert view.format == "mixed"
    (finding,) = view.findings["together_mixed_formats"].examples
    assert finding.line == 3
    assert finding.message == "Conversational example in a file of mostly Generic text examples"


def test_shared_findings_belong_to_every_family() -> None:
    data = jsonl([text_line(0), text_line(0), b"", b"{nope", text_line(3)])
    report = validate_stream(data)
    view = report.for_family("together")
    assert view is not None
    for code in ("duplicate_example", "blank_line", "invalid_json"):
        assert view.count(code) == report.count(code) == 1
    assert all(c in SHARED_CODES or c.startswith("together_") for c in view.findings)
    # invalid JSON blocks every family
    assert not any(v.valid for v in report.verdicts())


def test_minimum_examples_differ() -> None:
    few = validate_stream(jsonl([simple(i) for i in range(3)]), model=model(GPT4O_MINI))
    assert [v.valid for v in few.verdicts()] == [False, True]
    assert "at least 10 are required" in few.verdicts()[0].reason
    empty = validate_stream(b"")
    assert [v.valid for v in empty.verdicts()] == [False, False]
    view = empty.for_family("together")
    assert view is not None and view.count("together_no_examples") == 1


def test_a_report_stored_before_rule_sets_reads_as_not_checked() -> None:
    stored = validate_stream(jsonl(FILES["chat"]), model=model(GPT4O_MINI)).to_dict()
    del stored["parts"], stored["families"]
    old = Report.from_dict(stored)
    assert old.for_family("together") is None
    openai, together_verdict = old.verdicts()
    assert openai.valid and openai.methods == ("supervised",)
    assert not together_verdict.checked and not together_verdict.valid
    assert "validate it again" in together_verdict.reason
    assert old.shown_family() == "openai"


def test_rule_sets_are_named_once() -> None:
    names = [r.name for r in RULE_SETS]
    assert names == ["openai", "together"] and len(set(names)) == len(names)
    for rules in RULE_SETS[1:]:
        assert rules.checker is not None and rules.too_few_code and rules.mixed_code

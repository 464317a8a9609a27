"""Requirement 3: DPO, legacy prompt/completion, mixed files, file format detection, and the
rules that depend on the chosen model."""

from __future__ import annotations

from typing import Any

import pytest

from datasets.validation import Severity

from .helpers import BABBAGE, GPT4O, GPT35, codes, jsonl, messages_of, simple, validate


def dpo(i: int = 0, **changes: Any) -> dict[str, Any]:
    example: dict[str, Any] = {
        "input": {
            "messages": [{"role": "user", "content": f"question {i}"}],
            "tools": [],
            "parallel_tool_calls": True,
        },
        "preferred_output": [{"role": "assistant", "content": f"good answer {i}"}],
        "non_preferred_output": [{"role": "assistant", "content": f"bad answer {i}"}],
    }
    example.update(changes)
    return example


def legacy(i: int = 0) -> dict[str, str]:
    return {"prompt": f"Q{i} ->", "completion": f" A{i}\n"}


def file_of(examples: list[Any], filler: Any, total: int = 60) -> bytes:
    return jsonl(examples + [filler(1000 + i) for i in range(total - len(examples))])


def test_valid_dpo_file() -> None:
    report = validate(file_of([], dpo), model_id=GPT4O)
    assert codes(report) == {}
    assert report.format == "dpo"
    assert report.format_counts == {"dpo": 60}


def test_dpo_structure_errors() -> None:
    missing_output = dpo(6)
    del missing_output["non_preferred_output"]
    examples = [
        dpo(1, input={"messages": []}),
        dpo(2, input="question"),
        {"preferred_output": [], "non_preferred_output": []},
        dpo(4, preferred_output={"role": "assistant", "content": "x"}),
        dpo(5, non_preferred_output=[]),
        missing_output,
        dpo(7, preferred_output=[{"role": "user", "content": "x"}]),
        dpo(8, preferred_output=[{"role": "assistant", "content": "a"}] * 2),
    ]
    report = validate(file_of(examples, dpo), model_id=GPT4O)
    assert codes(report) == {"invalid_dpo_input": 3, "invalid_dpo_output": 7}
    assert report.lines("invalid_dpo_input") == [1, 2, 3]
    assert messages_of(report, "invalid_dpo_input") == [
        "input.messages is an empty array",
        "input is a string; it must be an object with messages",
        "input is missing; it must be an object with messages",
    ]
    assert report.lines("invalid_dpo_output") == [3, 3, 4, 5, 6, 7, 8]
    assert messages_of(report, "invalid_dpo_output") == [
        "preferred_output has 0 messages; it must hold exactly one assistant message",
        "non_preferred_output has 0 messages; it must hold exactly one assistant message",
        "preferred_output is an object; it must be an array",
        "non_preferred_output has 0 messages; it must hold exactly one assistant message",
        "non_preferred_output is missing",
        'preferred_output message 1 has role "user", not assistant',
        "preferred_output has 2 messages; it must hold exactly one assistant message",
    ]
    assert report.format == "dpo"


def test_dpo_messages_use_the_chat_message_rules() -> None:
    examples = [
        dpo(1, input={"messages": [{"role": "human", "content": "x"}]}),
        dpo(2, preferred_output=[{"role": "assistant", "content": 3}]),
        dpo(3, input={"messages": [{"role": "user", "content": "x"}], "seed": 1}),
        dpo(4) | {"metadata": {}},
    ]
    report = validate(file_of(examples, dpo), model_id=GPT4O)
    assert codes(report) == {
        "invalid_role": 1,
        "invalid_content": 1,
        "unknown_top_level_key": 2,
    }
    assert messages_of(report, "invalid_role")[0].startswith('input message 1 has role "human"')
    assert messages_of(report, "invalid_content") == [
        "preferred_output message 1: content is a number; expected a string or an array"
    ]
    assert messages_of(report, "unknown_top_level_key") == [
        'unknown key "input.seed"',
        'unknown key "metadata"',
    ]


def test_dpo_needs_a_model_that_supports_it() -> None:
    data = file_of([], dpo)
    report = validate(data, model_id=GPT35)
    assert codes(report) == {"dpo_not_supported": 60}
    assert report.lines("dpo_not_supported") == list(range(1, 21))
    assert messages_of(report, "dpo_not_supported")[0] == (
        "preference (DPO) example; gpt-3.5-turbo-0125 does not support DPO"
    )
    assert validate(data, model_id="gpt-4.1-mini-2025-04-14").is_valid


def test_legacy_format_is_a_warning_for_babbage_and_davinci() -> None:
    data = file_of([], legacy)
    for model_id in (BABBAGE, "davinci-002", None):
        report = validate(data, model_id=model_id)
        assert codes(report) == {"legacy_format": 60}, model_id
        assert report.findings["legacy_format"].severity is Severity.WARNING
        assert report.is_valid
        assert report.format == "legacy_completion"


def test_legacy_format_is_an_error_for_chat_models() -> None:
    report = validate(file_of([], legacy), model_id=GPT4O)
    assert codes(report) == {"legacy_format_not_supported": 60}
    assert not report.is_valid
    assert messages_of(report, "legacy_format_not_supported")[0] == (
        "prompt/completion example; gpt-4o-2024-08-06 needs the chat messages format"
    )


def test_chat_is_an_error_for_legacy_models() -> None:
    report = validate(file_of([], simple), model_id=BABBAGE)
    assert codes(report) == {"chat_format_not_supported": 60}
    assert report.lines("chat_format_not_supported") == list(range(1, 21))


def test_legacy_examples_need_string_prompt_and_completion() -> None:
    examples = [{"prompt": "x"}, {"prompt": 1, "completion": "y"}, legacy(3) | {"extra": 1}]
    report = validate(file_of(examples, legacy), model_id=BABBAGE)
    assert codes(report) == {
        "invalid_legacy_example": 2,
        "unknown_top_level_key": 1,
        "legacy_format": 60,
    }
    assert messages_of(report, "invalid_legacy_example") == [
        "completion is missing; it must be a string",
        "prompt is a number; it must be a string",
    ]


def test_mixed_formats_flag_the_minority_lines() -> None:
    examples = [simple(1), dpo(2), simple(3), legacy(4), dpo(5)]
    report = validate(file_of(examples, simple), model_id=GPT4O)
    assert report.format == "mixed"
    assert codes(report) == {"mixed_formats": 3, "legacy_format_not_supported": 1}
    assert report.lines("mixed_formats") == [2, 4, 5]
    assert messages_of(report, "mixed_formats") == [
        "preference (DPO) example in a file of mostly chat examples",
        "prompt/completion example in a file of mostly chat examples",
        "preference (DPO) example in a file of mostly chat examples",
    ]
    assert report.format_counts == {"chat": 57, "dpo": 2, "legacy_completion": 1}


def test_mixed_formats_tie_goes_to_the_format_seen_first() -> None:
    report = validate(jsonl([dpo(i) for i in range(5)] + [simple(i) for i in range(5)]))
    assert report.lines("mixed_formats") == [6, 7, 8, 9, 10]
    assert messages_of(report, "mixed_formats")[0] == (
        "chat example in a file of mostly preference (DPO) examples"
    )


@pytest.mark.parametrize(
    ("examples", "expected"),
    [
        ([simple(1)], "chat"),
        ([simple(1) | {"tools": []}], "chat_tools"),
        (
            [
                {
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {"type": "image_url", "image_url": {"url": "https://a.b/c"}}
                            ],
                        },
                        {"role": "assistant", "content": "x"},
                    ],
                    "tools": [],
                }
            ],
            "vision",
        ),
        ([dpo(1)], "dpo"),
        ([legacy(1)], "legacy_completion"),
        ([{"x": 1}], "unknown"),
        ([], "unknown"),
        ([simple(1), legacy(2)], "mixed"),
    ],
)
def test_file_format_detection(examples: list[Any], expected: str) -> None:
    assert validate(jsonl(examples)).format == expected


def test_chat_variants_do_not_count_as_mixed() -> None:
    tools = simple(2) | {"tools": []}
    report = validate(jsonl([simple(1), tools] * 30), model_id=GPT4O)
    assert report.format == "chat_tools"
    assert "mixed_formats" not in report.findings

"""Issue 14.2: empty assistant replies are errors; weight 1.0/0.0 and text spelling a special
token are accepted with an info note (which never blocks a launch)."""

from __future__ import annotations

from typing import Any

import pytest

from datasets.validation import CATEGORIES, Report, Severity

from .helpers import BABBAGE, GPT4O_MINI, GPT35, codes, jsonl, messages_of, padded, validate

USER = {"role": "user", "content": "hi"}
ASSISTANT = {"role": "assistant", "content": "hello"}
CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def msgs(*messages: Any) -> dict[str, Any]:
    return {"messages": list(messages)}


def check(*examples: Any, model_id: str = GPT4O_MINI) -> Report:
    return validate(jsonl(padded(list(examples))), model_id)


def test_an_assistant_message_with_empty_content_is_an_error() -> None:
    report = check(
        msgs(USER, {"role": "assistant", "content": ""}),
        msgs(USER, ASSISTANT, USER, {"role": "assistant", "content": "", "weight": 0}),
        msgs(USER, {"role": "assistant", "content": "", "tool_calls": [CALL]}, ASSISTANT),  # fine
        msgs(USER, {"role": "assistant", "content": "", "function_call": CALL["function"]}),
        msgs({"role": "system", "content": ""}, USER, ASSISTANT),  # not an assistant reply
        msgs(USER, {"role": "assistant", "content": " "}),  # not empty
        {
            "input": msgs(USER),
            "preferred_output": [{"role": "assistant", "content": ""}],
            "non_preferred_output": [ASSISTANT],
        },
    )
    assert report.count("empty_assistant_content") == 3
    assert report.lines("empty_assistant_content") == [1, 2, 7]
    assert messages_of(report, "empty_assistant_content") == [
        "message 2 (assistant) has empty content and no tool call",
        "message 4 (assistant) has empty content and no tool call",
        "preferred_output message 1 (assistant) has empty content and no tool call",
    ]
    assert CATEGORIES["empty_assistant_content"].severity is Severity.ERROR
    assert not report.is_valid


@pytest.mark.parametrize("weight", [1.0, 0.0])
def test_weight_written_as_a_decimal_is_accepted_with_a_note(weight: float) -> None:
    report = check(msgs(USER, ASSISTANT | {"weight": weight}, USER, ASSISTANT))
    assert codes(report) == {"decimal_weight": 1}
    assert messages_of(report, "decimal_weight") == [
        f"message 2: weight {weight!r} is the number {int(weight)}; accepted"
    ]
    assert report.findings["decimal_weight"].severity is Severity.INFO
    assert report.is_valid and report.error_count == report.warning_count == 0
    # Trained exactly like the integer: 1.0 trains the message, 0.0 leaves it out.
    plain = check(msgs(USER, ASSISTANT | {"weight": int(weight)}, USER, ASSISTANT))
    assert report.tokens.trained.total == plain.tokens.trained.total
    other = check(msgs(USER, ASSISTANT | {"weight": 1 - int(weight)}, USER, ASSISTANT))
    assert report.tokens.trained.total != other.tokens.trained.total


def test_other_decimal_weights_stay_errors() -> None:
    report = check(msgs(USER, ASSISTANT | {"weight": 0.5}), msgs(USER, ASSISTANT | {"weight": 2.0}))
    assert codes(report) == {"invalid_weight": 2}


def test_text_spelling_a_special_token_gets_a_note() -> None:
    report = check(
        msgs(USER | {"content": "end here <|endoftext|> please"}, ASSISTANT),
        msgs(USER, ASSISTANT | {"content": "done<|endofprompt|>"}),
        msgs(USER, {"role": "assistant", "content": [{"type": "text", "text": "<|endoftext|>"}]}),
        msgs(USER, ASSISTANT | {"content": "<|im_start|> is not special in o200k"}),
        msgs(USER, ASSISTANT | {"content": "no token: <| endoftext |>"}),
    )
    assert codes(report) == {"special_token_text": 3}
    assert report.lines("special_token_text") == [1, 2, 3]
    assert messages_of(report, "special_token_text") == [
        "message 1: text contains <|endoftext|>, counted as ordinary text",
        "message 2: text contains <|endofprompt|>, counted as ordinary text",
        "message 2 part 1: text contains <|endoftext|>, counted as ordinary text",
    ]
    assert report.findings["special_token_text"].severity is Severity.INFO
    assert report.is_valid


def test_special_tokens_spelled_with_json_escapes_get_the_note_too() -> None:
    # "<" and "|" written as \u escapes: the decoded strings spell the token all the same.
    lines = [
        rb'{"messages": [{"role": "user", "content": "a \u003c|endoftext|> b"},'
        rb' {"role": "assistant", "content": "ok"}]}',
        rb'{"messages": [{"role": "user", "content": "hi"},'
        rb' {"role": "assistant", "content": "<\u007Cendofprompt|>"}]}',
        rb'{"messages": [{"role": "user", "content": "\u003C\u007cendoftext\u007c>"},'
        rb' {"role": "assistant", "content": "ok"}]}',
        rb'{"messages": [{"role": "user", "content": "\u00e9 <\u00a6endoftext|>"},'
        rb' {"role": "assistant", "content": "ok"}]}',
    ]
    report = validate(b"\n".join(lines) + b"\n")
    assert report.lines("special_token_text") == [1, 2, 3]
    assert messages_of(report, "special_token_text") == [
        "message 1: text contains <|endoftext|>, counted as ordinary text",
        "message 2: text contains <|endofprompt|>, counted as ordinary text",
        "message 1: text contains <|endoftext|>, counted as ordinary text",
    ]


def test_special_tokens_follow_the_models_encoding() -> None:
    fim = msgs(USER | {"content": "<|fim_prefix|>def f():"}, ASSISTANT)
    assert check(fim, model_id=GPT35).count("special_token_text") == 1  # cl100k_base
    assert check(fim, model_id=GPT4O_MINI).count("special_token_text") == 0  # o200k_base


def test_legacy_prompt_and_completion_are_checked_for_special_tokens() -> None:
    lines = [{"prompt": f"q{i} ->", "completion": f" a{i}<|endoftext|>"} for i in range(60)]
    report = validate(jsonl(lines), BABBAGE)
    assert report.count("special_token_text") == 60
    assert messages_of(report, "special_token_text")[0] == (
        "completion: text contains <|endoftext|>, counted as ordinary text"
    )


def test_notes_are_listed_after_errors_and_warnings_and_survive_storage() -> None:
    report = check(
        msgs(USER, ASSISTANT | {"weight": 1.0}),
        msgs(USER, {"role": "assistant", "content": ""}),
        msgs(USER, ASSISTANT | {"unknown": 1}),
    )
    order = [group.severity for group in report.findings.values()]
    assert order == sorted(order, key=[Severity.ERROR, Severity.WARNING, Severity.INFO].index)
    assert Severity.INFO in order
    stored = report.to_dict()
    assert stored["info_count"] == 1
    assert Report.from_dict(stored).findings.keys() == report.findings.keys()

"""Requirement 3, chat rules: messages, roles, keys, content, weight, tools."""

from __future__ import annotations

from typing import Any

from datasets.validation import Severity

from .helpers import chat, codes, jsonl, messages_of, padded, simple, validate


def msgs(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"messages": list(messages), **extra}


USER = {"role": "user", "content": "hi"}
ASSISTANT = {"role": "assistant", "content": "hello"}


def check(*examples: Any) -> Any:
    """Validate the examples as lines 1..n of a 60-line file."""
    return validate(jsonl(padded(list(examples))))


def test_all_roles_and_keys_that_are_allowed() -> None:
    report = check(
        msgs(
            {"role": "system", "content": "be brief", "name": "sys"},
            {"role": "developer", "content": "dev note"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "bob"},
            {"role": "assistant", "content": "draft", "weight": 0},
            {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"x": 1}'},
                    }
                ],
            },
            {"role": "tool", "content": "42", "tool_call_id": "c1"},
            {"role": "assistant", "content": "done", "weight": 1, "refusal": "no"},
        ),
        msgs(USER, ASSISTANT, tools=[], parallel_tool_calls=True),
    )
    assert codes(report) == {}
    assert report.format == "chat_tools"
    # Declaring tools (even an empty list) makes a line a tools example.
    assert report.format_counts == {"chat": 58, "chat_tools": 2}


def test_messages_must_be_a_non_empty_list() -> None:
    report = check({"messages": []}, {"messages": {"role": "user"}}, {"messages": None})
    assert codes(report) == {"invalid_messages": 3}
    assert report.lines("invalid_messages") == [1, 2, 3]
    assert messages_of(report, "invalid_messages") == [
        "messages is an empty array; it must be a non-empty array",
        "messages is an object; it must be a non-empty array",
        "messages is null; it must be a non-empty array",
    ]


def test_message_must_be_an_object() -> None:
    report = check(msgs(USER, "hello", ASSISTANT), msgs(USER, ASSISTANT, [1]))
    assert codes(report) == {"message_not_object": 2}
    assert report.lines("message_not_object") == [1, 2]
    assert messages_of(report, "message_not_object") == [
        "message 2 is a string, not an object",
        "message 3 is an array, not an object",
    ]


def test_roles_must_be_known() -> None:
    report = check(
        msgs({"role": "bot", "content": "x"}, ASSISTANT),
        msgs({"content": "no role"}, ASSISTANT),
        msgs({"role": 3, "content": "x"}, ASSISTANT),
        msgs({"role": "User", "content": "x"}, ASSISTANT),
    )
    assert codes(report) == {"invalid_role": 4}
    assert report.lines("invalid_role") == [1, 2, 3, 4]
    assert messages_of(report, "invalid_role")[:2] == [
        'message 1 has role "bot"; expected one of system, developer, user, assistant, '
        "tool, function",
        "message 1 has no role",
    ]


def test_only_known_keys_per_role() -> None:
    report = check(
        msgs({"role": "user", "content": "x", "tool_calls": []}, ASSISTANT),
        msgs({"role": "user", "content": "x", "metadata": {}}, ASSISTANT),
        msgs(USER, {"role": "assistant", "content": "x", "tool_call_id": "c"}),
        msgs({"role": "system", "content": "x", "refusal": "no"}, USER, ASSISTANT),
    )
    assert codes(report) == {"invalid_message_key": 4}
    assert report.lines("invalid_message_key") == [1, 2, 3, 4]
    assert messages_of(report, "invalid_message_key") == [
        'message 1: "tool_calls" is not allowed on user messages',
        'message 1: unknown key "metadata"',
        'message 2: "tool_call_id" is not allowed on assistant messages',
        'message 1: "refusal" is not allowed on system messages',
    ]


def test_content_types() -> None:
    report = check(
        msgs({"role": "user", "content": 5}, ASSISTANT),
        msgs({"role": "user", "content": {"text": "x"}}, ASSISTANT),
        msgs({"role": "user", "content": []}, ASSISTANT),
    )
    assert codes(report) == {"invalid_content": 3}
    assert report.lines("invalid_content") == [1, 2, 3]
    assert messages_of(report, "invalid_content") == [
        "message 1: content is a number; expected a string or an array",
        "message 1: content is an object; expected a string or an array",
        "message 1: content is an empty array",
    ]


def test_null_or_missing_content_only_with_a_call() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    report = check(
        msgs({"role": "user", "content": None}, ASSISTANT),
        msgs({"role": "user"}, ASSISTANT),
        msgs(USER, {"role": "assistant", "content": None}),
        msgs(USER, {"role": "assistant", "tool_calls": [call]}),  # fine
        msgs(USER, {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}),
    )
    assert codes(report) == {"missing_content": 3, "deprecated_function_calling": 1}
    assert report.lines("missing_content") == [1, 2, 3]
    assert messages_of(report, "missing_content") == [
        "message 1 (user) has null content",
        "message 1 (user) has no content",
        "message 2 (assistant) has null content",
    ]
    assert report.lines("deprecated_function_calling") == [5]


def test_content_parts() -> None:
    report = check(
        msgs({"role": "user", "content": ["plain string"]}, ASSISTANT),
        msgs({"role": "user", "content": [{"type": "audio", "audio": "x"}]}, ASSISTANT),
        msgs({"role": "user", "content": [{"type": "text"}]}, ASSISTANT),
        msgs({"role": "user", "content": [{"type": "text", "text": "a", "x": 1}]}, ASSISTANT),
        msgs(
            {
                "role": "system",
                "content": [{"type": "image_url", "image_url": {"url": "https://a.b/c.png"}}],
            },
            USER,
            ASSISTANT,
        ),
    )
    assert codes(report) == {"invalid_content_part": 5, "vision_not_supported": 1}
    assert report.lines("invalid_content_part") == [1, 2, 3, 4, 5]
    assert messages_of(report, "invalid_content_part") == [
        "message 1 part 1 is a string, not an object",
        'message 1 part 1: type "audio" is not text or image_url',
        "message 1 part 1: text part needs a string text",
        'message 1 part 1: unexpected key(s) "x"',
        "message 1 part 1: images are only allowed in user messages",
    ]


def test_weight_only_0_or_1_on_assistant() -> None:
    report = check(
        msgs(USER, ASSISTANT | {"weight": True}, ASSISTANT),
        msgs(USER, ASSISTANT | {"weight": "1"}),
        msgs(USER, ASSISTANT | {"weight": 0.5}),
        msgs(USER, ASSISTANT | {"weight": 2}),
        msgs(USER | {"weight": 1}, ASSISTANT),
        msgs(USER, ASSISTANT | {"weight": 1.5}),
    )
    assert codes(report) == {"invalid_weight": 6}
    assert report.lines("invalid_weight") == [1, 2, 3, 4, 5, 6]
    assert messages_of(report, "invalid_weight") == [
        "message 2: weight must be 0 or 1, not True",
        'message 2: weight must be 0 or 1, not "1"',
        "message 2: weight must be 0 or 1, not 0.5",
        "message 2: weight must be 0 or 1, not 2",
        "message 1: weight is only allowed on assistant messages",
        "message 2: weight must be 0 or 1, not 1.5",
    ]


def test_at_least_one_trained_assistant_message() -> None:
    report = check(
        msgs(USER),
        msgs(USER, ASSISTANT | {"weight": 0}),
        msgs(USER, ASSISTANT | {"weight": 0}, USER, ASSISTANT | {"weight": 1}),  # fine
        msgs({"role": "system", "content": "s"}, USER),
    )
    assert codes(report) == {"no_trainable_assistant": 3}
    assert report.lines("no_trainable_assistant") == [1, 2, 4]
    assert messages_of(report, "no_trainable_assistant") == [
        "no assistant message to train on",
        "every assistant message has weight 0",
        "no assistant message to train on",
    ]


def test_tool_calls_must_be_well_formed() -> None:
    good = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}

    def with_calls(calls: Any) -> dict[str, Any]:
        return msgs(USER, {"role": "assistant", "tool_calls": calls}, ASSISTANT)

    report = check(
        with_calls([good]),  # fine
        with_calls([]),
        with_calls({"id": "c1"}),
        with_calls(["c1"]),
        with_calls([good | {"id": ""}]),
        with_calls([good | {"type": "code"}]),
        with_calls([good | {"function": {"name": "f", "arguments": {"x": 1}}}]),
        with_calls([good | {"function": {"name": "f", "arguments": "{x: 1}"}}]),
        with_calls([good | {"function": {"arguments": "{}"}}]),
        with_calls([good | {"extra": 1}]),
    )
    assert report.count("invalid_tool_calls") == 9
    assert report.lines("invalid_tool_calls") == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert messages_of(report, "invalid_tool_calls") == [
        "message 2: tool_calls is an empty array",
        "message 2: tool_calls is an object",
        "message 2 tool call 1 is a string, not an object",
        "message 2 tool call 1: id must be a non-empty string",
        'message 2 tool call 1: type must be "function", not "code"',
        "message 2 tool call 1: arguments must be a string holding JSON",
        'message 2 tool call 1: arguments is not valid JSON: "{x: 1}"',
        "message 2 tool call 1: name must be a non-empty string",
        'message 2 tool call 1: unexpected key(s) "extra"',
    ]
    # An empty or malformed tool_calls still counts as carrying a call: no content error.
    assert set(codes(report)) == {"invalid_tool_calls"}


def test_tool_messages_need_a_string_tool_call_id() -> None:
    report = check(
        msgs(USER, {"role": "tool", "content": "42"}, ASSISTANT),
        msgs(USER, {"role": "tool", "content": "42", "tool_call_id": 7}, ASSISTANT),
        msgs(USER | {"name": ["x"]}, ASSISTANT),
        msgs(USER, ASSISTANT | {"refusal": 1}),
    )
    assert codes(report) == {"invalid_message_field": 4}
    assert messages_of(report, "invalid_message_field") == [
        "message 2: tool message needs a tool_call_id",
        "message 2: tool message tool_call_id must be a string",
        "message 1: name must be a string",
        "message 2: refusal must be a string",
    ]


def test_function_call_and_functions_are_checked_and_deprecated() -> None:
    functions = [{"name": "f", "parameters": {"type": "object"}}]
    report = check(
        msgs(
            USER,
            {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
            {"role": "function", "name": "f", "content": "1"},
            ASSISTANT,
            functions=functions,
        ),
        msgs(USER, {"role": "assistant", "function_call": {"name": "f"}}, ASSISTANT),
        msgs(USER, {"role": "assistant", "function_call": "f"}, ASSISTANT),
        msgs(USER, {"role": "function", "content": "1"}, ASSISTANT),
        msgs(USER, ASSISTANT, functions={"name": "f"}),
        msgs(USER, ASSISTANT, functions=[{"description": 3}]),
    )
    assert codes(report) == {
        "deprecated_function_calling": 6,
        "invalid_function_call": 2,
        "invalid_message_field": 1,
        "invalid_functions": 3,
    }
    assert report.findings["deprecated_function_calling"].severity is Severity.WARNING
    assert report.lines("invalid_function_call") == [2, 3]
    assert messages_of(report, "invalid_function_call") == [
        "message 2: function_call arguments must be a string holding JSON",
        "message 2: function_call must be an object",
    ]
    assert messages_of(report, "invalid_message_field") == [
        "message 2: function messages need a name"
    ]
    assert report.lines("invalid_functions") == [5, 6, 6]
    assert messages_of(report, "invalid_functions") == [
        "functions is an object; it must be an array",
        "functions[1]: name must be a non-empty string",
        "functions[1]: description must be a string",
    ]


def test_tools_and_parallel_tool_calls_are_checked() -> None:
    tool = {
        "type": "function",
        "function": {"name": "f", "description": "d", "parameters": {"type": "object"}},
    }
    report = check(
        chat(("user", "x"), ("assistant", "y"), tools=[tool], parallel_tool_calls=False),
        chat(("user", "x"), ("assistant", "y"), tools=tool),
        chat(("user", "x"), ("assistant", "y"), tools=[tool | {"type": "retrieval"}]),
        chat(("user", "x"), ("assistant", "y"), tools=[{"type": "function"}]),
        chat(
            ("user", "x"),
            ("assistant", "y"),
            tools=[{"type": "function", "function": {"name": "f", "parameters": "{}"}}],
        ),
        chat(("user", "x"), ("assistant", "y"), parallel_tool_calls="yes"),
    )
    assert codes(report) == {"invalid_tools": 4, "invalid_parallel_tool_calls": 1}
    assert report.lines("invalid_tools") == [2, 3, 4, 5]
    assert messages_of(report, "invalid_tools") == [
        "tools is an object; it must be an array",
        'tools[1]: type must be "function"',
        "tools[1]: function must be an object",
        "tools[1]: parameters must be a JSON schema object",
    ]
    assert messages_of(report, "invalid_parallel_tool_calls") == [
        'parallel_tool_calls must be true or false, not "yes"'
    ]
    assert report.format == "chat_tools"


def test_unknown_top_level_keys_are_flagged() -> None:
    report = check(simple(1) | {"metadata": {"id": 1}, "Messages": []}, simple(2))
    assert codes(report) == {"unknown_top_level_key": 2}
    assert report.lines("unknown_top_level_key") == [1, 1]
    assert messages_of(report, "unknown_top_level_key") == [
        'unknown key "metadata"',
        'unknown key "Messages"',
    ]
    assert report.is_valid  # a warning: OpenAI ignores extra keys


def test_unknown_format_object() -> None:
    report = check({"text": "hello"}, {})
    assert codes(report) == {"unknown_format": 2}
    assert messages_of(report, "unknown_format") == [
        'object ("text") matches no known example format',
        "object (no keys) matches no known example format",
    ]
    assert report.format == "chat"  # the rest of the file decides

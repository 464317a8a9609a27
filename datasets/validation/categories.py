"""Finding categories: stable codes, their severity and the text the UI shows for them.

Codes are stored in reports (JSON) and may be matched by other code, so they never change
meaning once released; add new codes instead.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Severity(StrEnum):
    ERROR = "error"  # blocks launching a job
    WARNING = "warning"  # shown, does not block
    INFO = "info"  # accepted as it is; worth knowing


class CategoryInfo(NamedTuple):
    severity: Severity
    title: str
    explanation: str


E = Severity.ERROR
W = Severity.WARNING
I = Severity.INFO  # noqa: E741

CATEGORIES: dict[str, CategoryInfo] = {
    # --- file and line level
    "bom": CategoryInfo(
        W,
        "Byte order mark",
        "The file starts with a UTF-8 byte order mark. It is ignored, but some tools "
        "mishandle it; save the file as UTF-8 without BOM.",
    ),
    "invalid_utf8": CategoryInfo(
        E,
        "Invalid UTF-8",
        "The line contains bytes that are not valid UTF-8. Training files must be UTF-8 "
        "encoded text.",
    ),
    "lone_surrogate": CategoryInfo(
        E,
        "Invalid Unicode escape",
        "A string holds a \\uD800–\\uDFFF escape that is not half of a surrogate pair. It "
        "stands for no character, cannot be encoded as UTF-8 and breaks tools that read the "
        "text; fix the program that wrote the file (it split a character in two).",
    ),
    "line_too_long": CategoryInfo(
        E,
        "Line too long",
        "The line is larger than the validator accepts, so it was skipped without being "
        "read. Split the example or shrink embedded images.",
    ),
    "blank_line": CategoryInfo(
        W,
        "Blank line",
        "The line is empty or whitespace only. It is skipped; remove it to keep line "
        "numbers in error messages meaningful.",
    ),
    "invalid_json": CategoryInfo(
        E,
        "Not valid JSON",
        "Every line must be one complete JSON value (JSON Lines). Pretty-printed JSON "
        "spread over several lines, NaN/Infinity and trailing text are not allowed.",
    ),
    "not_an_object": CategoryInfo(
        E,
        "Not a JSON object",
        'Every line must be a JSON object such as {"messages": [...]}.',
    ),
    "too_few_examples": CategoryInfo(
        E, "Too few examples", "OpenAI requires at least 10 training examples."
    ),
    "few_examples": CategoryInfo(
        W,
        "Few examples",
        "Fewer than 50 examples. OpenAI reports clear improvements from 50 to 100 "
        "well-crafted examples; consider adding more.",
    ),
    "duplicate_example": CategoryInfo(
        W,
        "Duplicate example",
        "The line is byte-for-byte identical to an earlier line (ignoring surrounding "
        "whitespace). Duplicates over-weight those examples in training.",
    ),
    "too_many_image_examples": CategoryInfo(
        E,
        "Too many image examples",
        "A training file may contain at most 50,000 examples with images.",
    ),
    "unknown_format": CategoryInfo(
        E,
        "Unrecognised example",
        'The object has none of the keys of a known format: "messages" (chat), '
        '"input"/"preferred_output"/"non_preferred_output" (DPO) or '
        '"prompt"/"completion" (legacy).',
    ),
    "mixed_formats": CategoryInfo(
        E,
        "Mixed formats",
        "The file mixes example formats (chat, DPO, legacy prompt/completion). A training "
        "file must use one format; these lines differ from the file's main format.",
    ),
    "unknown_top_level_key": CategoryInfo(
        W,
        "Unknown top-level key",
        "The example has a key the format does not define. It is probably ignored or a typo.",
    ),
    "internal_error": CategoryInfo(
        E,
        "Validator error",
        "The validator failed on this line. This is a bug in the validator; the line "
        "could not be checked.",
    ),
    # --- chat
    "invalid_messages": CategoryInfo(
        E, "Invalid messages", '"messages" must be a non-empty list of message objects.'
    ),
    "message_not_object": CategoryInfo(
        E, "Message is not an object", "Every message must be a JSON object."
    ),
    "invalid_role": CategoryInfo(
        E,
        "Invalid role",
        'Every message needs a "role" of system, developer, user, assistant, tool or '
        "(deprecated) function.",
    ),
    "invalid_message_key": CategoryInfo(
        E,
        "Unexpected message key",
        "Messages may only carry the keys their role allows: role, content, name, weight, "
        "tool_calls, tool_call_id, function_call, refusal.",
    ),
    "missing_content": CategoryInfo(
        E,
        "Missing content",
        'A message needs "content"; only an assistant message carrying tool_calls or '
        "function_call may leave it null or out.",
    ),
    "invalid_content": CategoryInfo(
        E,
        "Invalid content",
        '"content" must be a string or a non-empty list of content parts.',
    ),
    "invalid_content_part": CategoryInfo(
        E,
        "Invalid content part",
        'A content part must be {"type": "text", "text": ...} or '
        '{"type": "image_url", "image_url": {"url": ...}}; images only in user '
        "messages.",
    ),
    "invalid_message_field": CategoryInfo(
        E,
        "Invalid message field",
        "name, refusal and tool_call_id must be strings; tool messages need a tool_call_id.",
    ),
    "invalid_weight": CategoryInfo(
        E,
        "Invalid weight",
        '"weight" is only allowed on assistant messages and must be the number 0 or 1.',
    ),
    "decimal_weight": CategoryInfo(
        I,
        "Weight written as a decimal",
        "weight 1.0 or 0.0 is the same JSON number as 1 or 0, and OpenAI's schema accepts it; "
        "it is read as 1 or 0. Writing 1 or 0 keeps the file acceptable to stricter tools.",
    ),
    "empty_assistant_content": CategoryInfo(
        E,
        "Empty assistant message",
        'An assistant message with "content": "" and no tool_calls or function_call gives '
        "the model nothing to learn but an empty answer; OpenAI rejects it. Write the reply, "
        "or leave the message out.",
    ),
    "special_token_text": CategoryInfo(
        I,
        "Text spells a special token",
        "The text contains a special token of the model's tokenizer, such as <|endoftext|>. "
        "It is counted and trained as ordinary text (several tokens), not as the token "
        "itself; remove it if it is a leftover end-of-text marker from another format.",
    ),
    "no_trainable_assistant": CategoryInfo(
        E,
        "No assistant message to train on",
        "Each example needs at least one assistant message whose weight is not 0.",
    ),
    "invalid_tool_calls": CategoryInfo(
        E,
        "Invalid tool_calls",
        'tool_calls must be a non-empty list of {"id", "type": "function", '
        '"function": {"name", "arguments"}} where arguments is a JSON string.',
    ),
    "invalid_function_call": CategoryInfo(
        E,
        "Invalid function_call",
        'function_call must be {"name", "arguments"} where arguments is a JSON string.',
    ),
    "invalid_tools": CategoryInfo(
        E,
        "Invalid tools",
        '"tools" must be a list of {"type": "function", "function": {"name", '
        '"description"?, "parameters"?}}.',
    ),
    "invalid_functions": CategoryInfo(
        E,
        "Invalid functions",
        '"functions" must be a list of {"name", "description"?, "parameters"?}.',
    ),
    "invalid_parallel_tool_calls": CategoryInfo(
        E, "Invalid parallel_tool_calls", '"parallel_tool_calls" must be true or false.'
    ),
    "deprecated_function_calling": CategoryInfo(
        W,
        "Deprecated function calling",
        'The example uses "functions", "function_call" or the "function" role, which '
        "OpenAI deprecated in favour of tools and tool_calls.",
    ),
    # --- vision
    "too_many_images": CategoryInfo(
        E, "Too many images", "An example may contain at most 10 images."
    ),
    "image_in_assistant": CategoryInfo(
        E, "Image in assistant message", "Assistant messages cannot contain images."
    ),
    "invalid_image_url": CategoryInfo(
        E,
        "Invalid image URL",
        "image_url.url must be an http(s) URL or a data URL (data:image/...;base64,...).",
    ),
    "invalid_image_detail": CategoryInfo(
        E, "Invalid image detail", 'image_url.detail must be "low", "high" or "auto".'
    ),
    "invalid_image_data": CategoryInfo(
        E,
        "Unreadable image",
        "The data URL is not valid base64 or does not contain a readable image.",
    ),
    "image_too_large": CategoryInfo(E, "Image too large", "Each image may be at most 10 MB."),
    "unsupported_image_format": CategoryInfo(
        E, "Unsupported image format", "Images must be JPEG, PNG or WEBP."
    ),
    "unsupported_image_mode": CategoryInfo(
        E, "Unsupported image mode", "Images must be in RGB or RGBA mode."
    ),
    # --- DPO and legacy
    "invalid_dpo_input": CategoryInfo(
        E,
        "Invalid DPO input",
        'A preference example needs "input": {"messages": [...]} with a non-empty '
        "list of messages.",
    ),
    "invalid_dpo_output": CategoryInfo(
        E,
        "Invalid DPO output",
        "preferred_output and non_preferred_output must each be a list holding exactly "
        "one assistant message.",
    ),
    "invalid_legacy_example": CategoryInfo(
        E,
        "Invalid prompt/completion example",
        'A legacy example needs string "prompt" and "completion" values.',
    ),
    "legacy_format": CategoryInfo(
        W,
        "Legacy prompt/completion format",
        "prompt/completion examples can only train babbage-002 and davinci-002; chat "
        "models need the messages format.",
    ),
    # --- model dependent
    "legacy_format_not_supported": CategoryInfo(
        E,
        "Format not supported by model",
        "The chosen model trains on chat examples; prompt/completion examples are only "
        "accepted by babbage-002 and davinci-002.",
    ),
    "chat_format_not_supported": CategoryInfo(
        E,
        "Format not supported by model",
        "babbage-002 and davinci-002 only accept prompt/completion examples.",
    ),
    "dpo_not_supported": CategoryInfo(
        E,
        "DPO not supported by model",
        "The chosen model cannot be trained with preference (DPO) examples.",
    ),
    "vision_not_supported": CategoryInfo(
        E,
        "Images not supported by model",
        "The chosen model cannot be fine-tuned on examples with images.",
    ),
    "exceeds_context": CategoryInfo(
        W,
        "Example longer than the training context",
        "The example has more tokens than the model's training context; it will be "
        "truncated from the end, so its last messages are not trained on.",
    ),
    # --- Together AI (its own rule set: datasets/validation/together.py). Shared file and
    # line problems (encoding, JSON, blank lines, duplicates) keep their codes above.
    "together_unknown_format": CategoryInfo(
        E,
        "Unrecognised example (Together AI)",
        'Together AI reads four formats, told apart by their keys: "messages" '
        '(conversational), "prompt" and "completion" (instruction), "text" (generic) and '
        '"input", "preferred_output" and "non_preferred_output" (preference, for DPO).',
    ),
    "together_ambiguous_format": CategoryInfo(
        E,
        "Two formats in one example (Together AI)",
        'The example holds the keys of two formats (e.g. both "text" and "messages"); '
        "Together AI rejects such a file. Remove the keys of the format you do not mean.",
    ),
    "together_mixed_formats": CategoryInfo(
        E,
        "Mixed formats (Together AI)",
        "A Together AI training file must use one format throughout; these lines differ "
        "from the file's main format.",
    ),
    "together_invalid_messages": CategoryInfo(
        E,
        "Invalid messages (Together AI)",
        '"messages" must be a non-empty list of message objects, each with a "role" and '
        'a "content".',
    ),
    "together_invalid_role": CategoryInfo(
        E,
        "Invalid role (Together AI)",
        "Every message needs a role of system, user, assistant or tool.",
    ),
    "together_role_order": CategoryInfo(
        E,
        "Roles out of turn (Together AI)",
        "A conversation starts with a system or user message and then alternates: no two "
        "messages in a row may have the same role. Together AI rejects other orders.",
    ),
    "together_no_assistant": CategoryInfo(
        E,
        "No assistant message (Together AI)",
        "A conversation needs at least one assistant message to train on.",
    ),
    "together_invalid_content": CategoryInfo(
        E,
        "Missing or empty content (Together AI)",
        'Every message needs a non-empty "content": a string, or a list of '
        '{"type": "text", "text": ...} / {"type": "image_url", "image_url": {"url": ...}} '
        "parts. Only an assistant message carrying tool_calls may leave it out.",
    ),
    "together_invalid_weight": CategoryInfo(
        E,
        "Invalid weight (Together AI)",
        '"weight" may be set on any message and must be the integer 0 (masked from the loss) or 1.',
    ),
    "together_invalid_instruction": CategoryInfo(
        E,
        "Invalid instruction example (Together AI)",
        '"prompt" and "completion" must be strings, and the completion must not be empty.',
    ),
    "together_invalid_text": CategoryInfo(
        E, "Invalid text example (Together AI)", '"text" must be a non-empty string.'
    ),
    "together_invalid_preference": CategoryInfo(
        E,
        "Invalid preference example (Together AI)",
        '"input" must be {"messages": [...]} not ending with an assistant message; '
        '"preferred_output" and "non_preferred_output" must each be a list of exactly one '
        "assistant message with string content.",
    ),
    "together_no_examples": CategoryInfo(
        E, "No examples (Together AI)", "Together AI needs at least one training example."
    ),
}

del E, W, I


def severity_of(code: str) -> Severity:
    return CATEGORIES[code].severity

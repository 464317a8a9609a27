"""Test examples from a chat dataset: the last assistant message is the reference, every message
before it the prompt. Pure functions over the file's lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from datasets.validation.jsontext import find_lone_surrogate, may_hold_lone_surrogates
from datasets.validation.lines import UTF8_BOM, OversizedLine, iter_chunks, iter_lines
from datasets.validation.tokens import count_tokens

# What chat completions accept in a message; training-only keys (``weight``) are dropped.
_MESSAGE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id")
TOKENS_PER_MESSAGE = 3
REPLY_PRIMER_TOKENS = 3
MAX_LINE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class TestExample:
    line_number: int
    messages: list[dict[str, Any]]
    reference: str


def content_text(content: Any) -> str | None:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        ]
        return "".join(texts) if texts else None
    return None


def example_from_obj(line_number: int, obj: Any) -> TestExample | None:
    """The test example of one parsed line, or None when the line is not a chat that ends with
    an assistant reply in text after at least one other message."""
    if not isinstance(obj, dict):
        return None
    messages = obj.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        return None
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        return None
    last = messages[-1]
    reference = content_text(last.get("content"))
    if last["role"] != "assistant" or reference is None:
        return None
    prompt = [{k: m[k] for k in _MESSAGE_KEYS if k in m} for m in messages[:-1]]
    return TestExample(line_number, prompt, reference)


def iter_examples(fh: BinaryIO) -> Iterator[tuple[int, TestExample | None]]:
    """(line number, example or None) for every non-blank line of a JSONL file. A line that
    cannot be sent as it is — too large, not JSON, or holding a lone surrogate (no character:
    it cannot be encoded for a request, nor stored) — is None."""
    for number, raw in enumerate(iter_lines(iter_chunks(fh), MAX_LINE_BYTES), 1):
        if isinstance(raw, OversizedLine):
            yield number, None
            continue
        if number == 1:
            raw = raw.removeprefix(UTF8_BOM)
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
            obj = json.loads(text)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            yield number, None
            continue
        if may_hold_lone_surrogates(text) and find_lone_surrogate(obj) is not None:
            yield number, None
            continue
        yield number, example_from_obj(number, obj)


def read_examples(fh: BinaryIO, *, limit: int) -> tuple[list[TestExample], int]:
    """Up to ``limit`` examples from the top of the file, and how many lines were skipped."""
    examples: list[TestExample] = []
    skipped = 0
    for _, example in iter_examples(fh):
        if example is None:
            skipped += 1
        elif len(examples) < limit:
            examples.append(example)
        else:
            break
    return examples, skipped


def message_tokens(messages: list[dict[str, Any]], encoding: str) -> int:
    """Prompt tokens of a chat request, the way OpenAI's cookbook counts them."""
    total = REPLY_PRIMER_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key in ("role", "name"):
            value = message.get(key)
            if isinstance(value, str):
                total += count_tokens(value, encoding)
        text = content_text(message.get("content"))
        if text:
            total += count_tokens(text, encoding)
    return total


def prompt_preview(messages: list[dict[str, Any]], limit: int = 160) -> str:
    """The last user message, shortened: how a row is named in lists and filters."""
    for message in reversed(messages):
        if message.get("role") == "user":
            text = content_text(message.get("content")) or ""
            return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""

"""The example browser: a page of lines or search hits, read lazily from the stored file and
turned into small view objects (chat bubbles) with every long string cut short.

Nothing here loads the whole file: a page seeks with the line index, a search streams lines
with a cap on hits and on bytes scanned per request. Images are never fetched: a remote URL
is shown as text, a data URL as its type and decoded size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from datasets.lineindex import seek_line
from datasets.validation.lines import OversizedLine, iter_chunks, iter_lines

PAGE_SIZE = 20
PREVIEW_LINE_BYTES = 8 << 20
TEXT_CHARS = 4000
RAW_CHARS = 2000
SEARCH_MAX_HITS = 20
SEARCH_MAX_BYTES = 128 << 20
MAX_QUERY_CHARS = 200
_UTF8_BOM = b"\xef\xbb\xbf"


def clip(text: str, limit: int = TEXT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


@dataclass
class Part:
    kind: str  # "text", "image" or "other"
    text: str = ""
    detail: str = ""


@dataclass
class ToolCall:
    name: str
    arguments: str
    id: str = ""


@dataclass
class Message:
    role: str
    parts: list[Part] = field(default_factory=list)
    weight_zero: bool = False
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str = ""
    name: str = ""
    refusal: str = ""


@dataclass
class Example:
    line: int
    kind: str  # chat, dpo, legacy, invalid, blank, oversized, other
    messages: list[Message] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    preferred: list[Message] = field(default_factory=list)
    non_preferred: list[Message] = field(default_factory=list)
    prompt: str = ""
    completion: str = ""
    raw: str = ""
    note: str = ""


def _text(value: object) -> str:
    if isinstance(value, str):
        return clip(value)
    return clip(json.dumps(value, ensure_ascii=False), RAW_CHARS)


def _image(url: object, detail: object) -> Part:
    if not isinstance(url, str):
        return Part("image", "image without a URL")
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        mime = header[5:].split(";", 1)[0] or "unknown type"
        stripped = payload.rstrip("=")
        size = len(stripped) * 3 // 4
        return Part("image", f"embedded {mime}, {size:,} bytes", str(detail or ""))
    return Part("image", clip(url, 300), str(detail or ""))


def _parts(content: object) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [Part("text", clip(content))]
    if not isinstance(content, list):
        return [Part("other", _text(content))]
    parts = []
    for item in content:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text":
            parts.append(Part("text", _text(item.get("text", ""))))
        elif kind == "image_url":
            image = item.get("image_url")
            image = image if isinstance(image, dict) else {}
            parts.append(_image(image.get("url"), image.get("detail")))
        else:
            parts.append(Part("other", _text(item)))
    return parts


def _tool_calls(message: dict[str, Any]) -> list[ToolCall]:
    calls = []
    raw_calls = message.get("tool_calls")
    for call in raw_calls if isinstance(raw_calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        function = function if isinstance(function, dict) else {}
        call_id = call.get("id", "") if isinstance(call, dict) else ""
        calls.append(
            ToolCall(
                str(function.get("name", "?")), _text(function.get("arguments", "")), str(call_id)
            )
        )
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        calls.append(ToolCall(str(legacy.get("name", "?")), _text(legacy.get("arguments", ""))))
    return calls


def _messages(value: object) -> list[Message]:
    out = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            out.append(Message("?", [Part("other", _text(item))]))
            continue
        out.append(
            Message(
                role=str(item.get("role", "?")),
                parts=_parts(item.get("content")),
                weight_zero=item.get("weight", 1) == 0,
                tool_calls=_tool_calls(item),
                tool_call_id=str(item.get("tool_call_id") or ""),
                name=str(item.get("name") or ""),
                refusal=_text(item["refusal"]) if item.get("refusal") else "",
            )
        )
    return out


def _tool_names(value: object) -> list[str]:
    names = []
    for tool in value if isinstance(value, list) else []:
        function = tool.get("function", tool) if isinstance(tool, dict) else {}
        name = function.get("name") if isinstance(function, dict) else None
        names.append(str(name or "?"))
    return names


def example_from_line(number: int, raw: bytes | OversizedLine) -> Example:
    if isinstance(raw, OversizedLine):
        return Example(
            number,
            "oversized",
            raw=clip(raw.prefix.decode("utf-8", "replace"), RAW_CHARS),
            note=f"line of {raw.size:,} bytes, too large to preview",
        )
    if number == 1:
        raw = raw.removeprefix(_UTF8_BOM)
    stripped = raw.strip()
    if not stripped:
        return Example(number, "blank", note="blank line")
    text = stripped.decode("utf-8", "replace")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return Example(number, "invalid", raw=clip(text, RAW_CHARS), note="not valid JSON")
    if not isinstance(obj, dict):
        return Example(number, "invalid", raw=clip(text, RAW_CHARS), note="not a JSON object")
    if "messages" in obj:
        return Example(
            number,
            "chat",
            messages=_messages(obj["messages"]),
            tools=_tool_names(obj.get("tools") or obj.get("functions")),
        )
    if "input" in obj or "preferred_output" in obj:
        source = obj.get("input")
        return Example(
            number,
            "dpo",
            messages=_messages(source.get("messages") if isinstance(source, dict) else None),
            preferred=_messages(obj.get("preferred_output")),
            non_preferred=_messages(obj.get("non_preferred_output")),
        )
    if "prompt" in obj or "completion" in obj:
        return Example(
            number,
            "legacy",
            prompt=_text(obj.get("prompt", "")),
            completion=_text(obj.get("completion", "")),
        )
    return Example(number, "other", raw=clip(text, RAW_CHARS), note="unrecognised example")


def examples_page(
    fh: BinaryIO, index: dict[str, list[int]] | None, first_line: int, count: int = PAGE_SIZE
) -> list[Example]:
    if not seek_line(fh, first_line, index):
        return []
    out = []
    lines = iter_lines(iter_chunks(fh), PREVIEW_LINE_BYTES)
    for number, raw in enumerate(lines, first_line):
        out.append(example_from_line(number, raw))
        if len(out) >= count:
            break
    return out


@dataclass
class SearchResult:
    hits: list[Example]
    next_line: int | None  # where to continue, None when the end of the file was reached
    scanned_from: int
    scanned_to: int


def _needles(query: str) -> list[bytes]:
    lowered = query.lower()
    needles = [lowered.encode()]
    # Files written with ensure_ascii=True spell "é" as "\u00e9".
    escaped = json.dumps(lowered)[1:-1].encode()
    if escaped not in needles:
        needles.append(escaped)
    return needles


def examples_search(
    fh: BinaryIO,
    index: dict[str, list[int]] | None,
    query: str,
    *,
    from_line: int = 1,
    max_hits: int = SEARCH_MAX_HITS,
    max_bytes: int = SEARCH_MAX_BYTES,
) -> SearchResult:
    """Lines containing ``query`` (ASCII case-insensitive), streaming from ``from_line``."""
    needles = _needles(query[:MAX_QUERY_CHARS])
    hits: list[Example] = []
    if not seek_line(fh, from_line, index):
        return SearchResult(hits, None, from_line, from_line - 1)
    scanned = 0
    number = from_line - 1
    lines = iter_lines(iter_chunks(fh), PREVIEW_LINE_BYTES)
    for number, raw in enumerate(lines, from_line):
        body = raw.prefix if isinstance(raw, OversizedLine) else raw
        scanned += (raw.size if isinstance(raw, OversizedLine) else len(raw)) + 1
        if any(needle in body.lower() for needle in needles):
            hits.append(example_from_line(number, raw))
        if len(hits) >= max_hits or scanned >= max_bytes:
            more = next(lines, None) is not None
            return SearchResult(hits, number + 1 if more else None, from_line, number)
    return SearchResult(hits, None, from_line, number)

"""The example browser: a page of lines or search hits, read lazily from the stored file and
turned into small view objects (chat bubbles), within fixed budgets whatever a line holds.

Nothing here loads the whole file: a page seeks with the line index, a search streams lines
with caps on hits, lines and bytes per request. A line is parsed only when it is small enough
(bytes, and an estimate of its JSON values made without parsing), a page parses at most
``PAGE_PREVIEW_BYTES``, and each example shows at most ``EXAMPLE_CHARS`` characters of text
and ``EXAMPLE_CHARS // ITEM_CHARS`` messages, parts and calls; what is cut is said, and the
raw line is a download away (``line_chunks``). Lone surrogates are shown as U+FFFD. Images
are never fetched: a remote URL is shown as text, a data URL as its type and decoded size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from datasets.lineindex import seek_line
from datasets.validation.jsontext import json_clip, may_hold_lone_surrogates, scrub
from datasets.validation.lines import OversizedLine

PAGE_SIZE = 20
# Vision lines embed base64 images, so lines can legitimately be a few MB.
PREVIEW_LINE_BYTES = 8 << 20
# Parsing builds one Python object per JSON value (a million-number array: ~1 GB of objects
# on a worker): lines estimated to hold more values than this are listed, not parsed.
PREVIEW_MAX_VALUES = 100_000
PAGE_PREVIEW_BYTES = 16 << 20
EXAMPLE_CHARS = 20_000
ITEM_CHARS = 100  # what a message, part, call or tool name costs of an example's budget
TEXT_CHARS = 4000
RAW_CHARS = 2000
LABEL_CHARS = 80
SEARCH_MAX_HITS = 20
SEARCH_MAX_BYTES = 32 << 20
SEARCH_MAX_LINES = 100_000
MAX_QUERY_CHARS = 200
READ_CHUNK = 1 << 20
_PREFIX_BYTES = 4096
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
    kind: str  # chat, dpo, legacy, invalid, blank, oversized, skipped, other
    messages: list[Message] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    preferred: list[Message] = field(default_factory=list)
    non_preferred: list[Message] = field(default_factory=list)
    prompt: str = ""
    completion: str = ""
    raw: str = ""
    note: str = ""
    truncated: bool = False  # shortened for display: the raw line has the rest
    bad_unicode: bool = False  # lone surrogates, shown as U+FFFD


_CUT_TEXT = "text cut short"


class _Budget:
    """What one example may still show, in characters; messages, parts, calls and tool names
    cost ``ITEM_CHARS`` each, so a million empty parts cost as much as a long text."""

    def __init__(self, chars: int = EXAMPLE_CHARS) -> None:
        self.left = chars
        self.omitted: list[str] = []

    @property
    def cut(self) -> bool:
        return bool(self.omitted)

    def item(self) -> bool:
        if self.left < ITEM_CHARS:
            return False
        self.left -= ITEM_CHARS
        return True

    def omit(self, count: int, what: str) -> None:
        self.omitted.append(f"{count:,} more {what}")

    def text(self, value: str, limit: int = TEXT_CHARS) -> str:
        room = max(0, min(limit, self.left))
        if len(value) > room and room < limit and _CUT_TEXT not in self.omitted:
            self.omitted.append(_CUT_TEXT)
        self.left -= min(len(value), room)
        return clip(value, room)

    def json(self, value: object, limit: int = RAW_CHARS) -> str:
        if isinstance(value, str):
            return self.text(value, limit)
        room = max(0, min(limit, self.left))
        text = json_clip(value, room) if room else "…"
        self.left -= len(text)
        return text


def _label(value: object) -> str:
    """A role, name or id: short whatever the file put there."""
    if isinstance(value, str):
        return clip(value, LABEL_CHARS)
    return json_clip(value, LABEL_CHARS)


def _image(url: object, detail: object, budget: _Budget) -> Part:
    detail_text = _label(detail) if detail else ""
    if not isinstance(url, str):
        return Part("image", "image without a URL")
    if url.startswith("data:"):
        header, comma, _ = url[:256].partition(",")
        mime = header[5:].split(";", 1)[0] or "unknown type"
        padding = 2 if url.endswith("==") else 1 if url.endswith("=") else 0
        size = max(0, len(url) - len(header) - len(comma) - padding) * 3 // 4
        return Part("image", f"embedded {_label(mime)}, {size:,} bytes", detail_text)
    return Part("image", budget.text(url, 300), detail_text)


def _limited(items: list[Any], what: str, budget: _Budget) -> Iterator[Any]:
    """``items`` while the budget has room for one more; the rest is counted as omitted."""
    for index, item in enumerate(items):
        if not budget.item():
            budget.omit(len(items) - index, what)
            return
        yield item


def _parts(content: object, budget: _Budget) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [Part("text", budget.text(content))]
    if not isinstance(content, list):
        return [Part("other", budget.json(content))]
    parts = []
    for item in _limited(content, "content parts not shown", budget):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text":
            parts.append(Part("text", budget.json(item.get("text", ""), TEXT_CHARS)))
        elif kind == "image_url":
            image = item.get("image_url")
            image = image if isinstance(image, dict) else {}
            parts.append(_image(image.get("url"), image.get("detail"), budget))
        else:
            parts.append(Part("other", budget.json(item)))
    return parts


def _tool_calls(message: dict[str, Any], budget: _Budget) -> list[ToolCall]:
    calls = []
    raw_calls = message.get("tool_calls")
    for call in _limited(
        raw_calls if isinstance(raw_calls, list) else [], "tool calls not shown", budget
    ):
        function = call.get("function") if isinstance(call, dict) else None
        function = function if isinstance(function, dict) else {}
        call_id = call.get("id", "") if isinstance(call, dict) else ""
        arguments = budget.json(function.get("arguments", ""))
        calls.append(ToolCall(_label(function.get("name", "?")), arguments, _label(call_id)))
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        arguments = budget.json(legacy.get("arguments", ""))
        calls.append(ToolCall(_label(legacy.get("name", "?")), arguments))
    return calls


def _messages(value: object, budget: _Budget) -> list[Message]:
    out = []
    items = value if isinstance(value, list) else []
    for item in _limited(items, "messages not shown", budget):
        if not isinstance(item, dict):
            out.append(Message("?", [Part("other", budget.json(item))]))
            continue
        refusal = item.get("refusal")
        out.append(
            Message(
                role=_label(item.get("role", "?")),
                parts=_parts(item.get("content"), budget),
                weight_zero=item.get("weight", 1) == 0,
                tool_calls=_tool_calls(item, budget),
                tool_call_id=_label(item.get("tool_call_id") or ""),
                name=_label(item.get("name") or ""),
                refusal=budget.json(refusal) if refusal else "",
            )
        )
    return out


def _tool_names(value: object, budget: _Budget) -> list[str]:
    names = []
    tools = value if isinstance(value, list) else []
    for tool in _limited(tools, "tools not named", budget):
        function = tool.get("function", tool) if isinstance(tool, dict) else {}
        name = function.get("name") if isinstance(function, dict) else None
        names.append(_label(name or "?"))
    return names


def _values_estimate(raw: bytes) -> int:
    """About how many JSON values a line holds, counted in C without parsing it (commas in
    strings count too: an over-estimate, on the safe side)."""
    return raw.count(b",") + raw.count(b"[") + raw.count(b"{")


@dataclass
class PagePreview:
    """What a page may still parse: lines after the budget are listed with a link only."""

    bytes_left: int = PAGE_PREVIEW_BYTES


def _unparsed(number: int, prefix: bytes, kind: str, note: str) -> Example:
    text = prefix[:_PREFIX_BYTES].decode("utf-8", "replace")
    return Example(number, kind, raw=clip(text, RAW_CHARS), note=note, truncated=True)


def example_from_line(
    number: int, raw: bytes | OversizedLine, page: PagePreview | None = None
) -> Example:
    if isinstance(raw, OversizedLine):
        note = f"line of {raw.size:,} bytes, too large to preview"
        return _unparsed(number, raw.prefix, "oversized", note)
    if number == 1:
        raw = raw.removeprefix(_UTF8_BOM)
    stripped = raw.strip()
    if not stripped:
        return Example(number, "blank", note="blank line")
    page = page or PagePreview()
    if len(stripped) > page.bytes_left:
        return _unparsed(
            number,
            stripped,
            "skipped",
            "not previewed: this page has read enough already; open the line on its own",
        )
    values = _values_estimate(stripped)
    if values > PREVIEW_MAX_VALUES:
        return _unparsed(
            number,
            stripped,
            "oversized",
            f"too many JSON values to preview (about {values:,})",
        )
    page.bytes_left -= len(stripped)
    text = stripped.decode("utf-8", "replace")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return Example(number, "invalid", raw=clip(text, RAW_CHARS), note="not valid JSON")
    if not isinstance(obj, dict):
        return Example(number, "invalid", raw=clip(text, RAW_CHARS), note="not a JSON object")
    bad_unicode = may_hold_lone_surrogates(text)
    if bad_unicode:
        scrub(obj)
    example = _example(number, obj, text, _Budget())
    example.bad_unicode = bad_unicode
    return example


def _example(number: int, obj: dict[str, Any], text: str, budget: _Budget) -> Example:
    if "messages" in obj:
        example = Example(
            number,
            "chat",
            messages=_messages(obj["messages"], budget),
            tools=_tool_names(obj.get("tools") or obj.get("functions"), budget),
        )
    elif "input" in obj or "preferred_output" in obj:
        source = obj.get("input")
        example = Example(
            number,
            "dpo",
            messages=_messages(
                source.get("messages") if isinstance(source, dict) else None, budget
            ),
            preferred=_messages(obj.get("preferred_output"), budget),
            non_preferred=_messages(obj.get("non_preferred_output"), budget),
        )
    elif "prompt" in obj or "completion" in obj:
        example = Example(
            number,
            "legacy",
            prompt=budget.json(obj.get("prompt", ""), TEXT_CHARS),
            completion=budget.json(obj.get("completion", ""), TEXT_CHARS),
        )
    else:
        return Example(number, "other", raw=clip(text, RAW_CHARS), note="unrecognised example")
    if budget.cut:
        example.truncated = True
        example.note = "shortened for display: " + ", ".join(budget.omitted)
    return example


# --- reading lines ---------------------------------------------------------------------------


def read_lines(
    fh: BinaryIO, index: dict[str, list[int]] | None, first: int, cap: int = PREVIEW_LINE_BYTES
) -> Iterator[tuple[int, bytes | OversizedLine]]:
    """(number, line) from line ``first`` on, without their b"\\n". A line longer than ``cap``
    is read no further than ``cap`` bytes: the next line is found with the line index (which
    has a checkpoint after any long line), so a page never reads a huge line through."""
    if not seek_line(fh, first, index):
        return
    number = first
    buf = b""
    start = 0  # where the current line starts in buf
    searched = 0  # buf[start:searched] holds no newline
    base = fh.tell()  # file offset of buf[0]
    while True:
        end = buf.find(b"\n", max(start, searched))
        if end >= 0:
            line = (
                buf[start:end]
                if end - start <= cap
                else OversizedLine(buf[start : start + _PREFIX_BYTES], end - start)
            )
            yield number, line
            number += 1
            start = searched = end + 1
            continue
        searched = len(buf)
        if len(buf) - start > cap:
            line_start = base + start
            prefix = buf[start : start + _PREFIX_BYTES]
            more = seek_line(fh, number + 1, index)
            yield number, OversizedLine(prefix, _line_size(fh, line_start, more))
            if not more:
                return
            number += 1
            buf, start, searched, base = b"", 0, 0, fh.tell()
            continue
        chunk = fh.read(READ_CHUNK)
        if not chunk:
            if start < len(buf):
                yield number, buf[start:]
            return
        base += start
        searched -= start
        buf = buf[start:] + chunk
        start = 0


def _line_size(fh: BinaryIO, line_start: int, more: bool) -> int:
    """Bytes of the line starting at ``line_start``, ``fh`` being at the next line's start
    (``more``) or at the end of the file."""
    if more:
        return fh.tell() - 1 - line_start
    end = fh.seek(0, 2)
    fh.seek(end - 1)
    return end - line_start - (1 if fh.read(1) == b"\n" else 0)


def examples_page(
    fh: BinaryIO, index: dict[str, list[int]] | None, first_line: int, count: int = PAGE_SIZE
) -> list[Example]:
    page = PagePreview()
    out = []
    for number, raw in read_lines(fh, index, first_line):
        out.append(example_from_line(number, raw, page))
        if len(out) >= count:
            break
    return out


def line_chunks(fh: BinaryIO, chunk_size: int = 1 << 16) -> Iterator[bytes]:
    """The bytes of the line ``fh`` is at, without its b"\\n", a chunk at a time (for a
    streamed download: a 30 MB line never sits in memory whole). Closes ``fh`` at the end."""
    try:
        while True:
            chunk = fh.read(chunk_size)
            if not chunk:
                return
            end = chunk.find(b"\n")
            if end >= 0:
                if end:
                    yield chunk[:end]
                return
            yield chunk
    finally:
        fh.close()


@dataclass
class SearchResult:
    hits: list[Example]
    next_line: int | None  # where to continue, None when the end of the file was reached
    scanned_from: int
    scanned_to: int


def _needles(query: str) -> list[bytes]:
    """How the query may be spelled in a raw line: a cheap filter before parsing a line."""
    lowered = query.lower()
    needles = [lowered.encode()]
    # Files written with ensure_ascii=True spell "é" as "\u00e9"; quotes, backslashes and
    # newlines in the text are escaped either way.
    for ensure_ascii in (True, False):
        escaped = json.dumps(lowered, ensure_ascii=ensure_ascii)[1:-1].encode()
        if escaped not in needles:
            needles.append(escaped)
    return needles


def _content_texts(content: object) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]


def _message_texts(messages: object) -> Iterator[str]:
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                yield from _content_texts(message.get("content"))


def example_texts(obj: dict[str, Any]) -> list[str] | None:
    """The message text of an example (what a person reads in the browser), or None when
    the line is in no known format and only its raw text can be searched."""
    if "messages" in obj:
        return list(_message_texts(obj["messages"]))
    if "input" in obj or "preferred_output" in obj:
        source = obj.get("input")
        texts = list(_message_texts(source.get("messages") if isinstance(source, dict) else None))
        texts += _message_texts(obj.get("preferred_output"))
        texts += _message_texts(obj.get("non_preferred_output"))
        return texts
    if "prompt" in obj or "completion" in obj:
        return [v for v in (obj.get("prompt"), obj.get("completion")) if isinstance(v, str)]
    return None


def _text_matches(number: int, raw: bytes | OversizedLine, lowered: str) -> bool:
    """Whether the query is in the line's message text, not in its keys or JSON syntax. A
    line that cannot be parsed here (too large, not JSON, no known format) has no message
    text: its raw text matched, and that is what the browser shows of it."""
    if isinstance(raw, OversizedLine):
        return True
    stripped = (raw.removeprefix(_UTF8_BOM) if number == 1 else raw).strip()
    if _values_estimate(stripped) > PREVIEW_MAX_VALUES:
        return True
    try:
        obj = json.loads(stripped.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return True
    texts = example_texts(obj) if isinstance(obj, dict) else None
    if texts is None:
        return True
    return any(lowered in text.lower() for text in texts)


def examples_search(
    fh: BinaryIO,
    index: dict[str, list[int]] | None,
    query: str,
    *,
    from_line: int = 1,
    max_hits: int = SEARCH_MAX_HITS,
    max_bytes: int = SEARCH_MAX_BYTES,
    max_lines: int = SEARCH_MAX_LINES,
) -> SearchResult:
    """Lines whose message text contains ``query`` (case-insensitive), streaming from
    ``from_line``; keys and JSON syntax do not count (``"role"`` finds no line for its key);
    a request stops after ``max_hits`` hits, ``max_lines`` lines or ``max_bytes`` bytes."""
    query = query[:MAX_QUERY_CHARS]
    needles = _needles(query)
    lowered = query.lower()
    hits: list[Example] = []
    page = PagePreview()
    scanned = 0
    number = from_line - 1
    lines = read_lines(fh, index, from_line)
    for number, raw in lines:
        body = raw.prefix if isinstance(raw, OversizedLine) else raw
        # An oversized line costs what was read of it, not its size.
        read = min(raw.size, PREVIEW_LINE_BYTES) if isinstance(raw, OversizedLine) else len(raw)
        scanned += read + 1
        if any(needle in body.lower() for needle in needles) and _text_matches(
            number, raw, lowered
        ):
            hits.append(example_from_line(number, raw, page))
        if len(hits) >= max_hits or scanned >= max_bytes or number - from_line + 1 >= max_lines:
            more = next(lines, None) is not None
            return SearchResult(hits, number + 1 if more else None, from_line, number)
    return SearchResult(hits, None, from_line, number)

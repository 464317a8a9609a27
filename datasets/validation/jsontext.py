"""Parsed JSON shown safely: excerpts whose cost is bounded by what they show, and lone
surrogates found and replaced.

JSON may escape any UTF-16 code unit, so ``"\\ud800"`` parses to a Python str holding a lone
surrogate: no character at all, which UTF-8 cannot encode, so it breaks whatever writes the
text out (a page, a database row, an HTTP request). A valid pair (``"\\ud83d\\ude00"``)
decodes to one character and is fine; Python's decoder never leaves half of a pair alone
unless the file did.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator

# A JSON escape of a UTF-16 surrogate, high or low (a cheap test on the raw text: lines
# without one cannot hold a lone surrogate, because strict UTF-8 never decodes to one).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")
# What PostgreSQL text and UTF-8 both refuse: lone surrogates and NUL.
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")
REPLACEMENT = "\ufffd"
ELLIPSIS = "…"
# Nesting shown by an excerpt before a container is abbreviated; also bounds the recursion of
# the lazy writer, whatever the value's depth.
EXCERPT_DEPTH = 32


def has_unicode_escape(json_line: bytes) -> bool:
    """Whether the JSON text has a \\u escape. A line has a few backslashes: visiting them
    with single-byte searches (memchr) is ten times faster than searching for the pair."""
    at = json_line.find(b"\\")
    while at >= 0:
        if json_line[at + 1 : at + 2] == b"u":
            return True
        at = json_line.find(b"\\", at + 2)  # past the escaped character, a backslash included
    return False


def may_hold_lone_surrogates(json_text: str) -> bool:
    """False when the JSON text escapes no surrogate, so its parsed value holds none."""
    return _SURROGATE_ESCAPE.search(json_text) is not None


def has_surrogates(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def scrub_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, the replacement character."""
    return _SURROGATE.sub(REPLACEMENT, text) if has_surrogates(text) else text


def storable_text(text: str) -> str:
    """``text`` with lone surrogates and NUL characters replaced by U+FFFD: what a page, a
    UTF-8 encoder and a PostgreSQL text column all accept (for text from a provider)."""
    return _UNSTORABLE.sub(REPLACEMENT, text)


def _key_path(path: tuple[object, ...]) -> str:
    out = []
    for step in path:
        if isinstance(step, int):
            out.append(f"[{step}]")
        elif isinstance(step, str) and step.isidentifier():
            out.append(f".{step}" if out else step)
        else:
            out.append(f"[{json_clip(step, 40)}]")
    return "".join(out) or "the line"


class _Path:
    """A linked path (parent, step): O(1) a node, spelled out only for the one reported."""

    __slots__ = ("parent", "step")

    def __init__(self, parent: _Path | None, step: object) -> None:
        self.parent = parent
        self.step = step

    def spell(self) -> str:
        steps: list[object] = []
        node: _Path | None = self
        while node is not None:
            steps.append(node.step)
            node = node.parent
        return _key_path(tuple(reversed(steps)))


def find_lone_surrogate(value: object) -> tuple[str, str] | None:
    """Where the first lone surrogate is, in document order: (path such as
    ``messages[1].content``, the surrogate as a JSON escape such as ``\\ud800``); None when
    there is none. Iterative: any nesting depth the parser accepted is fine."""
    stack: list[tuple[object, _Path | None]] = [(value, None)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            found = _SURROGATE.search(item)
            if found:
                where = path.spell() if path else "the line"
                return where, f"\\u{ord(found.group()):04x}"
        elif isinstance(item, dict):
            children: list[tuple[object, _Path | None]] = []
            for key, child in item.items():
                found = _SURROGATE.search(key)
                if found:
                    where = path.spell() if path else "the line"
                    return f"a key of {where}", f"\\u{ord(found.group()):04x}"
                children.append((child, _Path(path, key)))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend((item[i], _Path(path, i)) for i in range(len(item) - 1, -1, -1))
    return None


def scrub(value: object) -> object:
    """``value`` with every lone surrogate in its strings and keys replaced by U+FFFD. Lists
    and dicts are changed in place (the value is a fresh parse, owned by the caller)."""
    if isinstance(value, str):
        return scrub_text(value)
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            for i, child in enumerate(item):
                if isinstance(child, str):
                    item[i] = scrub_text(child)
                elif isinstance(child, dict | list):
                    stack.append(child)
        elif isinstance(item, dict):
            if any(has_surrogates(key) for key in item):
                pairs = [(scrub_text(k), v) for k, v in item.items()]
                item.clear()
                item.update(pairs)
            for key, child in item.items():
                if isinstance(child, str):
                    item[key] = scrub_text(child)
                elif isinstance(child, dict | list):
                    stack.append(child)
    return value


# --- bounded excerpts ------------------------------------------------------------------------


def _scalar(value: object, limit: int) -> str:
    if isinstance(value, str):
        # Only what can be shown is escaped: a 13 MB base64 string costs ``limit`` characters.
        return json.dumps(value[: limit + 1], ensure_ascii=False)
    if value is None or isinstance(value, bool | int | float):
        try:
            return json.dumps(value)
        except ValueError:  # an int past Python's digit limit
            return "…"
    return repr(value)[: limit + 1]


def _pieces(value: object, limit: int, depth: int) -> Generator[str, None, None]:
    """The JSON text of ``value`` in small pieces, produced lazily: a consumer that stops
    early has paid only for what it took."""
    if isinstance(value, dict):
        if not value:
            yield "{}"
            return
        if depth >= EXCERPT_DEPTH:
            yield "{…}"
            return
        yield "{"
        for index, (key, child) in enumerate(value.items()):
            if index:
                yield ", "
            yield _scalar(key, limit)
            yield ": "
            yield from _pieces(child, limit, depth + 1)
        yield "}"
    elif isinstance(value, list | tuple):
        if not value:
            yield "[]"
            return
        if depth >= EXCERPT_DEPTH:
            yield "[…]"
            return
        yield "["
        for index, child in enumerate(value):
            if index:
                yield ", "
            yield from _pieces(child, limit, depth + 1)
        yield "]"
    else:
        yield _scalar(value, limit)


def json_clip(value: object, limit: int) -> str:
    """The JSON text of ``value`` (``", "`` and ``": "`` separators, non-ASCII as is), cut to
    at most ``limit`` characters with a final "…" when it is longer. The work done is
    bounded by ``limit`` (times the nesting shown), not by the size of ``value``."""
    if not isinstance(value, dict | list | tuple):
        # The common case (a key, a role) without the generator: it is called per finding.
        text = _scalar(value, limit)
        return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS
    out: list[str] = []
    size = 0
    pieces = _pieces(value, limit, 0)
    for piece in pieces:
        out.append(piece)
        size += len(piece)
        if size > limit:
            pieces.close()
            text = "".join(out)
            return text[: limit - 1] + ELLIPSIS
    return "".join(out)

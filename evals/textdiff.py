"""Word-level diff of an output against its reference, for highlighting (pure: no Django).

Tokens are matched on their visible text but keep the whitespace that follows them, so the
segments reassemble both inputs exactly:

    "".join(text for op, text in diff if op != "delete") == output
    "".join(text for op, text in diff if op != "insert") == reference
"""

from __future__ import annotations

import re
from collections import Counter
from difflib import SequenceMatcher

Segment = tuple[str, str]
# (visible text, following whitespace); the visible text is what gets matched.
_Token = tuple[str, str]

# Above this size (either side) the diff is made over lines instead: coarser, but fast.
WORD_DIFF_LIMIT = 20_000

# Scripts written without spaces get one token per character; otherwise a whole Chinese
# sentence would be a single "word" and any change would highlight all of it.
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_WORD_RE = re.compile(rf"([{_UNSPACED}]|(?:(?![{_UNSPACED}])\w)+|[^\w\s])(\s*)")
_LEADING_SPACE_RE = re.compile(r"\s*")


def word_diff(reference: str, output: str) -> list[Segment]:
    """(op, text) segments, op in "equal", "insert" (only in output), "delete" (only in
    reference). Adjacent segments never share an op, texts are never empty, and within a
    changed stretch the deletion comes before the insertion.

    Words are compared when both texts are at most WORD_DIFF_LIMIT characters and the match
    stays within MATCH_BUDGET; otherwise whole lines are, and if even that is over budget,
    everything between the common first and last lines is marked changed. The segments
    rebuild both texts exactly in every case.
    """
    if reference == output:
        return [("equal", output)] if output else []
    if len(reference) <= WORD_DIFF_LIMIT and len(output) <= WORD_DIFF_LIMIT:
        old, new = _word_tokens(reference), _word_tokens(output)
        opcodes = _opcodes(old, new)
        if opcodes is not None:
            return _segments(old, new, opcodes)
    old, new = _line_tokens(reference), _line_tokens(output)
    opcodes = _opcodes(old, new)
    if opcodes is None:
        opcodes = _replace_middle(old, new)
    return _segments(old, new, opcodes)


def _word_tokens(text: str) -> list[_Token]:
    leading = _LEADING_SPACE_RE.match(text)
    start = leading.end() if leading else 0
    # Leading whitespace becomes a token with no visible text, so it can match its
    # counterpart on the other side like any other token.
    tokens: list[_Token] = [("", text[:start])] if start else []
    tokens.extend((m.group(1), m.group(2)) for m in _WORD_RE.finditer(text, start))
    return tokens


def _line_tokens(text: str) -> list[_Token]:
    tokens = []
    for line in text.splitlines(keepends=True):
        visible = line.rstrip()
        tokens.append((visible, line[len(visible) :]))
    return tokens


_Opcode = tuple[str, int, int, int, int]

# SequenceMatcher's cost is about the number of (old, new) token pairs with the same text.
# Degenerate outputs ("the the the ...") make that quadratic; past this budget (roughly half
# a second at worst) the diff gets coarser instead of slower.
MATCH_BUDGET = 1_000_000


def _opcodes(old: list[_Token], new: list[_Token]) -> list[_Opcode] | None:
    """Opcodes matching tokens by visible text, or None when that would take too long."""
    old_keys = [text for text, _ in old]
    new_keys = [text for text, _ in new]
    # Matching only what lies between the common start and end is both faster and what a
    # reader expects (an unchanged opening stays one block).
    prefix, suffix = _common_ends(old_keys, new_keys)
    old_mid = old_keys[prefix : len(old_keys) - suffix]
    new_mid = new_keys[prefix : len(new_keys) - suffix]
    if _match_cost(old_mid, new_mid) > MATCH_BUDGET:
        return None
    matcher = SequenceMatcher(None, old_mid, new_mid, autojunk=False)
    opcodes: list[_Opcode] = [("equal", 0, prefix, 0, prefix)]
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        opcodes.append((op, i1 + prefix, i2 + prefix, j1 + prefix, j2 + prefix))
    opcodes.append(("equal", len(old) - suffix, len(old), len(new) - suffix, len(new)))
    return opcodes


def _replace_middle(old: list[_Token], new: list[_Token]) -> list[_Opcode]:
    """Last resort: keep the common start and end, mark everything between as changed."""
    prefix, suffix = _common_ends([text for text, _ in old], [text for text, _ in new])
    old_end, new_end = len(old) - suffix, len(new) - suffix
    return [
        ("equal", 0, prefix, 0, prefix),
        ("replace", prefix, old_end, prefix, new_end),
        ("equal", old_end, len(old), new_end, len(new)),
    ]


def _common_ends(old: list[str], new: list[str]) -> tuple[int, int]:
    """Lengths of the common prefix and of the common suffix of what follows it."""
    prefix = _common_prefix(old, new)
    suffix = _common_prefix(old[prefix:][::-1], new[prefix:][::-1])
    return prefix, suffix


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _match_cost(old: list[str], new: list[str]) -> int:
    counts = Counter(new)
    return sum(counts[key] for key in old)


def _segments(old: list[_Token], new: list[_Token], opcodes: list[_Opcode]) -> list[Segment]:
    segments: list[Segment] = []
    for op, i1, i2, j1, j2 in opcodes:
        if op == "equal":
            for (text, old_space), (_, new_space) in zip(old[i1:i2], new[j1:j2], strict=True):
                segments.append(("equal", text))
                _add_space(segments, old_space, new_space)
        else:
            _add_change(segments, old[i1:i2], new[j1:j2])
    return _normalise(segments)


def _add_change(segments: list[Segment], old: list[_Token], new: list[_Token]) -> None:
    deleted, inserted = _join(old), _join(new)
    # Whitespace both sides end with is not part of the change: "Paris " -> "Lyon " should
    # highlight the words, not the space after them.
    shared = _common_whitespace_end(old[-1][1], new[-1][1]) if old and new else ""
    segments.append(("delete", deleted[: len(deleted) - len(shared)]))
    segments.append(("insert", inserted[: len(inserted) - len(shared)]))
    segments.append(("equal", shared))


def _common_whitespace_end(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return a[len(a) - n :]


def _add_space(segments: list[Segment], old_space: str, new_space: str) -> None:
    if old_space == new_space:
        segments.append(("equal", old_space))
    else:
        segments.append(("delete", old_space))
        segments.append(("insert", new_space))


def _join(tokens: list[_Token]) -> str:
    return "".join(text + space for text, space in tokens)


def _normalise(segments: list[Segment]) -> list[Segment]:
    """Drop empty texts, merge neighbours, and put each changed stretch's deletion first."""
    result: list[Segment] = []
    deleted: list[str] = []
    inserted: list[str] = []

    def flush() -> None:
        for op, parts in (("delete", deleted), ("insert", inserted)):
            if text := "".join(parts):
                result.append((op, text))
            parts.clear()

    for op, text in segments:
        if not text:
            continue
        if op == "equal":
            flush()
            _append(result, op, text)
        else:
            (deleted if op == "delete" else inserted).append(text)
    flush()
    return result


def _append(result: list[Segment], op: str, text: str) -> None:
    if result and result[-1][0] == op:
        result[-1] = (op, result[-1][1] + text)
    else:
        result.append((op, text))

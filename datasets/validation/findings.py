"""Findings and the bounded collector that records them while a file streams past."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .categories import CATEGORIES, Severity
from .jsontext import json_clip, scrub_text

MAX_EXAMPLES_PER_CATEGORY = 20
EXCERPT_CHARS = 200
MAX_MESSAGE_CHARS = 500


def make_excerpt(source: object) -> str:
    """Raw text (never escaped: that is the renderer's job), cut to EXCERPT_CHARS. Its cost
    is bounded by what it shows: a message holding a 13 MB base64 image, or a million-number
    array, is not copied or dumped in full just to show its first 200 characters."""
    if isinstance(source, bytes | bytearray | memoryview):
        # Decoding a bounded prefix keeps a 30 MB line from being decoded just for this.
        text = bytes(source[: EXCERPT_CHARS * 4]).decode("utf-8", "replace")
    elif isinstance(source, str):
        text = source[: EXCERPT_CHARS + 1]
    else:
        return scrub_text(json_clip(source, EXCERPT_CHARS))
    if len(text) > EXCERPT_CHARS:
        text = text[: EXCERPT_CHARS - 1] + "…"
    return scrub_text(text)


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    line: int | None  # 1-based; None for findings about the whole file
    excerpt: str
    message: str

    @property
    def title(self) -> str:
        return CATEGORIES[self.code].title

    def located_message(self) -> str:
        """One sentence naming the line, for API-style error texts."""
        if self.line is None:
            return self.message
        return f"Line {self.line}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "line": self.line,
            "excerpt": self.excerpt,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            code=data["code"],
            severity=Severity(data["severity"]),
            line=data["line"],
            excerpt=data["excerpt"],
            message=data["message"],
        )


@dataclass(slots=True)
class CategoryFindings:
    """Every occurrence is counted; only the first few are kept as examples."""

    code: str
    count: int = 0
    examples: list[Finding] = field(default_factory=list)

    @property
    def severity(self) -> Severity:
        return CATEGORIES[self.code].severity

    def to_dict(self) -> dict[str, Any]:
        info = CATEGORIES[self.code]
        return {
            "code": self.code,
            "severity": info.severity.value,
            "title": info.title,
            "count": self.count,
            "examples": [f.to_dict() for f in self.examples],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoryFindings:
        return cls(
            code=data["code"],
            count=data["count"],
            examples=[Finding.from_dict(f) for f in data["examples"]],
        )


_SEVERITY_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def sort_categories(groups: dict[str, CategoryFindings]) -> dict[str, CategoryFindings]:
    """Errors first, then warnings, then notes, each by code, so stored reports compare and diff stably."""
    ordered = sorted(groups.values(), key=lambda g: (_SEVERITY_RANK[g.severity], g.code))
    return {g.code: g for g in ordered}


class FindingCollector:
    def __init__(self) -> None:
        self.groups: dict[str, CategoryFindings] = {}

    def add(self, code: str, line: int | None, message: str, source: object = "") -> None:
        group = self.groups.get(code)
        if group is None:
            group = self.groups[code] = CategoryFindings(code)
        group.count += 1
        # The excerpt is built only for stored examples: a file with an error on every
        # line must not pay for a million excerpts.
        if len(group.examples) < MAX_EXAMPLES_PER_CATEGORY:
            info = CATEGORIES[code]
            # Messages quote values from the file: keep them short and storable as UTF-8.
            if len(message) > MAX_MESSAGE_CHARS:
                message = message[: MAX_MESSAGE_CHARS - 1] + "…"
            text = scrub_text(message)
            group.examples.append(Finding(code, info.severity, line, make_excerpt(source), text))

    def has_room(self, code: str) -> bool:
        """Whether the next finding of ``code`` would be kept as an example (its excerpt is
        worth building)."""
        group = self.groups.get(code)
        return group is None or len(group.examples) < MAX_EXAMPLES_PER_CATEGORY

    def merge(self, group: CategoryFindings) -> None:
        """Add the findings of a later part of the file: counts add up, the examples kept are
        still the first ones."""
        mine = self.groups.get(group.code)
        if mine is None:
            mine = self.groups[group.code] = CategoryFindings(group.code)
        mine.count += group.count
        room = MAX_EXAMPLES_PER_CATEGORY - len(mine.examples)
        if room > 0:
            mine.examples.extend(group.examples[:room])

    def set_group(self, group: CategoryFindings) -> None:
        if group.count:
            self.groups[group.code] = group
        else:
            self.groups.pop(group.code, None)

    def count(self, code: str) -> int:
        group = self.groups.get(code)
        return group.count if group else 0

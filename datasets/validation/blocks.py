"""One block of a large file, validated by the single pass's own per-line code.

A block is whole lines cut from the file (``lines.iter_blocks``); ``BlockValidation`` numbers
them from where the block starts and returns a ``BlockResult`` that ``parallel`` merges, in
file order, into the single pass's report.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from .dedupe import line_key
from .engine import FamilyState, Largest, Validation
from .findings import CategoryFindings
from .lines import OversizedLine, block_lines
from .report import Sample
from .stats import Distribution
from .tokens import RepeatCache


@dataclass(frozen=True, slots=True)
class BlockSettings:
    """What a process needs to validate blocks the same way as every other."""

    encoding: str
    max_line_bytes: int


@dataclass(slots=True)
class BlockResult:
    """What validating one block found, for the parent to merge in file order."""

    n_lines: int
    n_examples: int
    n_blank: int
    n_invalid: int
    findings: list[CategoryFindings]  # the first 20 of each kind in the block
    format_counts: dict[str, int]
    family_first: dict[str, int]
    samples: dict[str, list[Sample]]
    total: Distribution
    trained: Distribution
    messages: Distribution
    largest: list[Largest]
    # Per example, in file order: the key of its text, its line, where the line starts in the
    # block. Per image example: its line and where it starts.
    keys: array[int]
    key_lines: array[int]
    key_offsets: array[int]
    image_lines: array[int]
    image_offsets: array[int]
    # The other rule sets' findings, formats and tokens in the block, in ``RULE_SETS`` order.
    parts: list[FamilyState]


class BlockValidation(Validation):
    """The single pass over one block, leaving duplicates and the image cap to the merge."""

    def __init__(self, settings: BlockSettings, repeats: RepeatCache | None = None) -> None:
        super().__init__(
            encoding=settings.encoding,
            max_line_bytes=settings.max_line_bytes,
            threads=1,  # the other cores validate other blocks
            repeats=repeats,
        )
        self._offset = 0
        self._keys = array("Q")
        self._key_lines = array("Q")
        self._key_offsets = array("Q")
        self._image_lines = array("Q")
        self._image_offsets = array("Q")

    def run_block(self, block: bytes | OversizedLine, first_line: int) -> BlockResult:
        lines: Iterator[tuple[int, bytes | OversizedLine]] | list[tuple[int, OversizedLine]]
        if isinstance(block, OversizedLine):
            lines = [(0, block)]
        else:
            lines = block_lines(block, self.max_line_bytes)
        n_lines = 0
        try:
            for n_lines, (offset, raw) in enumerate(lines, 1):
                self._offset = offset
                self._safe_line(first_line + n_lines - 1, raw)
            self.tally.flush()
        finally:
            self.tally.close()
        return BlockResult(
            n_lines=n_lines,
            n_examples=self.n_examples,
            n_blank=self.n_blank,
            n_invalid=self.n_invalid,
            findings=list(self.findings.groups.values()),
            format_counts=self.format_counts,
            family_first=self._family_first,
            samples=self.samples,
            total=self.tokens.total,
            trained=self.tokens.trained,
            messages=self.tokens.messages,
            largest=self._largest,
            keys=self._keys,
            key_lines=self._key_lines,
            key_offsets=self._key_offsets,
            image_lines=self._image_lines,
            image_offsets=self._image_offsets,
            parts=[part.state for part in self.parts],
        )

    def _duplicate(self, number: int, stripped: bytes, text: str) -> None:
        self._keys.append(line_key(stripped))
        self._key_lines.append(number)
        self._key_offsets.append(self._offset)

    def _image_example(self, number: int, text: str) -> None:
        self._image_lines.append(number)
        self._image_offsets.append(self._offset)

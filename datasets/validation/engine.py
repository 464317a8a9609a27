"""The streaming validation pass: bytes in, ``Report`` out, memory bounded by the line cap.

One pass reads the source in chunks, splits lines, parses each as JSON, checks it, and batches
its strings for token counting. What is kept per example is a 64-bit hash (duplicates); all
other state — counts, value→frequency maps, the first 20 findings per category, the 20
longest examples — is bounded by constants or by the largest token count.

``parallel`` runs this same per-line code over blocks of a large file in several processes
and merges their results into what this single pass would have reported; the only findings
that need the whole file before them (duplicates, the image-example cap) go through the two
hooks ``_duplicate`` and ``_image_example``.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable

from .checks import FAMILY_CHAT, FAMILY_DPO, FAMILY_LEGACY, FAMILY_UNKNOWN, ExampleChecker
from .dedupe import SeenLines
from .findings import (
    MAX_EXAMPLES_PER_CATEGORY,
    CategoryFindings,
    FindingCollector,
    make_excerpt,
)
from .jsontext import find_lone_surrogate, may_hold_lone_surrogates
from .lines import (
    MAX_LINE_BYTES,
    UTF8_BOM,
    ByteProgress,
    OversizedLine,
    Source,
    iter_chunks,
    iter_lines,
)
from .models import DEFAULT_ENCODING, ModelSpec
from .report import (
    SAMPLE_IMAGES,
    LargeExample,
    Report,
    Sample,
    TokenStats,
    apply_model,
    family_counts,
    group_from_samples,
)
from .tokens import ExampleTokens, RepeatCache, TokenTally, default_threads
from .vision import MAX_IMAGE_EXAMPLES

MIN_EXAMPLES = 10
RECOMMENDED_EXAMPLES = 50
N_LARGEST = MAX_EXAMPLES_PER_CATEGORY
JSON_WHITESPACE = b" \t\r\n"
_FAMILY_LABELS = {
    FAMILY_CHAT: "chat",
    FAMILY_DPO: "preference (DPO)",
    FAMILY_LEGACY: "prompt/completion",
}


# (total tokens, -line, line, excerpt source) of one of the longest examples
Largest = tuple[int, int, int, bytes]


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


# Python's json accepts NaN and Infinity; JSON (and OpenAI) do not.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


class Validation:
    """One validation run in one pass; ``validate_stream`` (in ``parallel``) is the supported
    entry point, this class exposes the tuning knobs (line cap, tokenizer threads) to tests
    and the benchmark."""

    def __init__(
        self,
        *,
        model: ModelSpec | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        threads: int | None = None,
        encoding: str | None = None,
        repeats: RepeatCache | None = None,
    ) -> None:
        self.model = model
        self.max_line_bytes = max_line_bytes
        if encoding is None:
            encoding = model.encoding if model else DEFAULT_ENCODING
        self.findings = FindingCollector()
        self.tokens = TokenStats(encoding)
        self._largest: list[Largest] = []  # min-heap of the longest
        self.tally = TokenTally(
            encoding, self._on_tokens, default_threads() if threads is None else threads, repeats
        )
        self.checker = ExampleChecker(self.findings, self.tally)
        self.seen = SeenLines()
        self.n_lines = 0
        self.n_examples = 0
        self.n_blank = 0
        self.n_invalid = 0
        self.n_image_examples = 0
        self.format_counts: dict[str, int] = {}
        self.samples: dict[str, list[Sample]] = {}
        self._family_first: dict[str, int] = {}

    def run(
        self,
        source: Source,
        *,
        total_bytes: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Report:
        counter = ByteProgress(progress, total_bytes)
        lines = iter_lines(counter.wrap(iter_chunks(source)), self.max_line_bytes)
        try:
            for number, raw in enumerate(lines, 1):
                self.n_lines = number
                self._safe_line(number, raw)
            self.tally.flush()
        finally:
            self.tally.close()
        counter.finish()
        return self._report(counter.read)

    # --- per line --------------------------------------------------------------------

    def _safe_line(self, number: int, raw: bytes | OversizedLine) -> None:
        try:
            self._line(number, raw)
        except Exception as exc:  # one odd line must not sink the report
            self._internal_error(number, raw, exc)

    def _line(self, number: int, raw: bytes | OversizedLine) -> None:
        if isinstance(raw, OversizedLine):
            self.n_invalid += 1
            self.findings.add(
                "line_too_long",
                number,
                f"line is {raw.size:,} bytes; lines over {self.max_line_bytes:,} bytes are "
                "not read",
                raw.prefix,
            )
            return
        if number == 1 and raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM) :]
            self.findings.add("bom", 1, "file starts with a UTF-8 byte order mark", raw)
        stripped = raw.strip(JSON_WHITESPACE)
        if not stripped:
            self.n_blank += 1
            self.findings.add("blank_line", number, "line is blank", raw)
            return
        lead = len(raw) - len(raw.lstrip(JSON_WHITESPACE))
        try:
            text = stripped.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.n_invalid += 1
            bad = stripped[exc.start : exc.start + 4]
            self.findings.add(
                "invalid_utf8",
                number,
                f"invalid UTF-8 at byte {lead + exc.start + 1} ({bad!r})",
                stripped,
            )
            return
        try:
            obj = _DECODER.decode(text)
        except json.JSONDecodeError as exc:
            self.n_invalid += 1
            self.findings.add(
                "invalid_json",
                number,
                f"not valid JSON: {exc.msg} (column {lead + exc.colno})",
                raw.rstrip(b"\r"),  # as written, indentation included
            )
            return
        except (ValueError, RecursionError) as exc:
            self.n_invalid += 1
            reason = "nesting is too deep" if isinstance(exc, RecursionError) else str(exc)
            self.findings.add(
                "invalid_json", number, f"not valid JSON: {reason}", raw.rstrip(b"\r")
            )
            return
        if not isinstance(obj, dict):
            self.n_invalid += 1
            self.findings.add(
                "not_an_object",
                number,
                f"line is a JSON {_json_kind(obj)}, not an object",
                raw.rstrip(b"\r"),
            )
            return
        self.n_examples += 1
        if may_hold_lone_surrogates(text):
            self._check_surrogates(number, obj, text)
        self._duplicate(number, stripped, text)
        outcome = self.checker.check(obj, number, text, stripped)
        self._record_format(number, text, outcome.family, outcome.kind, outcome.n_images)

    def _duplicate(self, number: int, stripped: bytes, text: str) -> None:
        first = self.seen.add(stripped, number)
        if first is not None:
            self.findings.add("duplicate_example", number, f"same as line {first}", text)

    def _check_surrogates(self, number: int, obj: dict[str, object], text: str) -> None:
        found = find_lone_surrogate(obj)
        if found is not None:
            where, escape = found
            self.findings.add(
                "lone_surrogate",
                number,
                f"lone surrogate {escape} in {where}: it stands for no character; encode the "
                "text as UTF-8",
                text,
            )

    def _record_format(self, number: int, text: str, family: str, kind: str, n_images: int) -> None:
        self.format_counts[kind] = self.format_counts.get(kind, 0) + 1
        self._family_first.setdefault(family, number)
        self._sample(family, number, text)
        if n_images:
            self.n_image_examples += 1
            self._sample(SAMPLE_IMAGES, number, text)
            self._image_example(number, text)

    def _image_example(self, number: int, text: str) -> None:
        """Called after ``n_image_examples`` counted this line's example."""
        if self.n_image_examples > MAX_IMAGE_EXAMPLES:
            self.findings.add(
                "too_many_image_examples",
                number,
                f"image example number {self.n_image_examples:,}; a file may hold at most "
                f"{MAX_IMAGE_EXAMPLES:,}",
                text,
            )

    def _sample(self, key: str, number: int, text: str) -> None:
        samples = self.samples.setdefault(key, [])
        if len(samples) < MAX_EXAMPLES_PER_CATEGORY:
            samples.append(Sample(number, make_excerpt(text)))

    def _internal_error(self, number: int, raw: bytes | OversizedLine, exc: Exception) -> None:
        # Keep lines = examples + blank + invalid even when a line blew up mid-way.
        if self.n_examples + self.n_blank + self.n_invalid < number:
            self.n_invalid += 1
        source = raw.prefix if isinstance(raw, OversizedLine) else raw
        self.findings.add("internal_error", number, f"{type(exc).__name__}: {exc}", source)

    def _on_tokens(self, example: ExampleTokens) -> None:
        tokens = self.tokens
        tokens.total.add(example.total)
        tokens.trained.add(example.trained)
        if example.n_messages is not None:
            tokens.messages.add(example.n_messages)
        # Ties keep the earlier line, so results do not depend on batching (or on blocks).
        self._keep_largest((example.total, -example.line, example.line, example.excerpt_source))

    def _keep_largest(self, entry: Largest) -> None:
        if len(self._largest) < N_LARGEST:
            heapq.heappush(self._largest, entry)
        elif entry[:2] > self._largest[0][:2]:
            heapq.heapreplace(self._largest, entry)

    # --- whole file ------------------------------------------------------------------

    def _report(self, n_bytes: int) -> Report:
        self._file_findings()
        self.tokens.largest = [
            LargeExample(line, total, make_excerpt(excerpt))
            for total, _, line, excerpt in sorted(self._largest, reverse=True)
        ]
        report = Report(
            format=self._file_format(),
            n_bytes=n_bytes,
            n_lines=self.n_lines,
            n_examples=self.n_examples,
            n_blank_lines=self.n_blank,
            n_invalid_lines=self.n_invalid,
            n_image_examples=self.n_image_examples,
            format_counts=self.format_counts,
            samples=self.samples,
            findings=self.findings.groups,
            tokens=self.tokens,
        )
        apply_model(report, self.model)
        return report

    def _file_findings(self) -> None:
        n = self.n_examples
        if n < MIN_EXAMPLES:
            self.findings.add(
                "too_few_examples",
                None,
                f"the file has {n} example{'s' if n != 1 else ''}; at least {MIN_EXAMPLES} "
                "are required",
            )
        elif n < RECOMMENDED_EXAMPLES:
            self.findings.add(
                "few_examples",
                None,
                f"the file has {n} examples; 50 to 100 or more usually train clearly better",
            )
        families = self._known_families()
        if len(families) > 1:
            main = max(families, key=lambda f: (families[f], -self._family_first[f]))
            others = [f for f in families if f != main]
            label = _FAMILY_LABELS[main]
            examples = []
            for family in others:
                message = f"{_FAMILY_LABELS[family]} example in a file of mostly {label} examples"
                samples = self.samples.get(family, [])
                examples += group_from_samples("mixed_formats", 0, samples, message).examples
            examples.sort(key=lambda f: f.line or 0)
            group = CategoryFindings(
                "mixed_formats",
                sum(families[f] for f in others),
                examples[:MAX_EXAMPLES_PER_CATEGORY],
            )
            self.findings.set_group(group)

    def _known_families(self) -> dict[str, int]:
        families = family_counts(self.format_counts)
        families.pop(FAMILY_UNKNOWN, None)
        return families

    def _file_format(self) -> str:
        families = self._known_families()
        if not families:
            return "unknown"
        if len(families) > 1:
            return "mixed"
        (family,) = families
        if family != FAMILY_CHAT:
            return family
        counts = self.format_counts
        if counts.get("vision"):
            return "vision"
        if counts.get("chat_tools"):
            return "chat_tools"
        return "chat"


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"

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
    sort_categories,
)
from .jsontext import find_lone_surrogate, has_unicode_escape, may_hold_lone_surrogates
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
    FamilyPart,
    LargeExample,
    Report,
    Sample,
    TokenStats,
    apply_model,
    family_counts,
    group_from_samples,
)
from .rulesets import EXTRA_RULE_SETS, ExtraChecker, RuleSet
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


def keep_largest(heap: list[Largest], entry: Largest) -> None:
    if len(heap) < N_LARGEST:
        heapq.heappush(heap, entry)
    elif entry[:2] > heap[0][:2]:
        heapq.heapreplace(heap, entry)


def largest_examples(heap: list[Largest]) -> list[LargeExample]:
    return [
        LargeExample(line, total, make_excerpt(excerpt))
        for total, _, line, excerpt in sorted(heap, reverse=True)
    ]


class FamilyState:
    """What a rule set other than the primary one gathers over a file, or a block of it:
    plain data, so a block's state comes back from a worker process and merges in file
    order like the primary's own (``parallel``)."""

    def __init__(self, name: str, encoding: str) -> None:
        self.name = name
        self.findings = FindingCollector()
        self.format_counts: dict[str, int] = {}
        self.first: dict[str, int] = {}  # format family → its first line
        self.samples: dict[str, list[Sample]] = {}
        self.tokens = TokenStats(encoding)  # examples only this rule set counted
        self.largest: list[Largest] = []

    def record(self, number: int, text: str, family: str, kind: str) -> None:
        self.format_counts[kind] = self.format_counts.get(kind, 0) + 1
        if family not in self.first:
            self.first[family] = number
        samples = self.samples.setdefault(family, [])
        if len(samples) < MAX_EXAMPLES_PER_CATEGORY:
            samples.append(Sample(number, make_excerpt(text)))

    def on_tokens(self, example: ExampleTokens) -> None:
        self.tokens.total.add(example.total)
        self.tokens.trained.add(example.trained)
        if example.n_messages is not None:
            self.tokens.messages.add(example.n_messages)
        keep_largest(
            self.largest, (example.total, -example.line, example.line, example.excerpt_source)
        )

    def merge(self, later: FamilyState) -> None:
        """Add what a later part of the file found."""
        for group in later.findings.groups.values():
            self.findings.merge(group)
        for kind, count in later.format_counts.items():
            self.format_counts[kind] = self.format_counts.get(kind, 0) + count
        for family, line in later.first.items():
            self.first.setdefault(family, line)
        for key, samples in later.samples.items():
            mine = self.samples.setdefault(key, [])
            mine.extend(samples[: MAX_EXAMPLES_PER_CATEGORY - len(mine)])
        self.tokens.total.merge(later.tokens.total)
        self.tokens.trained.merge(later.tokens.trained)
        self.tokens.messages.merge(later.tokens.messages)
        for entry in later.largest:
            keep_largest(self.largest, entry)


class FamilyPass:
    """A rule set other than the primary one, in the pass: its checker and its state."""

    def __init__(self, rules: RuleSet, encoding: str, tally: TokenTally) -> None:
        assert rules.checker is not None, f"{rules.name} needs a checker"
        self.rules = rules
        self.state = FamilyState(rules.name, encoding)
        self.checker: ExtraChecker = rules.checker(self.state.findings, tally)

    def check(
        self, obj: dict[str, object], number: int, text: str, raw: bytes, *, counted: bool
    ) -> None:
        outcome = self.checker.check(obj, number, text, raw, counted=counted)
        self.state.record(number, text, outcome.family, outcome.kind)

    def part(self, n_examples: int) -> FamilyPart:
        """The rule set's part of the report, with its whole-file findings."""
        rules, state = self.rules, self.state
        if n_examples < rules.min_examples:
            state.findings.add(
                rules.too_few_code,
                None,
                f"the file has {n_examples} example{'s' if n_examples != 1 else ''}; "
                f"{rules.label} needs at least {rules.min_examples}",
            )
        families = known_families(state.format_counts)
        if len(families) > 1 and rules.mixed_code:
            state.findings.set_group(
                mixed_group(
                    rules.mixed_code, families, state.first, state.samples, rules.format_label
                )
            )
        tokens = state.tokens
        tokens.largest = largest_examples(state.largest)
        return FamilyPart(
            name=rules.name,
            format=file_format(state.format_counts),
            format_counts=state.format_counts,
            samples=state.samples,
            findings=sort_categories(state.findings.groups),
            tokens=tokens,
        )


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
        # The other rule sets check every example in this same pass, on the parsed object;
        # only what no rule set before them counted is tokenized for them.
        self.parts = tuple(FamilyPass(rules, encoding, self.tally) for rules in EXTRA_RULE_SETS)
        self._part_states = {p.rules.name: p.state for p in self.parts}
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
        if has_unicode_escape(stripped) and may_hold_lone_surrogates(text):
            self._check_surrogates(number, obj, text)
        self._duplicate(number, stripped, text)
        ended = self.tally.n_ended
        outcome = self.checker.check(obj, number, text, stripped)
        self._record_format(number, text, outcome.family, outcome.kind, outcome.n_images)
        if self.parts:
            counted = self.tally.n_ended != ended
            for part in self.parts:
                part.check(obj, number, text, stripped, counted=counted)

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
        if example.owner:
            self._part_states[example.owner].on_tokens(example)
            return
        tokens = self.tokens
        tokens.total.add(example.total)
        tokens.trained.add(example.trained)
        if example.n_messages is not None:
            tokens.messages.add(example.n_messages)
        # Ties keep the earlier line, so results do not depend on batching (or on blocks).
        self._keep_largest((example.total, -example.line, example.line, example.excerpt_source))

    def _keep_largest(self, entry: Largest) -> None:
        keep_largest(self._largest, entry)

    # --- whole file ------------------------------------------------------------------

    def _report(self, n_bytes: int) -> Report:
        self._file_findings()
        self.tokens.largest = largest_examples(self._largest)
        report = Report(
            format=file_format(self.format_counts),
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
            parts={p.rules.name: p.part(self.n_examples) for p in self.parts},
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
        families = known_families(self.format_counts)
        if len(families) > 1:
            self.findings.set_group(
                mixed_group(
                    "mixed_formats",
                    families,
                    self._family_first,
                    self.samples,
                    _FAMILY_LABELS.__getitem__,
                )
            )


def known_families(format_counts: dict[str, int]) -> dict[str, int]:
    families = family_counts(format_counts)
    families.pop(FAMILY_UNKNOWN, None)
    return families


def mixed_group(
    code: str,
    families: dict[str, int],
    first: dict[str, int],
    samples: dict[str, list[Sample]],
    label: Callable[[str], str],
) -> CategoryFindings:
    """The lines of the formats other than the file's main one (the most examples; ties go
    to the format seen first)."""
    main = max(families, key=lambda f: (families[f], -first[f]))
    others = [f for f in families if f != main]
    examples = []
    for family in others:
        message = f"{label(family)} example in a file of mostly {label(main)} examples"
        examples += group_from_samples(code, 0, samples.get(family, []), message).examples
    examples.sort(key=lambda f: f.line or 0)
    return CategoryFindings(
        code, sum(families[f] for f in others), examples[:MAX_EXAMPLES_PER_CATEGORY]
    )


def file_format(format_counts: dict[str, int]) -> str:
    families = known_families(format_counts)
    if not families:
        return "unknown"
    if len(families) > 1:
        return "mixed"
    (family,) = families
    if family != FAMILY_CHAT:
        return family
    if format_counts.get("vision"):
        return "vision"
    if format_counts.get("chat_tools"):
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

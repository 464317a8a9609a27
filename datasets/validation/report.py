"""The validation report, its JSON form, and re-pricing it for another model.

Model-dependent parts (format support, context truncation, cost) are derived from data the
report keeps — per-format line counts with their first lines, the exact distribution of
per-example token totals and the longest examples — so ``recompute_for_model`` gives the same
result as validating the file again, as long as the new model uses the same tokenizer
encoding. Per-example token counts differ between encodings and are not kept, so a model with
another encoding needs a new validation pass (``EncodingMismatchError``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .categories import CATEGORIES, Severity
from .checks import FAMILY_CHAT, FAMILY_DPO, FAMILY_LEGACY, KIND_VISION
from .estimates import TrainingEstimate
from .findings import (
    MAX_EXAMPLES_PER_CATEGORY,
    CategoryFindings,
    Finding,
    FindingCollector,
    sort_categories,
)
from .models import ModelSpec
from .rulesets import PRIMARY, RULE_SETS, SHARED_CODES, RuleSet
from .stats import Distribution

REPORT_VERSION = 1

FORMATS = (
    "chat",
    "chat_tools",
    "vision",
    "dpo",
    "legacy_completion",
    "text",
    "unknown",
    "mixed",
)
SAMPLE_IMAGES = "images"  # samples key for lines with images, whatever their format

MODEL_DEPENDENT_CODES = frozenset(
    {
        "legacy_format",
        "legacy_format_not_supported",
        "chat_format_not_supported",
        "dpo_not_supported",
        "vision_not_supported",
        "exceeds_context",
    }
)


class EncodingMismatchError(ValueError):
    """The report's token counts were made with another encoding: validate again."""


@dataclass(frozen=True, slots=True)
class Sample:
    line: int
    excerpt: str


@dataclass(frozen=True, slots=True)
class LargeExample:
    line: int
    tokens: int
    excerpt: str


@dataclass(slots=True)
class TokenStats:
    encoding: str
    total: Distribution = field(default_factory=Distribution)
    trained: Distribution = field(default_factory=Distribution)
    messages: Distribution = field(default_factory=Distribution)
    # The longest examples, longest first, so over-context examples can be listed for any
    # context limit without the file.
    largest: list[LargeExample] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "total": self.total.to_dict(),
            "trained": self.trained.to_dict(),
            "messages": self.messages.to_dict(),
            "largest": [[e.line, e.tokens, e.excerpt] for e in self.largest],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenStats:
        return cls(
            encoding=data["encoding"],
            total=Distribution.from_dict(data["total"]),
            trained=Distribution.from_dict(data["trained"]),
            messages=Distribution.from_dict(data["messages"]),
            largest=[LargeExample(line, tokens, text) for line, tokens, text in data["largest"]],
        )


def merged_tokens(first: TokenStats, second: TokenStats) -> TokenStats:
    """The token statistics of two disjoint sets of examples counted with one encoding."""
    merged = TokenStats(first.encoding)
    for name in ("total", "trained", "messages"):
        mine: Distribution = getattr(merged, name)
        mine.merge(getattr(first, name))
        mine.merge(getattr(second, name))
    # Longest first, ties to the earlier line: the order the pass keeps them in.
    largest = sorted(first.largest + second.largest, key=lambda e: (-e.tokens, e.line))
    merged.largest = largest[:MAX_EXAMPLES_PER_CATEGORY]
    return merged


@dataclass(slots=True)
class FamilyPart:
    """What the pass found for a rule set other than the primary one: its own formats,
    samples and findings (the shared ones stay in the report's findings), and the token
    statistics of the examples only it counted (the primary's counts hold for the rest)."""

    name: str
    format: str
    format_counts: dict[str, int]
    samples: dict[str, list[Sample]]
    findings: dict[str, CategoryFindings]
    tokens: TokenStats

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "format_counts": dict(sorted(self.format_counts.items())),
            "samples": {
                key: [[s.line, s.excerpt] for s in samples]
                for key, samples in sorted(self.samples.items())
            },
            "findings": [g.to_dict() for g in self.findings.values()],
            "tokens": self.tokens.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FamilyPart:
        groups = [CategoryFindings.from_dict(g) for g in data["findings"]]
        return cls(
            name=data["name"],
            format=data["format"],
            format_counts=dict(data["format_counts"]),
            samples={
                key: [Sample(line, text) for line, text in items]
                for key, items in data["samples"].items()
            },
            findings=sort_categories({g.code: g for g in groups}),
            tokens=TokenStats.from_dict(data["tokens"]),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a file can train on one rule set's providers, and with which methods."""

    family: str
    label: str
    checked: bool  # False: the report was made before this rule set existed
    valid: bool
    format: str
    methods: tuple[str, ...]
    reason: str  # why not, when not valid
    note: str  # a limit of the format on this rule set, e.g. which models
    tokenizer_note: str
    error_count: int
    warning_count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "label": self.label,
            "checked": self.checked,
            "valid": self.valid,
            "format": self.format,
            "methods": list(self.methods),
            "reason": self.reason,
            "note": self.note,
            "tokenizer_note": self.tokenizer_note,
            "error_count": self.error_count,
            "warning_count": self.warning_count,
        }


@dataclass(slots=True)
class Report:
    format: str
    n_bytes: int
    n_lines: int
    n_examples: int
    n_blank_lines: int
    n_invalid_lines: int  # invalid UTF-8, too long, not JSON, or not an object
    n_image_examples: int
    format_counts: dict[str, int]  # examples per line format (chat, chat_tools, vision, ...)
    samples: dict[str, list[Sample]]  # first lines per format family, and of image examples
    findings: dict[str, CategoryFindings]
    tokens: TokenStats
    model_id: str | None = None
    estimates: TrainingEstimate | None = None
    # The other rule sets' results, by name (empty in reports made before they existed).
    parts: dict[str, FamilyPart] = field(default_factory=dict)

    # --- summary ---------------------------------------------------------------------

    @property
    def error_count(self) -> int:
        return sum(g.count for g in self.findings.values() if g.severity is Severity.ERROR)

    @property
    def warning_count(self) -> int:
        return sum(g.count for g in self.findings.values() if g.severity is Severity.WARNING)

    @property
    def info_count(self) -> int:
        return sum(g.count for g in self.findings.values() if g.severity is Severity.INFO)

    @property
    def is_valid(self) -> bool:
        """Valid for the primary rule set (OpenAI's), as before rule sets existed."""
        return self.error_count == 0

    # --- rule sets -------------------------------------------------------------------

    def for_family(self, name: str) -> Report | None:
        """The report as one rule set sees the file: its formats, the shared findings plus
        its own, its token statistics; None when the report predates that rule set."""
        if name == PRIMARY.name:
            return self
        part = self.parts.get(name)
        if part is None:
            return None
        shared = {code: g for code, g in self.findings.items() if code in SHARED_CODES}
        return Report(
            format=part.format,
            n_bytes=self.n_bytes,
            n_lines=self.n_lines,
            n_examples=self.n_examples,
            n_blank_lines=self.n_blank_lines,
            n_invalid_lines=self.n_invalid_lines,
            n_image_examples=self.n_image_examples,
            format_counts=part.format_counts,
            samples=part.samples,
            findings=sort_categories(shared | part.findings),
            tokens=merged_tokens(self.tokens, part.tokens),
        )

    def verdicts(self) -> list[Verdict]:
        """One verdict per rule set, in ``RULE_SETS`` order."""
        views = {rules.name: self.for_family(rules.name) for rules in RULE_SETS}
        # The format the file is in, as the first rule set that knows it reads it: a rule
        # set that does not accept it says so rather than listing its errors.
        recognised = next(
            (
                view.format
                for view in views.values()
                if view is not None and view.format not in ("unknown", "mixed")
            ),
            None,
        )
        return [_verdict(rules, views[rules.name], recognised, self) for rules in RULE_SETS]

    @property
    def is_usable(self) -> bool:
        """Valid for at least one rule set: a dataset to keep (status "valid")."""
        return any(v.valid for v in self.verdicts())

    def shown_family(self, verdicts: list[Verdict] | None = None) -> str:
        """The rule set whose view a page shows first: the first that accepts the file, else
        the first that recognises its format, else the primary."""
        verdicts = self.verdicts() if verdicts is None else verdicts
        for verdict in verdicts:
            if verdict.valid:
                return verdict.family
        for verdict in verdicts:
            if verdict.checked and verdict.format not in ("unknown", "mixed"):
                return verdict.family
        return PRIMARY.name

    def count(self, code: str) -> int:
        group = self.findings.get(code)
        return group.count if group else 0

    def lines(self, code: str) -> list[int | None]:
        """Line numbers of the stored examples of a category (handy in tests and UIs)."""
        group = self.findings.get(code)
        return [f.line for f in group.examples] if group else []

    def first_error(self) -> Finding | None:
        """The blocking error nearest the top of the file (whole-file errors last), e.g. for
        "The job failed due to an invalid training file. " + finding.located_message()."""
        firsts = [
            g.examples[0]
            for g in self.findings.values()
            if g.severity is Severity.ERROR and g.examples
        ]
        return min(firsts, key=lambda f: (f.line is None, f.line or 0, f.code), default=None)

    # --- JSON ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "is_valid": self.is_valid,
            "format": self.format,
            "model_id": self.model_id,
            "n_bytes": self.n_bytes,
            "n_lines": self.n_lines,
            "n_examples": self.n_examples,
            "n_blank_lines": self.n_blank_lines,
            "n_invalid_lines": self.n_invalid_lines,
            "n_image_examples": self.n_image_examples,
            "error_count": self.error_count,
            "warning_count": self.warning_count,
            "info_count": self.info_count,
            "format_counts": dict(sorted(self.format_counts.items())),
            "samples": {
                key: [[s.line, s.excerpt] for s in samples]
                for key, samples in sorted(self.samples.items())
            },
            # A list, not an object: PostgreSQL jsonb does not keep object key order.
            "findings": [g.to_dict() for g in self.findings.values()],
            "tokens": self.tokens.to_dict(),
            "estimates": self.estimates.to_dict() if self.estimates else None,
            "parts": [p.to_dict() for p in self.parts.values()],
            # Derived from the rest (``from_dict`` ignores it): what each rule set makes of
            # the file, for readers of the stored JSON.
            "families": [v.to_dict() for v in self.verdicts()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        if data.get("version") != REPORT_VERSION:
            raise ValueError(f"unsupported report version {data.get('version')!r}")
        groups = [CategoryFindings.from_dict(g) for g in data["findings"]]
        return cls(
            format=data["format"],
            model_id=data["model_id"],
            n_bytes=data["n_bytes"],
            n_lines=data["n_lines"],
            n_examples=data["n_examples"],
            n_blank_lines=data["n_blank_lines"],
            n_invalid_lines=data["n_invalid_lines"],
            n_image_examples=data["n_image_examples"],
            format_counts=dict(data["format_counts"]),
            samples={
                key: [Sample(line, text) for line, text in items]
                for key, items in data["samples"].items()
            },
            findings=sort_categories({g.code: g for g in groups}),
            tokens=TokenStats.from_dict(data["tokens"]),
            estimates=(
                TrainingEstimate.from_dict(data["estimates"]) if data["estimates"] else None
            ),
            parts={p["name"]: FamilyPart.from_dict(p) for p in data.get("parts") or []},
        )


def _verdict(
    rules: RuleSet, view: Report | None, recognised: str | None, report: Report
) -> Verdict:
    encoding = report.tokens.encoding
    tokenizer_note = rules.tokenizer_note.format(encoding=encoding)
    if view is None:
        return Verdict(
            family=rules.name,
            label=rules.label,
            checked=False,
            valid=False,
            format="unknown",
            methods=(),
            reason=f"the file was validated before {rules.label}'s rules were added; "
            "validate it again",
            note="",
            tokenizer_note=tokenizer_note,
            error_count=0,
            warning_count=0,
        )
    fmt = view.format
    valid = view.is_valid and fmt in rules.formats
    reason = ""
    if not valid:
        if recognised is not None and recognised not in rules.formats:
            reason = f"the {rules.format_label(recognised)} format is not accepted"
        elif (first := view.first_error()) is not None:
            n = view.error_count
            reason = f"{n:,} error{'s' if n != 1 else ''}; first: {first.located_message()}"
        else:
            reason = f"the {rules.format_label(fmt)} format is not accepted"
    return Verdict(
        family=rules.name,
        label=rules.label,
        checked=True,
        valid=valid,
        format=fmt,
        methods=rules.formats[fmt] if valid else (),
        reason=reason,
        note=rules.format_notes.get(fmt, "") if valid else "",
        tokenizer_note=tokenizer_note,
        error_count=view.error_count,
        warning_count=view.warning_count,
    )


def family_counts(format_counts: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind, count in format_counts.items():
        family = FAMILY_CHAT if kind in ("chat", "chat_tools", KIND_VISION) else kind
        out[family] = out.get(family, 0) + count
    return out


def group_from_samples(
    code: str, count: int, samples: list[Sample], message: str
) -> CategoryFindings:
    info = CATEGORIES[code]
    ordered = sorted(samples, key=lambda s: s.line)[:MAX_EXAMPLES_PER_CATEGORY]
    examples = [Finding(code, info.severity, s.line, s.excerpt, message) for s in ordered]
    return CategoryFindings(code, count, examples)


def apply_model(report: Report, model: ModelSpec | None) -> None:
    """(Re)derive everything that depends on the chosen model, in place."""
    collector = FindingCollector()
    collector.groups = {
        code: g for code, g in report.findings.items() if code not in MODEL_DEPENDENT_CODES
    }
    families = family_counts(report.format_counts)
    samples = report.samples
    n_chat, n_dpo = families.get(FAMILY_CHAT, 0), families.get(FAMILY_DPO, 0)
    n_legacy = families.get(FAMILY_LEGACY, 0)
    legacy_samples = samples.get(FAMILY_LEGACY, [])

    if model is None or model.legacy_completion:
        collector.set_group(
            group_from_samples(
                "legacy_format",
                n_legacy,
                legacy_samples,
                "legacy prompt/completion example (babbage-002 and davinci-002 only)",
            )
        )
    if model is not None and model.legacy_completion:
        collector.set_group(
            group_from_samples(
                "chat_format_not_supported",
                n_chat + n_dpo,
                samples.get(FAMILY_CHAT, []) + samples.get(FAMILY_DPO, []),
                f"{model.id} only accepts prompt/completion examples",
            )
        )
    elif model is not None:
        collector.set_group(
            group_from_samples(
                "legacy_format_not_supported",
                n_legacy,
                legacy_samples,
                f"prompt/completion example; {model.id} needs the chat messages format",
            )
        )
        if not model.supports_dpo:
            collector.set_group(
                group_from_samples(
                    "dpo_not_supported",
                    n_dpo,
                    samples.get(FAMILY_DPO, []),
                    f"preference (DPO) example; {model.id} does not support DPO",
                )
            )
    if model is not None and not model.supports_vision:
        collector.set_group(
            group_from_samples(
                "vision_not_supported",
                report.n_image_examples,
                samples.get(SAMPLE_IMAGES, []),
                f"example with images; {model.id} cannot be fine-tuned on images",
            )
        )
    if model is not None:
        collector.set_group(_exceeds_context(report.tokens, model))

    report.findings = sort_categories(collector.groups)
    report.model_id = model.id if model else None
    report.estimates = TrainingEstimate.build(report.tokens.total, model)


def _exceeds_context(tokens: TokenStats, model: ModelSpec) -> CategoryFindings:
    limit = model.training_context
    info = CATEGORIES["exceeds_context"]
    over = sorted((e for e in tokens.largest if e.tokens > limit), key=lambda e: e.line)
    examples = [
        Finding(
            "exceeds_context",
            info.severity,
            e.line,
            e.excerpt,
            f"{e.tokens:,} tokens, over the {limit:,}-token training context of {model.id}; "
            "the end will be truncated",
        )
        for e in over[:MAX_EXAMPLES_PER_CATEGORY]
    ]
    return CategoryFindings("exceeds_context", tokens.total.count_above(limit), examples)


def can_recompute(report: Report, model: ModelSpec) -> bool:
    return report.tokens.encoding == model.encoding


def recompute_for_model(report: Report, model: ModelSpec | None) -> Report:
    """The report as if the file had been validated for ``model``, without reading it.

    Raises EncodingMismatchError when ``model`` tokenizes with another encoding: then the
    file must be validated again.
    """
    if model is not None and not can_recompute(report, model):
        raise EncodingMismatchError(
            f"report counted tokens with {report.tokens.encoding}; {model.id} uses "
            f"{model.encoding}, so the file must be validated again"
        )
    fresh = Report.from_dict(report.to_dict())
    apply_model(fresh, model)
    return fresh

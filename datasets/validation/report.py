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
from .stats import Distribution

REPORT_VERSION = 1

FORMATS = ("chat", "chat_tools", "vision", "dpo", "legacy_completion", "unknown", "mixed")
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
        return self.error_count == 0

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

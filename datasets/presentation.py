"""What the dataset page shows of a report: which providers and methods the file can train,
summary numbers and findings by category."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from datasets.validation import (
    CATEGORIES,
    FORMAT_LABELS,
    METHOD_LABELS,
    Finding,
    Report,
    Verdict,
    rule_set,
)


@dataclass(frozen=True)
class Summary:
    n_examples: int
    format: str
    format_label: str
    total_tokens: int
    n_epochs: int | None
    billed_tokens: int | None
    cost: Decimal | None
    batch_size: int | None
    learning_rate_multiplier: float | None
    over_context: int
    error_count: int
    warning_count: int
    info_count: int  # notes: accepted as it is, worth knowing; never a problem


def summary(report: Report, *, family: str = "") -> Summary:
    """``family``: the rule set ``report`` is the view of (its names for formats)."""
    estimate = report.estimates
    rules = rule_set(family) if family else None
    return Summary(
        n_examples=report.n_examples,
        format=report.format,
        format_label=(
            rules.format_label(report.format)
            if rules
            else FORMAT_LABELS.get(report.format, report.format)
        ),
        total_tokens=report.tokens.total.total,
        n_epochs=estimate.n_epochs if estimate else None,
        billed_tokens=estimate.billed_tokens if estimate else None,
        cost=estimate.training_cost if estimate else None,
        batch_size=estimate.batch_size if estimate else None,
        learning_rate_multiplier=estimate.learning_rate_multiplier if estimate else None,
        over_context=estimate.n_examples_over_context if estimate else 0,
        error_count=report.error_count,
        warning_count=report.warning_count,
        info_count=report.info_count,
    )


@dataclass(frozen=True)
class FindingGroup:
    code: str
    title: str
    severity: str
    explanation: str
    count: int
    examples: list[Finding]


def finding_groups(report: Report) -> list[FindingGroup]:
    """Errors first, then warnings, then notes (the report's own order)."""
    groups = []
    for group in report.findings.values():
        info = CATEGORIES[group.code]
        groups.append(
            FindingGroup(
                code=group.code,
                title=info.title,
                severity=info.severity.value,
                explanation=info.explanation,
                count=group.count,
                examples=list(group.examples),
            )
        )
    return groups


@dataclass(frozen=True)
class ValidityRow:
    """One line of the page's "Valid for" table: a provider family, the format it reads,
    the methods it trains, or why not."""

    family: str
    label: str
    checked: bool
    valid: bool
    format_label: str
    methods: str  # "supervised", "DPO"; empty when not valid
    note: str
    reason: str
    error_count: int
    warning_count: int
    tokenizer_note: str


def validity_rows(verdicts: list[Verdict]) -> list[ValidityRow]:
    rows = []
    for v in verdicts:
        rules = rule_set(v.family)
        fmt = rules.format_label(v.format) if rules else FORMAT_LABELS.get(v.format, v.format)
        rows.append(
            ValidityRow(
                family=v.family,
                label=v.label,
                checked=v.checked,
                valid=v.valid,
                format_label=fmt if v.checked else "—",
                methods=", ".join(METHOD_LABELS.get(m, m) for m in v.methods),
                note=v.note,
                reason=v.reason,
                error_count=v.error_count,
                warning_count=v.warning_count,
                tokenizer_note=v.tokenizer_note,
            )
        )
    return rows

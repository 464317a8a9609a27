"""What the dataset page shows of a report: summary numbers and findings by category."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from datasets.validation import CATEGORIES, Finding, Report

FORMAT_LABELS = {
    "chat": "Chat",
    "chat_tools": "Chat with tools",
    "vision": "Vision",
    "dpo": "Preference (DPO)",
    "legacy_completion": "Legacy prompt/completion",
    "mixed": "Mixed",
    "unknown": "Unknown",
}


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


def summary(report: Report) -> Summary:
    estimate = report.estimates
    return Summary(
        n_examples=report.n_examples,
        format=report.format,
        format_label=FORMAT_LABELS.get(report.format, report.format),
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

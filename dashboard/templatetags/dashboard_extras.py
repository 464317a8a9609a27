"""Labels of the cross-run pages (verdicts, axes, metrics, hyperparameters). Shared formats
(money, durations, dates, counts, badges) are core's builtins."""

from __future__ import annotations

import functools
import html
import json
import re
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from dashboard.charts.hyperparameters import HYPERPARAMETER_LABELS
from dashboard.charts.traces import METRIC_LABELS

register = template.Library()

VERDICTS = {
    "underfitting": ("Underfitting", "badge-warn"),
    "good_fit": ("Good fit", "badge-ok"),
    "overfitting": ("Overfitting", "badge-warn"),
    "unstable": ("Unstable", "badge-bad"),
    "insufficient_data": ("Not enough data yet", ""),
}
AXIS_LABELS = {"step": "Steps", "epoch": "Epochs", "tokens": "Tokens seen"}


@register.filter
def verdict_label(verdict: str) -> str:
    return VERDICTS.get(verdict, (verdict, ""))[0]


@register.filter
def verdict_badge(verdict: str) -> str:
    return VERDICTS.get(verdict, ("", ""))[1]


@register.filter
def axis_label(axis: str) -> str:
    return AXIS_LABELS.get(axis, axis)


@register.filter
def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name or "")


@register.filter
def hp_label(key: str) -> str:
    return HYPERPARAMETER_LABELS.get(key, key)


# Joiners after which an identifier may break onto the next line. Browsers break only at
# spaces and after hyphens, so "support_tickets_2024_q3.jsonl" or "ft:gpt-4o-mini:bot" would
# otherwise either widen their column or, with overflow-wrap: anywhere, break mid-word.
_JOINERS = re.compile(r"[_.:/@=+,;|\\]+(?=[^\W_])")


@register.filter(is_safe=True)
def soft_breaks(value: Any) -> SafeString:
    """``value`` escaped, with a <wbr> after each joiner between two parts (never after a
    leading one, nor inside a number such as 1.85)."""
    return mark_safe(_soft_breaks("" if value is None else str(value)))  # noqa: S308 - escaped


@functools.lru_cache(maxsize=4096)
def _soft_breaks(text: str) -> str:
    # Cached: a runs list page repeats its providers, datasets, creators and models. The
    # stdlib escape is Django's (the same five entities) without its lazy-string wrapper.
    parts, start = [], 0
    for joiner in _JOINERS.finditer(text):
        before = text[joiner.start() - 1] if joiner.start() else ""
        if not before or (before.isdigit() and text[joiner.end()].isdigit()):
            continue
        parts += [html.escape(text[start : joiner.end()]), "<wbr>"]
        start = joiner.end()
    parts.append(html.escape(text[start:]))
    return "".join(parts)


@register.filter
def hp_value(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return str(value)

"""Labels of the cross-run pages (verdicts, axes, metrics, hyperparameters). Shared formats
(money, durations, dates, counts, badges) are core's builtins."""

from __future__ import annotations

import json
from typing import Any

from django import template

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


@register.filter
def hp_value(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return str(value)

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def score(value: Any) -> str:
    """A score in [0, 1] with two decimals; "—" when there is none."""
    if value is None or isinstance(value, bool):
        return "—"
    try:
        return f"{float(value):.2f}"
    except (TypeError, ValueError):
        return "—"


@register.filter
def interval(value: Any) -> str:
    """``evals.stats.Interval`` as "0.80 (0.49–0.94)"."""
    if value is None:
        return "—"
    return f"{value.mean:.2f} ({value.low:.2f}–{value.high:.2f})"


@register.filter
def percent(value: Any) -> str:
    if value is None:
        return "—"
    return f"{100 * float(value):.0f}%"


@register.filter
def milliseconds(value: Any) -> str:
    if value is None:
        return "—"
    return f"{float(value):,.0f} ms"


@register.filter
def score_class(value: Any) -> str:
    """Colour a cell's score: full marks, partial, none."""
    if value is None or isinstance(value, bool):
        return ""
    value = float(value)
    if value >= 1:
        return "ev-good"
    return "ev-bad" if value <= 0 else "ev-mid"

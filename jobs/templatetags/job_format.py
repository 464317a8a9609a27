from __future__ import annotations

from typing import Any

from django import template

register = template.Library()

JOB_BADGES = {
    "succeeded": "badge-ok",
    "failed": "badge-bad",
    "launch_failed": "badge-bad",
    "lost": "badge-bad",
    "cancelled": "",
    "pending": "badge-warn",
    "launching": "badge-warn",
    "validating_files": "badge-warn",
    "queued": "badge-warn",
    "running": "badge-warn",
    "paused": "badge-warn",
}
LEVEL_BADGES = {"error": "badge-bad", "warn": "badge-warn", "warning": "badge-warn"}


@register.filter
def job_badge(status: str) -> str:
    return JOB_BADGES.get(status, "")


@register.filter
def level_badge(level: str) -> str:
    return LEVEL_BADGES.get(level, "")


@register.filter
def duration(seconds: float | None) -> str:
    """1 h 02 min 05 s, 3 min 20 s, 42 s; "—" when unknown."""
    if seconds is None:
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


@register.filter
def metric(value: Any) -> str:
    """Metric values with four significant decimals; anything else as it is."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


@register.filter
def lookup(mapping: Any, key: str) -> Any:
    """``mapping[key]`` for dicts in templates; None when absent."""
    return mapping.get(key) if isinstance(mapping, dict) else None

"""The one way every page formats money, durations, dates, counts and status badges.

Registered as a template builtin (settings ``TEMPLATES``), so no template loads it. Filters
format values they are given; none of them runs a query."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()

NONE = "—"

# Every status word any page shows (runs, datasets, evaluations, event levels) → badge class.
STATUS_BADGES = {
    "succeeded": "badge-ok",
    "partial": "badge-warn",
    "valid": "badge-ok",
    "failed": "badge-bad",
    "launch_failed": "badge-bad",
    "lost": "badge-bad",
    "invalid": "badge-bad",
    "error": "badge-bad",
    "pending": "badge-warn",
    "launching": "badge-warn",
    "validating_files": "badge-warn",
    "queued": "badge-warn",
    "running": "badge-warn",
    "paused": "badge-warn",
    "validating": "badge-warn",
    "uploaded": "badge-warn",
    "warn": "badge-warn",
    "warning": "badge-warn",
}


@register.filter
def status_badge(status: str) -> str:
    return STATUS_BADGES.get(status, "")


@register.filter
def count(value: Any) -> str:
    """12,345; "—" when unknown."""
    if value is None or value == "" or isinstance(value, bool):
        return NONE
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def money(value: Any) -> str:
    """Dollars as people read a bill: cents, and "< $0.01" rather than "$0.00"."""
    if value is None or value == "" or isinstance(value, bool):
        return NONE
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if amount == 0:
        return "$0.00"
    if amount < Decimal("0.01"):
        return "< $0.01"
    return f"${amount:,.2f}"


@register.filter
def money_fine(value: Any) -> str:
    """Like ``money``, with four decimals below a cent (a plan of small runs is still told
    apart): "$0.0016"."""
    text = money(value)
    if text != "< $0.01":
        return text
    return f"${Decimal(str(value)):.4f}"


@register.filter
def duration(value: Any) -> str:
    """1 h 02 min, 3 min 20 s, 42 s; "—" when unknown."""
    if value is None or value == "" or isinstance(value, bool):
        return NONE
    try:
        total = round(float(value))
    except (TypeError, ValueError):
        return str(value)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


@register.filter
def when(value: Any, precision: str = "minutes") -> str:
    """A moment in the server's time zone: 2026-12-05 14:03 (``when:"seconds"``: 14:03:27,
    ``when:"day"``: the date only); empty when unknown, so ``|default:"never"`` applies."""
    if value is None or value == "":
        return ""
    if not isinstance(value, date):
        return str(value)
    moment: date = value
    if isinstance(moment, datetime) and timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    if precision == "day" or not isinstance(moment, datetime):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M:%S" if precision == "seconds" else "%Y-%m-%d %H:%M")


@register.filter
def metric(value: Any) -> str:
    """Metric values with four decimals, integers with separators; "—" when unknown."""
    if value is None or value == "":
        return NONE
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


@register.filter
def exact(value: Any) -> str:
    """A number as stored (shortest round-trip repr), for data-value attributes."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


@register.filter
def item(mapping: Any, key: Any) -> Any:
    """``mapping[key]`` for dicts in templates; None when absent."""
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None


@register.filter(is_safe=True)
def json_data(value: Any, element_id: str) -> str:
    """``json_script`` for large figures: the same escaping of ``<``, ``>`` and ``&`` (so the
    data cannot close the script element), compact separators and plain ``str.replace``,
    several times faster than ``json_script`` on megabytes of numbers."""
    return format_html(
        '<script id="{}" type="application/json">{}</script>',
        element_id,
        mark_safe(dumps_for_html(value)),  # noqa: S308 - escaped for a script element above
    )


def dumps_for_html(value: Any) -> str:
    text = json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003C").replace(">", "\\u003E")

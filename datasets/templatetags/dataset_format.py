from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()

STATUS_BADGES = {
    "valid": "badge-ok",
    "invalid": "badge-bad",
    "error": "badge-bad",
    "validating": "badge-warn",
    "uploaded": "badge-warn",
}


@register.filter
def thousands(value: object) -> str:
    if value is None or value == "":
        return "—"
    try:
        return f"{int(value):,}"  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return str(value)


@register.filter
def usd(value: Decimal | None) -> str:
    """Dollars as people read a bill: cents, and "< $0.01" rather than "$0.00"."""
    if value is None:
        return "unknown"
    if value == 0:
        return "$0.00"
    if value < Decimal("0.01"):
        return "< $0.01"
    return f"${value:,.2f}"


@register.filter
def status_badge(status: str) -> str:
    return STATUS_BADGES.get(status, "")

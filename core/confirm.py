"""The confirmation step in front of a destructive action (cancel, pause, delete a model,
archive a connection, revoke a share link).

A GET shows what will happen and what it costs or loses; only a POST carrying the
confirmation acts. It is a page of its own, so it works without JavaScript; a POST without
the confirmation (an old page, a script, a double submit of a stale form) shows the same page
and does nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

CONFIRM_FIELD = "confirm"
CONFIRM_VALUE = "yes"


@dataclass(frozen=True)
class Confirmation:
    title: str
    back_url: str
    back_label: str
    consequences: list[str]
    button: str
    keep: str = "Go back"
    # Why the action cannot apply now (already done, provider unusable…): shown instead of the form.
    unavailable: str = ""
    # A form of its own (a box to tick) instead of the hidden confirmation field.
    form: Form | None = None
    hidden: dict[str, str] = field(default_factory=dict)


def confirmed(request: HttpRequest) -> bool:
    return request.method == "POST" and request.POST.get(CONFIRM_FIELD) == CONFIRM_VALUE


def confirmation_page(
    request: HttpRequest, confirmation: Confirmation, *, status: int = 200
) -> HttpResponse:
    context: dict[str, Any] = {
        "c": confirmation,
        "confirm_field": CONFIRM_FIELD,
        "confirm_value": CONFIRM_VALUE,
    }
    return render(request, "core/confirm.html", context, status=status)

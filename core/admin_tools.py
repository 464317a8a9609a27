"""Shared pieces of the apps' Django admin classes."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse

LEASE_FIELDS = ("lease_owner", "lease_expires_at", "lease_heartbeat_at")


class SavesOnlyItsFields(admin.ModelAdmin[Any]):
    """An edit writes only the fields its form changed (and ``auto_now`` stamps), never the
    whole row: a worker may have written status, progress or a lease to it since the page
    was loaded, and a full save would put the old values back."""

    def save_model(
        self, request: HttpRequest, obj: Any, form: forms.ModelForm[Any], change: bool
    ) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        concrete = {f.name: f for f in obj._meta.concrete_fields}
        fields = [name for name in form.changed_data if name in concrete]
        if not fields:
            return
        stamps = [
            name
            for name, field in concrete.items()
            if isinstance(field, models.DateTimeField) and field.auto_now
        ]
        obj.save(update_fields=[*fields, *stamps])


def confirm_action(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    title: str,
    consequences: list[str],
    button: str,
) -> TemplateResponse | None:
    """The intermediate page of a destructive admin action (as Django's own "delete
    selected" has): None once the person confirmed it, else the page saying what happens."""
    if request.POST.get("post") == "yes":
        return None
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "consequences": consequences,
        "button": button,
        "queryset": queryset,
        "opts": opts,
        "action": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "back_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
    }
    return TemplateResponse(request, "admin/confirm_action.html", context)

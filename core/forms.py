"""Forms of the pages ``core`` serves (API tokens)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from core.models import ApiToken
from core.permissions import can_act

EXPIRY_CHOICES = (("", "Never"), ("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year"))


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="Where it is used, e.g. “training box 3”.", strip=True
    )
    scope = forms.ChoiceField(choices=ApiToken.Scope.choices, initial=ApiToken.Scope.READ)
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, label="Expires")

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not can_act(user):
            # Never more than the role allows: a viewer's tokens only read.
            scope = self.fields["scope"]
            assert isinstance(scope, forms.ChoiceField)
            scope.choices = [(ApiToken.Scope.READ, ApiToken.Scope.READ.label)]
            self.fields["scope"].help_text = "Your role (viewer) allows read-only tokens."

    def expires_at(self) -> datetime | None:
        days = self.cleaned_data.get("expires")
        return timezone.now() + timedelta(days=int(days)) if days else None

"""Reads for the runs list's frame: the columns a user hides and the first steps an empty
list offers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.urls import reverse

from core.permissions import can_act, is_admin
from dashboard.columns import CHOOSABLE, DEFAULT_HIDDEN, KEYS
from dashboard.models import RunListPreference
from jobs.models import ProviderConnection


def run_list_hidden_columns(user: Any) -> frozenset[str]:
    """The optional columns ``user`` hides (the default until they choose)."""
    stored = (
        RunListPreference.objects.filter(user=user).values_list("hidden_columns", flat=True).first()
    )
    if stored is None:
        return DEFAULT_HIDDEN
    return frozenset(key for key in stored if isinstance(key, str) and key in KEYS)


def column_choices(hidden: frozenset[str]) -> list[dict[str, Any]]:
    return [{"key": key, "label": label, "shown": key not in hidden} for key, label in CHOOSABLE]


@dataclass(frozen=True)
class FirstStep:
    text: str  # the link's words
    url: str
    why: str  # what it leads to, after the link


def first_steps(user: Any) -> tuple[list[FirstStep], bool]:
    """The links an empty runs list offers ``user`` (each one a page their role opens), and
    whether a provider connection to import from is still missing."""
    steps = []
    acts, admin = can_act(user), is_admin(user)
    connections = list(ProviderConnection.objects.filter(enabled=True).order_by("name", "pk"))
    if acts:
        steps.append(FirstStep("Upload a dataset", reverse("datasets:upload"),
                               "a JSONL training file, checked against OpenAI's rules."))  # fmt: skip
    else:
        steps.append(FirstStep("Browse datasets", reverse("datasets:list"),
                               "the training files your team uploaded."))  # fmt: skip
    sandbox = next((c for c in connections if c.kind == ProviderConnection.Kind.SANDBOX), None)
    if acts and settings.SANDBOX_ENABLED and sandbox is not None:
        steps.append(FirstStep("Try the sandbox", f"{reverse('jobs:new')}?connection={sandbox.pk}",
                               "a simulated fine-tuning job: free, and done in a minute."))  # fmt: skip
    provider = next((c for c in connections if c.kind != ProviderConnection.Kind.SANDBOX), None)
    if provider is not None:
        steps.append(FirstStep("Import history",
                               reverse("jobs:connection_detail", kwargs={"pk": provider.pk}),
                               f"the fine-tuning jobs already run on {provider.name}."))  # fmt: skip
    if admin:
        steps.append(FirstStep("Add a connection", reverse("jobs:connection_new"),
                               "an OpenAI or Azure OpenAI API key to launch and import with."))  # fmt: skip
        steps.append(FirstStep("Import a history bundle", reverse("jobs:bundle_import"),
                               "runs exported from another Tuneboard."))  # fmt: skip
    return steps, provider is None

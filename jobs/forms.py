"""Forms for connections, launching and annotating jobs. They validate and shape input; the
writes happen in ``jobs.services``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.validators import validate_email
from django.forms import BoundField

from core import outbound
from core.tags import parse_tags
from datasets.models import Dataset
from jobs import guardrail_rules, selectors
from jobs.guardrails import rules_problem as guardrails_problem
from jobs.models import Job, ProviderConnection, split_addresses
from jobs.providers import Parameter, Traits, parameters, traits
from jobs.services import (
    HYPERPARAMETER_RULES,
    MAX_SEED,
    JobError,
    LaunchRequest,
    launch_parameters,
)

NOTES_MAX = 10_000


# --- Connections ------------------------------------------------------------------------------


class HttpsURLField(forms.URLField):
    """A URL field that assumes https:// when the scheme is left out."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(**kwargs)


class WebhookURLField(forms.URLField):
    """An http(s) URL to POST notifications to, on a public address (``core.outbound``: the
    same check runs again on every delivery)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(**kwargs)

    def clean(self, value: Any) -> str:
        url = super().clean(value)
        if url and not url.startswith(("http://", "https://")):
            raise forms.ValidationError("Enter an http:// or https:// URL.")
        if url:
            try:
                outbound.check_url(url)
            except outbound.UnsafeURL as exc:
                raise forms.ValidationError(str(exc)) from None
        return url


MAX_NOTIFY_ADDRESSES = 20


def clean_addresses(text: str) -> str:
    """Validate a list of email addresses; the normalised list, one per line."""
    addresses = split_addresses(text)
    if len(addresses) > MAX_NOTIFY_ADDRESSES:
        raise forms.ValidationError(f"At most {MAX_NOTIFY_ADDRESSES} addresses.")
    for address in addresses:
        try:
            validate_email(address)
        except forms.ValidationError:
            raise forms.ValidationError(f"“{address[:80]}” is not an email address.") from None
    return "\n".join(addresses)


class ConnectionForm(forms.ModelForm):
    # Write-only: the stored secrets are never sent back to the browser.
    api_key = forms.CharField(
        required=False,
        label="API key",
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    webhook_secret = forms.CharField(
        required=False,
        label="Webhook secret",
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = ProviderConnection
        fields = (
            "name", "kind", "base_url", "organization", "project", "api_version", "enabled",
            "notify_emails", "slack_webhook_url", "guardrail_defaults",
        )  # fmt: skip
        field_classes = {"base_url": HttpsURLField, "slack_webhook_url": WebhookURLField}
        widgets = {"notify_emails": forms.Textarea(attrs={"rows": 2})}
        labels = {
            "base_url": "Base URL",
            "organization": "Organization header",
            "project": "Project header",
            "api_version": "API version",
            "notify_emails": "Notify these addresses",
            "slack_webhook_url": "Slack webhook URL",
        }
        help_texts = {
            "base_url": "The API root, e.g. https://api.openai.com/v1 or "
            "https://<resource>.openai.azure.com/openai/v1.",
            "organization": "Optional OpenAI-Organization header.",
            "project": "Optional OpenAI-Project header.",
            "api_version": "Azure OpenAI only (api-version query parameter); empty uses “preview”.",
            "notify_emails": "Emailed when any job on this connection finishes; comma- or "
            "line-separated.",
            "slack_webhook_url": "Optional; a Slack-compatible incoming webhook, posted to when "
            "any job on this connection finishes.",
            "guardrail_defaults": "Rules every new job on this connection starts with (JSON), "
            'e.g. [{"kind": "overfitting", "params": {"evals": 3, "rise_pct": 1}, "action": '
            '"pause"}]. Kinds: overfitting, divergence, accuracy_stuck, spend_cap, time_limit; '
            "actions: notify, pause (where the provider can), cancel.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        creating = self.instance.pk is None
        if creating:
            self.fields["api_key"].help_text = "Stored encrypted; it is never shown again."
        else:
            self.fields[
                "api_key"
            ].help_text = f"Current key: {self.instance.masked_key}. Leave empty to keep it."
        self.fields["webhook_secret"].help_text = (
            "Optional; verifies signed webhooks (whsec_…). "
            + ("Leave empty to keep the current one." if not creating else "")
        ).strip()

    def clean_notify_emails(self) -> str:
        return clean_addresses(self.cleaned_data.get("notify_emails") or "")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        hosted = traits(data.get("kind") or "openai").hosted
        if hosted and self.instance.pk is None and not data.get("api_key"):
            self.add_error("api_key", "Enter the API key for the new connection.")
        if hosted and not data.get("base_url"):
            self.add_error("base_url", "Enter the provider's API root.")
        if not hosted and (data.get("api_key") or data.get("base_url")):
            self.add_error(
                None,
                "A self-hosted connection has no provider URL or key: its runs report "
                "through Tuneboard's API with the members' API tokens.",
            )
        if data.get("api_version") and data.get("kind") != ProviderConnection.Kind.AZURE_OPENAI:
            self.add_error("api_version", "The API version applies to Azure OpenAI only.")
        rules = data.get("guardrail_defaults")
        if rules is None:
            data["guardrail_defaults"] = []
        elif not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            self.add_error("guardrail_defaults", "A list of rules: [{kind, params, action}, …].")
        else:
            kind = data.get("kind") or ProviderConnection.Kind.OPENAI
            problem = guardrails_problem(ProviderConnection(kind=kind), rules)
            if problem:
                self.add_error("guardrail_defaults", problem)
        return data


# --- Launch -----------------------------------------------------------------------------------


class HyperparameterField(forms.Field):
    """ "auto" (or empty) → None, else a number (an integer for integer hyperparameters). The
    allowed ranges are launch rules, checked by ``jobs.services.job_launch``; the message for
    text that is no number is the rule's."""

    widget = forms.TextInput

    def __init__(self, *, key: str, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        rule = HYPERPARAMETER_RULES[key]
        self.integer = rule.integer
        self.message = rule.message
        self.widget.attrs.update(
            {
                "placeholder": "auto",
                "inputmode": "numeric" if rule.integer else "decimal",
                "size": 8,
            }
        )

    def to_python(self, value: Any) -> int | float | None:
        text = str(value or "").strip().lower()
        if text in ("", "auto"):
            return None
        try:
            number: int | float = int(text) if self.integer else float(text)
        except ValueError:
            raise forms.ValidationError(self.message, code="invalid") from None
        if not math.isfinite(number):
            raise forms.ValidationError(self.message, code="invalid")
        return number


def plain_number(value: Any) -> str:
    """A parameter's number as a person writes it (1e-05, 0.1, 8)."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class DeclaredNumberField(forms.Field):
    """A number parameter an adapter declares: empty (or "auto" where the provider chooses)
    → None, the provider's default; else the number. Its range is a launch rule (within the
    chosen model's limits), checked by ``jobs.services.job_launch``."""

    widget = forms.TextInput

    def __init__(self, *, parameter: Parameter, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.parameter = parameter
        default = "auto" if parameter.default is None else plain_number(parameter.default)
        self.widget.attrs.update(
            {
                "placeholder": default,
                "inputmode": "numeric" if parameter.kind == "int" else "decimal",
                "size": 8,
            }
        )

    def to_python(self, value: Any) -> int | float | None:
        text = str(value or "").strip().lower()
        if text == "" or (self.parameter.auto and text in ("auto", "max")):
            return None
        what = "a whole number" if self.parameter.kind == "int" else "a number"
        message = f"{self.parameter.label} must be {what}" + (
            " or “auto”." if self.parameter.auto else "."
        )
        try:
            number: int | float = int(text) if self.parameter.kind == "int" else float(text)
        except ValueError:
            raise forms.ValidationError(message, code="invalid") from None
        if not math.isfinite(number):
            raise forms.ValidationError(message, code="invalid")
        return number


def declared_field(parameter: Parameter) -> forms.Field:
    label = f"{parameter.label} ({parameter.unit})" if parameter.unit else parameter.label
    if parameter.kind == "choice":
        default = "provider's choice" if parameter.default is None else parameter.default
        options = [c for c in parameter.choices if c != "auto"]
        return forms.TypedChoiceField(
            required=False,
            empty_value=None,
            label=label,
            help_text=parameter.help,
            choices=[("", f"Default ({default})"), *((c, c) for c in options)],
        )
    return DeclaredNumberField(parameter=parameter, label=label, help_text=parameter.help)


@dataclass(frozen=True)
class HyperparameterRow:
    """One hyperparameter as the launch page shows it."""

    field: BoundField
    parameter: Parameter
    estimated: bool  # its default is Tuneboard's estimate of the provider's "auto" for the data

    @property
    def default_text(self) -> str:
        return self.default_of(self.parameter)

    @property
    def range_text(self) -> str:
        return self.range_of(self.parameter)

    @staticmethod
    def default_of(p: Parameter) -> str:
        return p.auto_text if p.default is None else plain_number(p.default)

    @staticmethod
    def range_of(p: Parameter) -> str:
        if p.kind == "choice":
            return ", ".join(c for c in p.choices if c != "auto")
        if p.low is None or p.high is None:
            return ""
        return f"{plain_number(p.low)}–{plain_number(p.high)}"


class OptionSelect(forms.Select):
    """A select whose options can carry data attributes (e.g. the connection of a model)."""

    def __init__(
        self, *args: Any, option_attrs: dict[str, dict[str, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.option_attrs = option_attrs or {}

    def create_option(
        self,
        name: str,
        value: Any,
        label: Any,
        selected: Any,
        index: int,
        subindex: int | None = None,
        attrs: dict | None = None,
    ) -> dict[str, Any]:
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        option["attrs"].update(self.option_attrs.get(str(value), {}))
        return option


HELP = {
    "n_epochs": (
        "Passes over the training data, 1–50. Too few epochs underfit (the model barely picks "
        "up the examples' style); too many overfit (it memorises them, and validation loss "
        "starts rising while training loss keeps falling). Adjust by 1–2 from the default."
    ),
    "batch_size": (
        "Examples per training step, 1–256. Larger batches make smoother, more stable updates "
        "but fewer of them per epoch; smaller batches update more often, with noisier steps. "
        "“auto” is about 0.2% of the examples."
    ),
    "learning_rate_multiplier": (
        "Scales the provider's base learning rate; any number above 0. OpenAI suggests trying "
        "values from 0.02 to 0.2 — larger multipliers tend to suit larger batches. Lower it if "
        "training is unstable; raise it if the model underfits."
    ),
    "beta": (
        "DPO only, above 0 and at most 2. How closely the model stays to its reference: a "
        "higher β is more conservative, a lower β follows the preference pairs more strongly."
    ),
}


class GuardrailFields(forms.Form):
    """The guardrail fields of the launch and sweep forms, prefilled from the chosen
    connection's defaults (``jobs.guardrails``). Subclasses set ``chosen_connection`` and
    ``traits`` before calling ``_guard_setup``."""

    chosen_connection: ProviderConnection | None
    traits: Traits

    # Guardrails at launch: prefilled from the connection's defaults (jobs.guardrails).
    guard_overfitting = forms.ChoiceField(
        required=False, label="When it overfits",
        help_text="Validation loss rising at 3 evaluations in a row while training loss falls.",
    )  # fmt: skip
    guard_divergence = forms.ChoiceField(
        required=False, label="When it diverges",
        help_text="A loss spike (3× the recent median) or a loss that is not a number.",
    )  # fmt: skip
    guard_time_limit = forms.IntegerField(
        required=False, min_value=1, max_value=525_600, label="Cancel after (minutes)",
        help_text="Running time; empty: no limit.",
    )  # fmt: skip
    guard_spend_cap = forms.FloatField(
        required=False, min_value=0, max_value=1e9, label="Cancel above (USD)",
        help_text="Trained tokens so far × the price; empty: no cap.",
    )  # fmt: skip
    GUARDS = ("guard_overfitting", "guard_divergence", "guard_time_limit", "guard_spend_cap")

    def _guard_setup(self) -> None:
        actions = [("", "Do nothing")] + [
            (a, a.capitalize())
            for a in guardrail_rules.ACTIONS
            if a != "pause" or self.traits.pauses
        ]
        for name in ("guard_overfitting", "guard_divergence"):
            self.fields[name].choices = actions  # type: ignore[attr-defined]
        if self.is_bound or self.chosen_connection is None:
            return
        for rule in self.chosen_connection.guardrail_defaults or []:
            kind, params = rule.get("kind"), rule.get("params") or {}
            if kind in ("overfitting", "divergence"):
                self.initial.setdefault(f"guard_{kind}", rule.get("action", "notify"))
            elif kind == "time_limit" and "minutes" in params:
                self.initial.setdefault("guard_time_limit", int(params["minutes"]))
            elif kind == "spend_cap" and "usd" in params:
                self.initial.setdefault("guard_spend_cap", params["usd"])

    def guardrails(self) -> tuple[dict[str, Any], ...]:
        """The rules chosen on the form; a kind the connection's defaults also name keeps
        their parameters (and accuracy stuck, which the form does not show, comes along)."""
        data = self.cleaned_data
        defaults = {
            r.get("kind"): r
            for r in (self.chosen_connection.guardrail_defaults if self.chosen_connection else [])
            or []
        }
        rules: list[dict[str, Any]] = []
        for kind in ("overfitting", "divergence"):
            action = data.get(f"guard_{kind}")
            if action:
                rules.append({"kind": kind, "params": defaults.get(kind, {}).get("params") or {},
                              "action": action})  # fmt: skip
        if data.get("guard_time_limit"):
            rules.append({"kind": "time_limit", "params": {"minutes": data["guard_time_limit"]},
                          "action": "cancel"})  # fmt: skip
        if data.get("guard_spend_cap") is not None:
            rules.append({"kind": "spend_cap", "params": {"usd": data["guard_spend_cap"]},
                          "action": "cancel"})  # fmt: skip
        if "accuracy_stuck" in defaults:
            rules.append(defaults["accuracy_stuck"])
        return tuple(rules)


class LaunchForm(GuardrailFields):
    connection = forms.TypedChoiceField(
        coerce=int, label="Provider connection", help_text="Enabled connections with an API key."
    )
    base_model = forms.ChoiceField(
        label="Base model",
        widget=OptionSelect,
        help_text="A catalog model, or a model fine-tuned on this connection to continue training it.",
    )
    training_dataset = forms.TypedChoiceField(
        coerce=int,
        label="Training dataset",
        help_text="Only datasets that passed validation.",
        error_messages={
            "invalid_choice": "Choose a training dataset that passed validation for this provider."
        },
    )
    validation_dataset = forms.TypedChoiceField(
        coerce=int,
        required=False,
        empty_value=None,
        label="Validation dataset (optional)",
        error_messages={
            "invalid_choice": "Choose a validation dataset that passed validation for this provider."
        },
    )
    method = forms.ChoiceField(choices=Job.Method.choices, initial=Job.Method.SUPERVISED)
    n_epochs = HyperparameterField(key="n_epochs", label="Epochs", help_text=HELP["n_epochs"])
    batch_size = HyperparameterField(
        key="batch_size", label="Batch size", help_text=HELP["batch_size"]
    )
    learning_rate_multiplier = HyperparameterField(
        key="learning_rate_multiplier",
        label="Learning-rate multiplier",
        help_text=HELP["learning_rate_multiplier"],
    )
    beta = HyperparameterField(key="beta", label="β (DPO)", help_text=HELP["beta"])
    suffix = forms.CharField(
        required=False,
        max_length=64,
        help_text="Up to 64 characters, no colons or spaces; becomes part of the model name.",
    )
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_SEED,
        help_text="Same seed and data give a reproducible job; empty lets the provider pick.",
    )
    wandb_project = forms.CharField(required=False, max_length=200, label="W&B project")
    wandb_entity = forms.CharField(required=False, max_length=200, label="W&B entity")
    wandb_name = forms.CharField(required=False, max_length=200, label="W&B run name")
    wandb_tags = forms.CharField(
        required=False, max_length=1000, label="W&B tags", help_text="Comma-separated."
    )
    name = forms.CharField(required=False, max_length=200, help_text="Our name for the run.")
    notes = forms.CharField(
        required=False, max_length=NOTES_MAX, widget=forms.Textarea(attrs={"rows": 3})
    )
    tags = forms.CharField(
        required=False, max_length=1000, help_text="Comma-separated, e.g. support, v2."
    )
    cloned_from = forms.UUIDField(required=False, widget=forms.HiddenInput)
    accept_warnings = forms.BooleanField(
        required=False, label="Launch anyway", help_text="Despite the warnings above."
    )

    HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier", "beta")
    WANDB = ("wandb_project", "wandb_entity", "wandb_name", "wandb_tags")

    def __init__(self, *args: Any, options: selectors.LaunchOptions, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options = options
        self.fields["connection"].choices = [(c.pk, c.name) for c in options.connections]
        self.chosen_connection = self._connection_shown()
        self.traits: Traits = traits(
            self.chosen_connection.kind if self.chosen_connection else "openai"
        )
        self._declare_hyperparameters()
        self._guard_setup()
        family = self.traits.family
        self.family_connections = [
            c.pk for c in options.connections if traits(c.kind).family == family
        ]
        self.catalog_models = [m for m in options.models.values() if m.provider_kind == family]
        catalog = [
            (m.pk, f"{m.pk} (shut down)" if m.is_shut_down() else m.pk) for m in self.catalog_models
        ]
        self._default_base_model()
        names = {c.pk: c.name for c in options.connections}
        grouped: dict[int, list[tuple[str, str]]] = {}
        for tuned in options.fine_tuned:
            if tuned.connection_id in self.family_connections and self.traits.continues_fine_tuned:
                grouped.setdefault(tuned.connection_id, []).append((tuned.name, tuned.name))
        self.fields["base_model"].widget.option_attrs = {
            t.name: {"data-connection": str(t.connection_id)} for t in options.fine_tuned
        }
        self.fields["base_model"].choices = [
            ("Catalog models", catalog),
            *((f"Fine-tuned on {names[pk]}", items) for pk, items in grouped.items()),
        ]
        # Only the datasets this connection's provider family accepts.
        datasets = [
            (d.id, f"{d.name} (#{d.id}, {d.n_examples:,} examples)")
            for d in options.datasets.values()
            if d.trains_on(family)
        ]
        # A placeholder rather than the first dataset when nothing fits (none valid for
        # training, or a ``?dataset=`` that names no valid dataset): no silent substitute.
        self.fields["training_dataset"].choices = [("", "Choose a training dataset"), *datasets]
        self.fields["validation_dataset"].choices = [("", "None"), *datasets]
        self.fields["suffix"].max_length = self.traits.suffix_max
        self.fields["suffix"].widget.attrs["maxlength"] = str(self.traits.suffix_max)
        self.fields["suffix"].help_text = (
            f"Up to {self.traits.suffix_max} characters: letters, digits, hyphens and "
            "underscores; becomes part of the model name."
        )

    def _connection_shown(self) -> ProviderConnection | None:
        """The connection the form is for: the submitted or initial one, else the first."""
        value = self["connection"].value()
        by_pk = {c.pk: c for c in self.options.connections}
        try:
            chosen = by_pk.get(int(value)) if value not in (None, "") else None
        except (TypeError, ValueError):
            chosen = None
        return chosen or (self.options.connections[0] if self.options.connections else None)

    def _declare_hyperparameters(self) -> None:
        """OpenAI-compatible connections keep their fields (and messages); other adapters get
        one field per parameter they declare; W&B only where the provider reports to it."""
        declared = self.traits.parameters
        self.declared = declared
        if declared == parameters.OPENAI:
            self.hyperparameter_names: tuple[str, ...] = self.HYPERPARAMETERS
        else:
            for name in self.HYPERPARAMETERS:
                del self.fields[name]
            for parameter in declared:
                self.fields[parameter.name] = declared_field(parameter)
            self.hyperparameter_names = tuple(p.name for p in declared)
        if not self.traits.wandb_integration:
            for name in self.WANDB:
                del self.fields[name]

    def _default_base_model(self) -> None:
        """A base model of this connection's catalog when the initial one is another's."""
        if self.is_bound or not self.catalog_models:
            return
        names = {m.pk for m in self.catalog_models}
        if self.initial.get("base_model") not in names:
            live = [m.pk for m in self.catalog_models if not m.is_shut_down()]
            self.initial["base_model"] = (live or sorted(names))[0]

    def js_data(self) -> dict[str, Any]:
        """For the page's script: each connection's catalog family (choosing one of another
        family reloads the page with its parameters), when each parameter applies, and each
        model's ranges for each method and training type."""
        declared = self.declared
        data: dict[str, Any] = {
            "family": self.traits.family,
            "families": {str(c.pk): traits(c.kind).family for c in self.options.connections},
            "parameters": [
                {"name": p.name, "methods": list(p.methods), "only_when": p.only_when}
                for p in declared
            ],
            "ranges": {},
        }
        if declared == parameters.OPENAI or self.chosen_connection is None:
            return data
        variants = [
            (method, training) for method in Job.Method.values for training in ("lora", "full")
        ]
        for model in self.catalog_models:
            per_variant = {}
            for method, training in variants:
                bounded = launch_parameters(
                    kind=self.chosen_connection.kind,
                    model=model,
                    method=method,
                    hyperparameters={"training_type": training},
                )
                per_variant[f"{method}/{training}"] = {
                    p.name: [HyperparameterRow.range_of(p), HyperparameterRow.default_of(p)]
                    for p in bounded
                    if p.kind in ("int", "float")
                }
            data["ranges"][model.pk] = per_variant
        return data

    def hyperparameter_rows(self) -> list[HyperparameterRow]:
        model = self.options.models.get(str(self.shown("base_model") or ""))
        method = str(self.shown("method") or "supervised")
        training_type = (
            str(self["training_type"].value() or "") if "training_type" in self.fields else ""
        )
        bounded = parameters.by_name(
            launch_parameters(
                kind=self.traits.family
                if self.chosen_connection is None
                else self.chosen_connection.kind,
                model=model,
                method=method,
                hyperparameters={"training_type": training_type or "lora"},
            )
        )
        estimated = self.declared == parameters.OPENAI
        return [
            HyperparameterRow(self[name], bounded[name], estimated and name != "beta")
            for name in self.hyperparameter_names
        ]

    # --- field checks (shape only: the launch rules are ``services.job_launch``'s) ----------

    def clean_tags(self) -> list[str]:
        return parse_tags(self.cleaned_data.get("tags") or "")

    def clean_wandb_tags(self) -> list[str]:
        return parse_tags(self.cleaned_data.get("wandb_tags") or "")

    def add_launch_error(self, error: JobError) -> None:
        """Show what ``services.job_launch`` refused on the fields it names (every problem of
        a ``LaunchRejected``); one about no field of this form goes above the form."""
        for problem in getattr(error, "problems", [error]):
            field = problem.field if problem.field in self.fields else None
            self.add_error(field, problem.message)

    # --- what the page shows -------------------------------------------------------------------

    def shown(self, name: str) -> Any:
        """The value the form shows for ``name`` (submitted, else initial, else the first
        choice)."""
        value = self[name].value()
        choices = list(getattr(self.fields[name], "choices", None) or [])
        if value in (None, "") and choices:
            first = choices[0][1]
            value = first[0][0] if isinstance(first, list | tuple) and first else choices[0][0]
        return value

    def estimate_inputs(self) -> dict[str, Any]:
        """The training dataset id, base model and epochs shown, as plain values for
        ``selectors.launch_page_estimate``; epochs that are not a number, or were refused, are
        None ("auto")."""
        try:
            dataset: int | None = int(self.shown("training_dataset"))
        except (TypeError, ValueError):
            dataset = None
        epochs = None
        if "n_epochs" in self.fields and not (self.is_bound and self.has_error("n_epochs")):
            try:
                epochs = self.fields["n_epochs"].to_python(self["n_epochs"].value())
            except forms.ValidationError:
                epochs = None
        declared = parameters.by_name(self.declared).get("n_epochs")
        if epochs is None and declared is not None and declared.default is not None:
            epochs = declared.default  # the provider's default, not an "auto" to estimate
        return {
            "training_dataset": dataset,
            "base_model": str(self.shown("base_model") or ""),
            "n_epochs": epochs,
        }

    # --- output --------------------------------------------------------------------------------

    def hyperparameters(self) -> dict[str, int | float | str]:
        """The values set explicitly. OpenAI's: all of them (the service refuses those the
        method does not take). Declared ones: those that apply to the chosen method and
        settings (the page hides the others, so a value left in a hidden field is dropped)."""
        data = self.cleaned_data
        chosen = {k: data[k] for k in self.hyperparameter_names if data.get(k) is not None}
        if self.declared == parameters.OPENAI:
            return chosen
        method = str(data.get("method") or "supervised")
        by_name = parameters.by_name(self.declared)
        return {
            k: v
            for k, v in chosen.items()
            if parameters.applies(by_name[k], method=method, values=chosen, declared=self.declared)
        }

    def integrations(self) -> list[dict[str, Any]]:
        data = self.cleaned_data
        if not any(data.get(f"wandb_{key}") for key in ("project", "entity", "name", "tags")):
            return []
        wandb: dict[str, Any] = {"project": data.get("wandb_project") or ""}
        for key in ("entity", "name"):
            if data.get(f"wandb_{key}"):
                wandb[key] = data[f"wandb_{key}"]
        if data.get("wandb_tags"):
            wandb["tags"] = data["wandb_tags"]
        return [{"type": "wandb", "wandb": wandb}]

    def launch_request(self, *, cloned_from: Job | None) -> LaunchRequest:
        data = self.cleaned_data
        connection = next(c for c in self.options.connections if c.pk == data["connection"])
        validation = data.get("validation_dataset")
        return LaunchRequest(
            connection=connection,
            base_model=data["base_model"],
            training_dataset=Dataset(pk=data["training_dataset"]),
            validation_dataset=Dataset(pk=validation) if validation else None,
            method=data["method"],
            hyperparameters=self.hyperparameters(),
            suffix=data["suffix"],
            seed=data["seed"],
            integrations=self.integrations(),
            name=data["name"],
            notes=data["notes"],
            tags=data["tags"],
            cloned_from=cloned_from,
            guardrails=self.guardrails(),
        )


def launch_initial_from(job: Job) -> dict[str, Any]:
    """A launch form pre-filled from an existing job ("Clone as new job")."""
    requested = job.requested_hyperparameters or {}
    initial: dict[str, Any] = {
        "connection": job.connection_id,
        "base_model": job.base_model,
        "training_dataset": job.training_dataset_id,
        "validation_dataset": job.validation_dataset_id,
        "method": job.method,
        "suffix": job.suffix,
        "seed": job.seed,
        "name": f"{job.name} (clone)" if job.name else "",
        "notes": job.notes,
        "tags": ", ".join(job.tags or []),
        "cloned_from": job.pk,
    }
    declared = traits(job.connection.kind).parameters
    if declared == parameters.OPENAI:
        for key in LaunchForm.HYPERPARAMETERS:
            value = requested.get(key)
            initial[key] = "auto" if value in (None, "auto") else value
    else:
        for parameter in declared:
            value = requested.get(parameter.name)
            if value not in (None, "auto"):
                initial[parameter.name] = value
    for integration in job.integrations or []:
        wandb = integration.get("wandb") if isinstance(integration, dict) else None
        if integration.get("type") == "wandb" and isinstance(wandb, dict):
            initial["wandb_project"] = wandb.get("project") or ""
            initial["wandb_entity"] = wandb.get("entity") or ""
            initial["wandb_name"] = wandb.get("name") or ""
            initial["wandb_tags"] = ", ".join(wandb.get("tags") or [])
            break
    return initial


# --- Annotations -------------------------------------------------------------------------------


class AnnotateForm(forms.Form):
    name = forms.CharField(required=False, max_length=200)
    notes = forms.CharField(
        required=False, max_length=NOTES_MAX, widget=forms.Textarea(attrs={"rows": 4})
    )
    tags = forms.CharField(required=False, max_length=1000, help_text="Comma-separated.")

    def clean_tags(self) -> list[str]:
        return parse_tags(self.cleaned_data.get("tags") or "")


class DeleteModelForm(forms.Form):
    confirm = forms.BooleanField(
        required=True,
        label="I understand the fine-tuned model will be deleted at the provider.",
        error_messages={"required": "Tick the box to confirm."},
    )


# --- History: archive, bundles, audit log, notifications -------------------------------------


class ArchiveForm(forms.Form):
    confirm = forms.BooleanField(
        label="Remove the API key and stop talking to this provider",
        help_text="Jobs, curves, checkpoints, datasets and share links stay readable.",
        error_messages={"required": "Tick the box to archive the connection."},
    )


class BundleUploadForm(forms.Form):
    bundle = forms.FileField(
        label="Export bundle (.zip)",
        help_text="A file downloaded with “Export” from a Tuneboard.",
    )


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False)
    actor = forms.CharField(required=False, max_length=150, label="Who (user name)")
    object_type = forms.ChoiceField(required=False, label="Object type")

    def __init__(self, *args: Any, actions: list[str], object_types: list[str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "Any action")] + [(a, a) for a in actions]
        self.fields["object_type"].choices = [("", "Any type")] + [(t, t) for t in object_types]

    def filters(self) -> dict[str, str]:
        if not self.is_valid():
            return {}
        return {k: v.strip() for k, v in self.cleaned_data.items() if v and v.strip()}


class NotificationForm(forms.Form):
    email = forms.EmailField(required=False, label="Your email address")
    email_enabled = forms.BooleanField(
        required=False, label="Email me when a job I launched finishes"
    )
    slack_webhook_url = WebhookURLField(
        required=False,
        max_length=500,
        label="Slack webhook URL",
        help_text="Optional; a Slack-compatible incoming webhook posted to when your jobs finish.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("email_enabled") and not data.get("email"):
            self.add_error("email", "Enter the address to send the emails to.")
        return data


class GuardrailForm(forms.Form):
    """One guardrail of a job, added or changed from the run page."""

    kind = forms.ChoiceField(
        label="Rule", choices=[(k, v) for k, v in guardrail_rules.LABELS.items()]
    )
    action = forms.ChoiceField(
        label="Then", choices=[(a, a.capitalize()) for a in guardrail_rules.ACTIONS]
    )
    params = forms.CharField(
        label="Parameters",
        required=False,
        max_length=200,
        help_text="name=value pairs, e.g. evals=3, rise_pct=1 (empty: the defaults).",
    )
    enabled = forms.BooleanField(label="On", required=False, initial=True)

    def clean_params(self) -> dict[str, float]:
        text = self.cleaned_data.get("params") or ""
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
            name, sep, raw = part.partition("=")
            try:
                if not sep:
                    raise ValueError
                values[name.strip()] = float(raw)
            except ValueError:
                raise forms.ValidationError(f"“{part}” is not name=number.") from None
        return values

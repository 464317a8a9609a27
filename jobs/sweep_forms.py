"""The sweep page's form: a connection, a frozen training (and validation) dataset, the values
each dimension tries, a hard budget and a concurrency limit. The dimensions are the chosen
connection's declared parameters (``jobs.providers.parameters``), so a page never names a
provider's parameters itself."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from django import forms

from datasets.models import Dataset
from jobs import selectors
from jobs.forms import GuardrailFields
from jobs.models import Job, ProviderConnection, Sweep
from jobs.providers import Parameter, traits
from jobs.services import launch_parameters
from jobs.sweep_plans import MAX_CONCURRENCY, SweepRequest
from jobs.sweep_space import MAX_RUNS, SpaceError, Values, parse_models, parse_seeds, parse_values

PARAMETER_PREFIX = "p_"


def sweep_connections(options: selectors.LaunchOptions) -> list[ProviderConnection]:
    return [c for c in options.connections if traits(c.kind).hosted]


def sweep_parameters(*, kind: str, method: str) -> tuple[Parameter, ...]:
    """The parameters a sweep on a connection of ``kind`` may vary: the adapter's declared
    numbers and choices for ``method``."""
    declared = launch_parameters(kind=kind, model=None, method=method, hyperparameters={})
    return tuple(
        p for p in declared if method in p.methods and p.kind in ("int", "float", "choice")
    )


class SweepForm(GuardrailFields):
    connection = forms.ChoiceField(label="Connection")
    name = forms.CharField(required=False, max_length=150, label="Name")
    training_dataset = forms.ChoiceField(label="Training dataset")
    validation_dataset = forms.ChoiceField(
        required=False,
        label="Validation dataset",
        help_text="Needed for validation and full-validation loss, which pick the best run.",
    )
    method = forms.ChoiceField(label="Method", choices=Job.Method.choices, initial="supervised")
    base_models = forms.MultipleChoiceField(
        label="Base models", help_text="Each chosen model is a dimension of the sweep."
    )
    mode = forms.ChoiceField(
        label="Search", choices=Sweep.Mode.choices, initial="grid", widget=forms.RadioSelect
    )
    samples = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_RUNS, label="Runs to draw",
        help_text=f"Random search: how many runs to draw (at most {MAX_RUNS}).",
    )  # fmt: skip
    sample_seed = forms.IntegerField(
        required=False, min_value=0, max_value=2_147_483_647, initial=0, label="Draw seed",
        help_text="The same seed draws the same runs.",
    )  # fmt: skip
    seeds = forms.CharField(
        required=False, max_length=500, label="Training seeds",
        help_text="Comma-separated; each seed repeats every combination. Empty: the provider's.",
    )  # fmt: skip
    budget_usd = forms.DecimalField(
        min_value=Decimal("0.01"), max_digits=12, decimal_places=2, label="Budget (USD)",
        help_text="A hard limit: a plan over it is refused, and no run is launched that would "
        "take actual plus planned spend over it.",
    )  # fmt: skip
    concurrency = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_CONCURRENCY, label="Runs at a time",
    )  # fmt: skip

    def __init__(self, *args: Any, options: selectors.LaunchOptions, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options = options
        connections = sweep_connections(options)
        self._choice_field("connection").choices = [(c.pk, c.name) for c in connections]
        wanted = str(self.data.get("connection") or self.initial.get("connection") or "")
        self.chosen_connection = next(
            (c for c in connections if str(c.pk) == wanted), connections[0] if connections else None
        )
        self.traits = traits(self.chosen_connection.kind if self.chosen_connection else "openai")
        self._guard_setup()
        family = self.traits.family
        datasets = [(f.id, f.name) for f in options.datasets.values() if f.trains_on(family)]
        self._choice_field("training_dataset").choices = datasets
        self._choice_field("validation_dataset").choices = [("", "None"), *datasets]
        models = [m.pk for m in options.models.values() if m.provider_kind == family]
        models += [t.name for t in options.fine_tuned if t.connection_id == getattr(
            self.chosen_connection, "pk", None)]  # fmt: skip
        self._choice_field("base_models").choices = [(m, m) for m in models]
        self.fields["base_models"].widget.attrs["size"] = min(8, max(2, len(models)))
        self.fields["concurrency"].help_text = (
            f"Default: {self.traits.active_jobs} for {self.traits.label} connections; the "
            "rest wait in Tuneboard's queue."
        )
        self.parameters = self._parameters()
        for parameter in self.parameters:
            self.fields[PARAMETER_PREFIX + parameter.name] = forms.CharField(
                required=False,
                max_length=500,
                label=parameter.label + (f" ({parameter.unit})" if parameter.unit else ""),
                help_text=self._parameter_help(parameter),
            )

    def _choice_field(self, name: str) -> forms.ChoiceField:
        return cast(forms.ChoiceField, self.fields[name])

    def _parameters(self) -> tuple[Parameter, ...]:
        method = str(self.data.get("method") or self.initial.get("method") or "supervised")
        kind = self.chosen_connection.kind if self.chosen_connection else "openai"
        return sweep_parameters(kind=kind, method=method)

    @staticmethod
    def _parameter_help(parameter: Parameter) -> str:
        default = f"the provider's {parameter.auto_text}" if parameter.auto else (
            f"{parameter.default}")  # fmt: skip
        if parameter.kind == "choice":
            return f"Any of {', '.join(parameter.choices)}, comma-separated. Empty: {default}."
        return (
            f"{parameter.help} Values from {parameter.low:g} to {parameter.high:g}, "
            f"comma-separated (random search: or a range such as "
            f"{parameter.low if parameter.low else 1:g}..{parameter.high:g}). Empty: {default}."
        )

    def parameter_fields(self) -> list[forms.BoundField]:
        return [self[PARAMETER_PREFIX + p.name] for p in self.parameters]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") == "random" and not data.get("samples"):
            self.add_error("samples", "Say how many runs to draw.")
        space: dict[str, Values] = {}
        try:
            space["base_model"] = parse_models(",".join(data.get("base_models") or []))
        except SpaceError as exc:
            self.add_error("base_models", str(exc))
        for parameter in self.parameters:
            key = PARAMETER_PREFIX + parameter.name
            try:
                space[parameter.name] = parse_values(
                    data.get(key) or "", parameter, mode=data.get("mode") or "grid"
                )
            except SpaceError as exc:
                self.add_error(key, str(exc))
        try:
            space["seed"] = parse_seeds(data.get("seeds") or "")
        except SpaceError as exc:
            self.add_error("seeds", str(exc))
        self.space = space
        return data

    def sweep_request(self) -> SweepRequest:
        data = self.cleaned_data
        assert self.chosen_connection is not None
        validation = data.get("validation_dataset")
        return SweepRequest(
            name=data.get("name") or "",
            connection=self.chosen_connection,
            training_dataset=Dataset.objects.get(pk=int(data["training_dataset"])),
            validation_dataset=Dataset.objects.get(pk=int(validation)) if validation else None,
            space=self.space,
            budget_usd=data["budget_usd"],
            mode=data["mode"],
            method=data["method"],
            samples=data.get("samples"),
            sample_seed=data.get("sample_seed") or 0,
            concurrency=data.get("concurrency"),
            guardrails=self.guardrails(),
        )

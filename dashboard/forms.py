"""Forms of the cross-run pages: the runs-list filters, inline tags and notes, chart options and
share links. They validate and shape input; reads and writes happen elsewhere."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone

from core.tags import MAX_TAG_LENGTH, MAX_TAGS, parse_tags
from dashboard.charts import X_AXES
from dashboard.selectors_runs import DEFAULT_SORT, SORTS, ChartOptions, RunFilters
from jobs.models import Job

NOTES_MAX = 10_000
EXPIRY_CHOICES = (
    ("", "Never"),
    ("1", "1 day"),
    ("7", "7 days"),
    ("30", "30 days"),
    ("90", "90 days"),
)


# A day's bounds are computed in the current time zone, one day later for "until": dates this
# far from the edges of datetime stay computable (9999-12-31 overflowed into a 500).
FIRST_DATE, LAST_DATE = date(1970, 1, 1), date(9998, 12, 31)
MAX_ID = 2**63 - 1  # PostgreSQL bigint


def id_field() -> forms.IntegerField:
    return forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)


def date_field(label: str) -> forms.DateField:
    return forms.DateField(
        required=False,
        label=label,
        validators=[MinValueValidator(FIRST_DATE), MaxValueValidator(LAST_DATE)],
    )


class RunFilterForm(forms.Form):
    """The runs list's GET parameters; anything invalid is ignored (and shown as an error)."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Job.Status.choices])
    provider = id_field()
    base_model = forms.CharField(required=False, max_length=300, label="Base model")
    dataset = id_field()
    tag = forms.CharField(required=False, max_length=MAX_TAG_LENGTH)
    creator = id_field()
    created_from = date_field("Created from")
    created_to = date_field("Created until")
    archived = forms.ChoiceField(
        required=False,
        choices=[("", "Hide archived"), ("include", "Include archived"), ("only", "Only archived")],
    )
    sort = forms.ChoiceField(required=False, choices=list(SORTS.items()))
    dir = forms.ChoiceField(required=False, choices=[("desc", "desc"), ("asc", "asc")])

    def filters(self) -> RunFilters:
        data: dict[str, Any] = self.cleaned_data if self.is_valid() else self._valid_part()
        return RunFilters(
            q=data.get("q") or "",
            status=data.get("status") or "",
            connection=data.get("provider"),
            base_model=data.get("base_model") or "",
            dataset=data.get("dataset"),
            tag=(data.get("tag") or "").strip(),
            creator=data.get("creator"),
            created_from=data.get("created_from"),
            created_to=data.get("created_to"),
            archived=data.get("archived") or "",
            sort=data.get("sort") or DEFAULT_SORT,
            descending=(data.get("dir") or "desc") == "desc",
        )

    def _valid_part(self) -> dict[str, Any]:
        # is_valid() has run: cleaned_data holds the fields that were valid.
        return {name: value for name, value in self.cleaned_data.items() if name not in self.errors}


class TagsForm(forms.Form):
    tags = forms.CharField(required=False, max_length=MAX_TAGS * (MAX_TAG_LENGTH + 2))

    def clean_tags(self) -> list[str]:
        return parse_tags(self.cleaned_data["tags"])


class NotesForm(forms.Form):
    notes = forms.CharField(
        required=False, max_length=NOTES_MAX, strip=True, widget=forms.Textarea(attrs={"rows": 3})
    )


class ChartOptionsForm(forms.Form):
    x_axis = forms.ChoiceField(required=False, choices=[(axis, axis) for axis in X_AXES])
    log_y = forms.BooleanField(required=False)
    smoothing = forms.FloatField(required=False, min_value=0, max_value=0.99)

    def options(self) -> ChartOptions:
        if not self.is_valid():
            return ChartOptions()
        data = self.cleaned_data
        return ChartOptions(
            x_axis=data.get("x_axis") or "step",
            log_y=bool(data.get("log_y")),
            smoothing=float(data.get("smoothing") or 0.0),
        )


class ShareLinkBaseForm(forms.Form):
    """What every share link asks: a title and when it expires."""

    label = forms.CharField(required=False, max_length=200)
    expires_in_days = forms.ChoiceField(required=False, choices=EXPIRY_CHOICES, label="Expires")

    def expires_at(self) -> Any:
        days = self.cleaned_data.get("expires_in_days")
        return timezone.now() + timedelta(days=int(days)) if days else None


class ShareLinkForm(ShareLinkBaseForm):
    """A run (``job``), a comparison (``runs``: ids, comma-separated) or, posted to an
    evaluation's share URL, an evaluation with or without its outputs."""

    job = forms.UUIDField(required=False)
    runs = forms.CharField(required=False, max_length=20 * 40)
    include_outputs = forms.BooleanField(
        required=False,
        label="include prompts, references and outputs",
        help_text="Without it the link shows only the summary and the chart.",
    )

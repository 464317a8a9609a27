from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from django import forms

from core.tags import parse_tags as _parse_tags
from datasets import selectors
from datasets.derive import MAX_SEED
from datasets.models import MAX_TAG_LENGTH, BaseModel, Dataset


def parse_tags(text: str) -> list[str]:
    """Dataset tags are matched case-insensitively, so they are stored lowercased."""
    return _parse_tags(text, lowercase=True)


class ModelField(forms.ModelChoiceField):
    def label_from_instance(self, obj: BaseModel) -> str:
        return f"{obj.id} (shut down)" if obj.is_shut_down() else obj.id


def _model_field(**kwargs: Any) -> ModelField:
    return ModelField(queryset=BaseModel.objects.all(), empty_label=None, **kwargs)


class DatasetUploadForm(forms.Form):
    file = forms.FileField(
        required=False,  # the message for a missing file depends on why (see clean_file)
        label="JSONL file",
        widget=forms.FileInput(attrs={"accept": ".jsonl"}),
    )
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the file name.")
    description = forms.CharField(
        max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    tags = forms.CharField(
        max_length=1000, required=False, help_text="Comma-separated, e.g. support, v2."
    )
    model = _model_field(label="Validate for base model", required=False)

    def __init__(self, *args: Any, upload_error: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.upload_error = upload_error
        if not self.is_bound:
            self.fields["model"].initial = selectors.base_model_default()

    def clean_file(self) -> Any:
        upload = self.cleaned_data.get("file")
        if self.upload_error:
            raise forms.ValidationError(self.upload_error)
        if not upload:
            raise forms.ValidationError("Choose a .jsonl file to upload.")
        return upload

    def clean_tags(self) -> list[str]:
        return parse_tags(self.cleaned_data.get("tags") or "")


class DatasetFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Dataset.Status.choices]
    )
    format = forms.ChoiceField(
        required=False, choices=[("", "Any format"), *Dataset.Format.choices]
    )
    tag = forms.CharField(required=False, max_length=MAX_TAG_LENGTH)

    def filters(self) -> selectors.DatasetFilters:
        if not self.is_valid():
            return selectors.DatasetFilters()
        data = self.cleaned_data
        return selectors.DatasetFilters(
            status=data["status"],
            format=data["format"],
            tag=data["tag"].strip().lower(),
            q=data["q"].strip(),
        )


class ModelChoiceForm(forms.Form):
    model = _model_field()


def _fraction_field(initial: str, label: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        min_value=Decimal(0),
        max_value=Decimal(1),
        max_digits=7,
        decimal_places=6,
        initial=Decimal(initial),
        required=False,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )


def _seed_field() -> forms.IntegerField:
    return forms.IntegerField(
        min_value=0, max_value=MAX_SEED, initial=1, help_text="The same seed gives the same files."
    )


class SplitForm(forms.Form):
    # Shown beside SubsetForm on one page: distinct ids keep each label on its own field.
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "split_%s")
        super().__init__(*args, **kwargs)

    train = _fraction_field("0.8", "Train fraction")
    validation = _fraction_field("0.2", "Validation fraction")
    test = _fraction_field("0", "Test fraction (optional)")
    seed = _seed_field()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        parts = {name: data.get(name) or Decimal(0) for name in ("train", "validation", "test")}
        if not parts["train"] or not parts["validation"]:
            raise forms.ValidationError("Train and validation fractions must be above 0.")
        if sum(parts.values()) != 1:
            raise forms.ValidationError(
                f"The fractions add up to {sum(parts.values())}; they must add up to 1."
            )
        data["fractions"] = {name: Fraction(value) for name, value in parts.items()}
        return data


class SubsetForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "subset_%s")
        super().__init__(*args, **kwargs)

    MODES = [
        ("first", "First N lines"),
        ("random", "N random lines"),
        ("fraction", "A random fraction"),
    ]
    mode = forms.ChoiceField(choices=MODES, initial="random")
    n = forms.IntegerField(min_value=1, required=False, label="N")
    fraction = forms.DecimalField(
        min_value=Decimal("0.000001"),
        max_value=Decimal(1),
        max_digits=7,
        decimal_places=6,
        required=False,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )
    seed = _seed_field()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        mode = data.get("mode")
        if mode in ("first", "random") and not data.get("n"):
            self.add_error("n", "Give the number of lines.")
        if mode == "fraction" and not data.get("fraction"):
            self.add_error("fraction", "Give a fraction between 0 and 1.")
        if data.get("fraction") is not None:
            data["fraction"] = Fraction(data["fraction"])
        return data

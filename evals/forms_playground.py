"""The playground's forms: the conversation and the models to ask, picking an example from a
dataset, and saving the prompt into a test dataset."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.forms.boundfield import BoundWidget

from core.params import whole_number
from datasets.models import Dataset
from evals import playground
from evals.choices import ModelChoice, choice_for_key, model_choices
from evals.playground import (
    DEFAULT_DATASET_NAME,
    MAX_CONVERSATION_BYTES,
    MAX_MODELS,
    PlaygroundError,
    Reply,
)

# Seeds and max tokens travel as JSON numbers: keep them exact in every client.
MAX_SEED = 2**53 - 1
MAX_OUTPUT_TOKENS = 1_000_000


class ModelKeysField(forms.MultipleChoiceField):
    """Model keys, offered from ``model_choices()`` but checked with ``choice_for_key`` (a
    model may have become unavailable since the page was shown): cleans to ModelChoices."""

    def valid_value(self, value: str) -> bool:
        return True  # checked in clean(), with a message that says what is wrong

    def clean(self, value: Any) -> list[ModelChoice]:
        keys = list(dict.fromkeys(super().clean(value)))
        if len(keys) > MAX_MODELS:
            raise forms.ValidationError(
                f"Choose at most {MAX_MODELS} models ({len(keys)} were chosen).", code="too_many"
            )
        resolved = []
        unavailable = []
        for key in keys:
            choice = choice_for_key(str(key)[:200])
            if choice is None:
                unavailable.append(str(key)[:200])
            else:
                resolved.append(choice)
        if unavailable:
            raise forms.ValidationError(
                "Not available any more (its connection is archived or disabled, or the model "
                "was deleted): %(keys)s. Choose another model.",
                code="unavailable",
                params={"keys": ", ".join(unavailable)},
            )
        return resolved


class PlaygroundForm(forms.Form):
    models = ModelKeysField(
        label=f"Models (1 to {MAX_MODELS})",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one model."},
    )
    system = forms.CharField(
        label="System message",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional. Replaces the conversation's own system message, if it has one.",
    )
    conversation = forms.CharField(
        label="Conversation",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
        help_text=(
            "Plain text is one user message. Or paste JSON: a list of messages, or a training "
            'line {"messages": [...]}; a final assistant reply is taken out of the prompt and '
            f"offered as the reference. At most {playground.MAX_MESSAGES} messages, "
            f"{MAX_CONVERSATION_BYTES // 1024} KB."
        ),
        error_messages={"required": "Type or paste a conversation."},
    )
    temperature = forms.FloatField(
        label="Temperature",
        initial=0,
        min_value=0,
        max_value=2,
        widget=forms.NumberInput(attrs={"step": "0.1"}),
    )
    max_tokens = forms.IntegerField(
        label="Max tokens",
        required=False,
        min_value=1,
        max_value=MAX_OUTPUT_TOKENS,
        help_text="Optional: the reply's length limit.",
    )
    seed = forms.IntegerField(
        label="Seed",
        required=False,
        min_value=-MAX_SEED,
        max_value=MAX_SEED,
        help_text="Optional: the same seed asks for the same sample.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.available = model_choices()
        groups: dict[str, list[tuple[str, str]]] = {}
        for choice in self.available:
            groups.setdefault(choice.group, []).append((choice.key, choice.label))
        self.fields["models"].choices = list(groups.items())
        self._group_of = {c.key: c.group for c in self.available}
        self.conversation: playground.Conversation | None = None

    def model_groups(self) -> list[tuple[str, list[BoundWidget]]]:
        """The model checkboxes, grouped by connection and kind, for the template."""
        groups: dict[str, list[BoundWidget]] = {}
        for widget in self["models"].subwidgets:
            groups.setdefault(self._group_of.get(widget.data["value"], ""), []).append(widget)
        return list(groups.items())

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "conversation" in data:
            try:
                self.conversation = playground.parse_conversation(
                    data["conversation"], system=data.get("system") or ""
                )
            except PlaygroundError as exc:
                self.add_error("conversation", exc.message)
        return data


class ExamplePickerForm(forms.Form):
    """``?dataset=<id>&line=<n>``: start from a line of a valid chat dataset."""

    dataset = forms.TypedChoiceField(label="Dataset", coerce=int)
    line = forms.IntegerField(label="Line", min_value=1, initial=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = list(playground.picker_datasets())
        self.fields["dataset"].choices = [("", "Choose a dataset")] + [
            (d.pk, f"{d.name} (#{d.pk}, {d.line_count:,} lines)") for d in options
        ]
        self.example: playground.Conversation | None = None
        self.source: Dataset | None = None

    def clean_dataset(self) -> int:
        pk = self.cleaned_data["dataset"]
        self.source = playground.picker_dataset_get(pk)
        if self.source is None:
            raise forms.ValidationError("Choose a valid chat dataset.")
        return pk

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.source is not None and "line" in data:
            try:
                self.example = playground.dataset_line_conversation(self.source, data["line"])
            except PlaygroundError as exc:
                self.add_error("line", exc.message)
        return data


def _json_list(value: str, what: str) -> list[Any]:
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, list):
        raise forms.ValidationError(f"The {what} were lost on the way; ask the models again.")
    return parsed


class TargetField(forms.ChoiceField):
    """A new dataset (``SaveForm.NEW``) or the id of a dataset the playground made: any
    version, not only the latest ones offered (``SaveForm.full_clean`` looks it up)."""

    def valid_value(self, value: str) -> bool:
        return value == SaveForm.NEW or whole_number(value) is not None


class SaveForm(forms.Form):
    """Save the prompt and a reference. The prompt and the replies come back in hidden fields
    (a member could type any of them anyway); the prompt is checked like a pasted one."""

    NEW = "new"
    EDITED = "edited"
    PASTED = "pasted"

    messages = forms.CharField(widget=forms.HiddenInput, strip=False)
    replies = forms.CharField(widget=forms.HiddenInput, strip=False)
    pasted_reference = forms.CharField(widget=forms.HiddenInput, required=False, strip=False)
    source = forms.ChoiceField(label="Reference", widget=forms.RadioSelect)
    reference = forms.CharField(
        label="Reference answer",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Used when “The text below” is chosen; choosing a reply above copies it here.",
    )
    target = TargetField(label="Save into")
    name = forms.CharField(
        label="Name of the new dataset",
        required=False,
        max_length=200,
        initial=DEFAULT_DATASET_NAME,
    )

    def __init__(self, *args: Any, replies: list[Reply] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if replies is None:
            replies = self._posted_replies()
        self.reply_list = replies
        pasted = (
            self["pasted_reference"].value()
            if self.is_bound
            else self.initial.get("pasted_reference")
        )
        choices = [(str(i), f"The reply of {r.label}") for i, r in enumerate(replies) if r.content]
        if pasted:
            choices.append((self.PASTED, "The reference from the pasted conversation"))
        choices.append((self.EDITED, "The text below"))
        self.fields["source"].choices = choices
        self.heads = playground.playground_dataset_heads()
        self.fields["target"].choices = [(self.NEW, "A new dataset")] + [
            (str(d.pk), f"Append to “{d.name}” (#{d.pk}, {d.line_count:,} lines)")
            for d in self.heads
        ]
        self.append_to: Dataset | None = None

    def _posted_replies(self) -> list[Reply]:
        if not self.is_bound:
            return []
        try:
            items = _json_list(self.data.get("replies", ""), "replies")
        except forms.ValidationError:
            return []
        return [Reply.from_json(i) for i in items[:MAX_MODELS] if isinstance(i, dict)]

    def clean_messages(self) -> list[dict[str, Any]]:
        raw = self.cleaned_data["messages"]
        _json_list(raw, "prompt messages")
        try:
            return playground.parse_conversation(raw).messages
        except PlaygroundError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_replies(self) -> str:
        _json_list(self.cleaned_data["replies"], "replies")
        return self.cleaned_data["replies"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        source = data.get("source")
        if source == self.EDITED:
            reference = data.get("reference") or ""
        elif source == self.PASTED:
            reference = data.get("pasted_reference") or ""
        elif source is not None:
            reference = self.reply_list[int(source)].content or ""
        else:
            reference = ""
        if source is not None and not reference.strip():
            self.add_error(
                "reference" if source == self.EDITED else "source",
                "The reference is empty; choose a reply or type one.",
            )
        data["reference_text"] = reference
        return data

    def full_clean(self) -> None:
        # The append target may be any dataset the playground made (even an older version
        # than the ones offered); look it up instead of relying on the offered choices.
        super().full_clean()
        if not self.is_bound or "target" in self.errors:
            return
        target = self.cleaned_data.get("target")
        if target and target != self.NEW:
            self.append_to = playground.playground_datasets().filter(pk=int(target)).first()
            if self.append_to is None:
                self.add_error("target", "Choose a dataset made by the playground.")

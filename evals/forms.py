"""The new-evaluation form: dataset, models, generation settings, graders and the judge."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django import forms

from datasets.models import Dataset
from evals import graders as grading
from evals.choices import ModelChoice
from evals.models import JUDGE_METRIC, MAX_COLUMNS
from evals.services import EVALUABLE_STATUSES

KIND_ORDER = {"base": 0, "checkpoint": 1, "fine_tuned": 2}
# The graders this form offers (one of each), named by kind, in the order the form shows them.
FORM_GRADERS = (
    "exact_match", "token_f1", "contains", "regex", "json_valid", "json_equals", "json_schema",
)  # fmt: skip
WIN_CHOICES = [
    ("", "The first chosen grader"),
    *[(kind, grading.KINDS[kind]) for kind in FORM_GRADERS],
    (JUDGE_METRIC, "The LLM judge's score"),
]


def grouped(choices: Sequence[ModelChoice]) -> list[tuple[str, list[tuple[str, str]]]]:
    groups: dict[str, list[tuple[str, str]]] = {}
    for choice in choices:
        groups.setdefault(choice.group, []).append((choice.key, choice.label))
    return list(groups.items())


class EvaluationForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.none(),
        help_text="A chat dataset: each example's last assistant message is the reference.",
    )
    models = forms.MultipleChoiceField(
        choices=(),
        widget=forms.SelectMultiple(attrs={"size": 12}),
        help_text=f"Up to {MAX_COLUMNS}: base models, checkpoints, fine-tuned models.",
    )
    baseline = forms.ChoiceField(
        choices=(),
        required=False,
        help_text="Win rates (and the pairwise judge) compare every model with this one. "
        "Default: the first column (a base model when one is chosen).",
    )
    temperature = forms.FloatField(min_value=0, max_value=2, initial=0)
    max_tokens = forms.IntegerField(min_value=1, max_value=128_000, required=False)
    seed = forms.IntegerField(min_value=0, max_value=2**63 - 1, required=False)
    max_examples = forms.IntegerField(
        min_value=1, required=False, help_text="Evaluate only the first N examples."
    )

    exact_match = forms.BooleanField(required=False, initial=True, label="Exact match")
    exact_ignore_case = forms.BooleanField(required=False, label="ignore case")
    exact_ignore_whitespace = forms.BooleanField(
        required=False, initial=True, label="ignore whitespace"
    )
    exact_ignore_punctuation = forms.BooleanField(required=False, label="ignore punctuation")
    token_f1 = forms.BooleanField(required=False, initial=True, label="Token F1")
    contains = forms.BooleanField(required=False, label="Contains")
    contains_text = forms.CharField(
        required=False, max_length=500, label="text (empty: the reference)"
    )
    regex = forms.BooleanField(required=False, label="Regex")
    regex_pattern = forms.CharField(required=False, max_length=500, label="pattern")
    json_valid = forms.BooleanField(required=False, label="JSON valid")
    json_equals = forms.BooleanField(required=False, label="JSON equals reference")
    json_schema = forms.BooleanField(required=False, label="JSON schema valid")
    json_schema_text = forms.CharField(
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="schema (JSON)",
    )

    win_grader = forms.ChoiceField(
        choices=WIN_CHOICES,
        required=False,
        label="Win rate counted on",
        help_text="Without a pairwise judge, “win rate vs baseline” compares this score with "
        "the baseline's row by row (an equal score is a tie). It can be changed afterwards.",
    )

    judge = forms.ChoiceField(
        choices=(),
        required=False,
        label="LLM judge",
        help_text="A model that grades each output against the reference (0–10).",
    )
    judge_prompt = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        initial=grading.JUDGE_PROMPT,
        label="judge prompt",
    )
    judge_pairwise = forms.BooleanField(
        required=False, label="also compare each output with the baseline's (win/tie/loss)"
    )
    judge_pairwise_prompt = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        initial=grading.PAIRWISE_PROMPT,
        label="pairwise prompt",
    )

    def __init__(self, *args: Any, choices: Sequence[ModelChoice], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.by_key = {c.key: c for c in choices}
        self.fields["dataset"].queryset = Dataset.objects.filter(
            status__in=EVALUABLE_STATUSES,
            format__in=(Dataset.Format.CHAT, Dataset.Format.CHAT_TOOLS),
        ).order_by("-uploaded_at")
        self.fields["models"].choices = grouped(choices)
        self.fields["baseline"].choices = [("", "First column"), *grouped(choices)]
        self.fields["judge"].choices = [("", "No judge"), *grouped(choices)]

    def clean_models(self) -> list[str]:
        keys = self.cleaned_data["models"]
        if len(keys) > MAX_COLUMNS:
            raise forms.ValidationError(f"Choose at most {MAX_COLUMNS} models.")

        # Columns read left to right: base models, checkpoints by step, then final models.
        def order(key: str) -> tuple[int, str, int]:
            c = self.by_key[key]
            return (KIND_ORDER[c.kind], str(c.job_id or ""), c.step or 0)

        return sorted(keys, key=order)

    def clean_json_schema_text(self) -> dict[str, Any] | None:
        raw = self.cleaned_data["json_schema_text"].strip()
        if not raw:
            return None
        try:
            schema = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"The schema is not JSON: {exc}") from exc
        if not isinstance(schema, dict):
            raise forms.ValidationError("The schema must be a JSON object.")
        return schema

    def grader_list(self) -> list[dict[str, Any]]:
        d = self.cleaned_data
        out: list[dict[str, Any]] = []
        if d.get("exact_match"):
            out.append({"kind": "exact_match", "options": {
                "ignore_case": d["exact_ignore_case"],
                "ignore_whitespace": d["exact_ignore_whitespace"],
                "ignore_punctuation": d["exact_ignore_punctuation"],
            }})  # fmt: skip
        if d.get("token_f1"):
            out.append({"kind": "token_f1", "options": {}})
        if d.get("contains"):
            out.append({"kind": "contains", "options": {"text": d["contains_text"]}})
        if d.get("regex"):
            out.append({"kind": "regex", "options": {"pattern": d["regex_pattern"]}})
        if d.get("json_valid"):
            out.append({"kind": "json_valid", "options": {}})
        if d.get("json_equals"):
            out.append({"kind": "json_equals", "options": {}})
        if d.get("json_schema"):
            out.append({"kind": "json_schema", "options": {"schema": d["json_schema_text"]}})
        return out

    def clean(self) -> dict[str, Any]:
        d = super().clean()
        if self.errors:
            return d
        if d.get("regex") and not d.get("regex_pattern"):
            self.add_error("regex_pattern", "Give the pattern the regex grader looks for.")
        if d.get("json_schema") and not d.get("json_schema_text"):
            self.add_error("json_schema_text", "Give the schema outputs must match.")
        if self.errors:
            return d
        graders = self.grader_list()
        if not graders and not d.get("judge"):
            raise forms.ValidationError("Choose at least one grader or a judge.")
        try:
            if graders:
                grading.parse_specs(graders)
        except grading.GraderError as exc:
            raise forms.ValidationError(str(exc)) from exc
        baseline = d.get("baseline") or ""
        if baseline and baseline not in d["models"]:
            self.add_error("baseline", "The baseline must be one of the chosen models.")
        win = d.get("win_grader") or ""
        if win == JUDGE_METRIC and not d.get("judge"):
            self.add_error("win_grader", "Choose an LLM judge to count the win rate on its score.")
        elif win and win != JUDGE_METRIC and win not in {g["kind"] for g in graders}:
            self.add_error("win_grader", "Choose one of the graders ticked above.")
        return d

    def win_grader_id(self) -> str:
        """The chosen score's id in the evaluation (a grader's id is given when it is made)."""
        win = self.cleaned_data.get("win_grader") or ""
        if not win or win == JUDGE_METRIC:
            return win
        specs = grading.parse_specs(self.grader_list())
        return next((s.id for s in specs if s.kind == win), "")

    def baseline_position(self) -> int:
        baseline = self.cleaned_data.get("baseline") or ""
        models = self.cleaned_data["models"]
        return models.index(baseline) if baseline in models else 0

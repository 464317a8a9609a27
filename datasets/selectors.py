from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import F, Func, Q, QuerySet
from django.utils import timezone

from datasets.derive import iter_units
from datasets.models import BaseModel, Dataset
from datasets.validation import (
    METHOD_LABELS,
    PRIMARY,
    RULE_SETS,
    Report,
    can_recompute,
    encodings,
    recompute_for_model,
    rule_set,
)

DEFAULT_BASE_MODEL_ID = "gpt-4o-mini-2024-07-18"
SHUTDOWN_WARNING_DAYS = 90

# What the list shows; the report and line index can be large and stay in the database.
LIST_FIELDS = (
    "id",
    "name",
    "description",
    "tags",
    "size",
    "status",
    "format",
    "n_examples",
    "uploaded_at",
    "uploaded_by__username",
    "parent_id",
    "validity",
)


def base_models() -> list[BaseModel]:
    return list(BaseModel.objects.all())


def base_model_get(model_id: str | None) -> BaseModel | None:
    if not model_id:
        return None
    return BaseModel.objects.filter(pk=model_id).first()


def base_model_default() -> BaseModel | None:
    """The catalog's default for new validations: gpt-4o-mini, else the first model that is
    not shut down, else any."""
    today = timezone.localdate()
    preferred = BaseModel.objects.filter(pk=DEFAULT_BASE_MODEL_ID).first()
    if preferred and not preferred.is_shut_down(today):
        return preferred
    active = BaseModel.objects.filter(Q(shutdown_on__isnull=True) | Q(shutdown_on__gt=today))
    return active.first() or BaseModel.objects.first()


@dataclass(frozen=True)
class DatasetFilters:
    status: str = ""
    format: str = ""
    tag: str = ""
    q: str = ""


def dataset_list(filters: DatasetFilters) -> QuerySet[Dataset]:
    qs = Dataset.objects.select_related("uploaded_by").only(*LIST_FIELDS)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.format:
        qs = qs.filter(format=filters.format)
    if filters.tag:
        qs = qs.filter(tags__contains=[filters.tag])
    if filters.q:
        qs = qs.filter(Q(name__icontains=filters.q) | Q(description__icontains=filters.q))
    return qs.order_by("-uploaded_at", "-id")


def dataset_tags() -> list[str]:
    unnested = Dataset.objects.annotate(tag=Func(F("tags"), function="unnest"))
    return list(unnested.values_list("tag", flat=True).order_by("tag").distinct())


def dataset_get(pk: int, *, with_report: bool = True) -> Dataset | None:
    qs = Dataset.objects.select_related("uploaded_by", "parent", "report_model", "requested_model")
    if not with_report:
        qs = qs.defer("report")
    return qs.filter(pk=pk).first()


def dataset_children(dataset: Dataset) -> list[Dataset]:
    return list(dataset.children.select_related("uploaded_by").only(*LIST_FIELDS).order_by("id"))


def dataset_status(pk: int) -> dict[str, Any] | None:
    row = (
        Dataset.objects.filter(pk=pk)
        .values("status", "progress_bytes", "progress_total", "error_message")
        .first()
    )
    if row is None:
        return None
    total = row["progress_total"]
    done = row["status"] not in (Dataset.Status.UPLOADED, Dataset.Status.VALIDATING)
    return {
        "status": row["status"],
        "progress_bytes": row["progress_bytes"],
        "progress_total": total,
        "percent": round(100 * row["progress_bytes"] / total, 1) if total else 0.0,
        "done": done,
        "error": row["error_message"] if row["status"] == Dataset.Status.ERROR else "",
    }


@dataclass(frozen=True)
class ModelNotice:
    level: str  # "bad" for shut down, "warn" for deprecated or shutting down soon
    text: str


def model_notice(model: BaseModel, today: date | None = None) -> ModelNotice | None:
    today = today or timezone.localdate()
    if model.shutdown_on and model.shutdown_on <= today:
        return ModelNotice(
            "bad",
            f"{model.id} was shut down on {model.shutdown_on:%Y-%m-%d}: it cannot be fine-tuned.",
        )
    if model.shutdown_on and model.shutdown_on <= today + timedelta(days=SHUTDOWN_WARNING_DAYS):
        days = (model.shutdown_on - today).days
        return ModelNotice(
            "warn",
            f"{model.id} shuts down on {model.shutdown_on:%Y-%m-%d} (in {days} day"
            f"{'s' if days != 1 else ''}).",
        )
    if model.deprecated_on and model.deprecated_on <= today:
        return ModelNotice(
            "warn", f"{model.id} has been deprecated since {model.deprecated_on:%Y-%m-%d}."
        )
    return None


@dataclass(frozen=True)
class ReportView:
    """The stored report, re-derived for the model the page shows (current catalog prices and
    limits), or left as stored when that model needs another tokenizer."""

    report: Report
    model: BaseModel | None
    recomputed: bool
    needs_revalidation: bool


def report_view(dataset: Dataset, model: BaseModel | None) -> ReportView | None:
    if not dataset.report:
        return None
    stored = Report.from_dict(dataset.report)
    model = model or dataset.report_model
    if model is None:
        return ReportView(stored, None, recomputed=False, needs_revalidation=False)
    spec = model.to_spec()
    if not can_recompute(stored, spec):
        return ReportView(stored, model, recomputed=False, needs_revalidation=True)
    return ReportView(
        recompute_for_model(stored, spec),
        model,
        recomputed=model.pk != dataset.report_model_id,
        needs_revalidation=False,
    )


# --- which providers and methods a dataset can train -----------------------------------------


@dataclass(frozen=True)
class FamilyValidity:
    """One rule set's ("provider family's") verdict on a dataset, from its small
    ``validity`` column (never the report)."""

    family: str
    label: str
    checked: bool  # False: validated before this family's rules were added
    valid: bool
    format: str
    methods: tuple[str, ...]
    reason: str


def dataset_families(dataset: Dataset) -> list[FamilyValidity]:
    """Every family's verdict on ``dataset``, in ``RULE_SETS`` order; cheap (reads
    ``dataset.validity`` only), so a launch form can call it for each dataset it lists."""
    return families_from_row(
        status=dataset.status, format=dataset.format, validity=dataset.validity
    )


def families_from_row(*, status: str, format: str, validity: object) -> list[FamilyValidity]:
    """``dataset_families`` for a ``.values("status", "format", "validity")`` row."""
    stored = validity if isinstance(validity, dict) else {}
    validated = status in (Dataset.Status.VALID, Dataset.Status.INVALID)
    out = []
    for rules in RULE_SETS:
        entry = stored.get(rules.name) if validated else None
        if entry is None and validated and rules is PRIMARY:
            entry = _primary_from_status(status, format)
        if not isinstance(entry, dict):
            out.append(
                FamilyValidity(
                    rules.name, rules.label, False, False, "", (), _unchecked(status, rules.label)
                )
            )
            continue
        out.append(
            FamilyValidity(
                family=rules.name,
                label=rules.label,
                checked=True,
                valid=bool(entry.get("valid")),
                format=str(entry.get("format") or ""),
                methods=tuple(entry.get("methods") or ()),
                reason=str(entry.get("reason") or ""),
            )
        )
    return out


def _primary_from_status(status: str, format: str) -> dict[str, Any]:
    """A row without the primary's entry (written before ``validity`` existed, or by hand):
    its status then said what OpenAI's rules made of it, and nothing else."""
    valid = status == Dataset.Status.VALID
    methods = PRIMARY.formats.get(format, ())
    return {
        "valid": valid and bool(methods),
        "format": format,
        "methods": list(methods) if valid else [],
        "reason": "" if valid and methods else "the dataset page lists its errors",
    }


def _unchecked(status: str, label: str) -> str:
    if status == Dataset.Status.ERROR:
        return "its validation failed; validate it again"
    if status in (Dataset.Status.UPLOADED, Dataset.Status.VALIDATING):
        return "it is still being validated"
    return f"it was validated before {label}'s rules were added; validate it again"


def dataset_valid_for(dataset: Dataset, *, family: str, method: str) -> tuple[bool, str]:
    """Whether ``dataset`` can train a ``method`` job ("supervised", "dpo") on a provider of
    ``family`` ("openai", "together": ``datasets.validation.RULE_SETS``), and why not: a
    sentence naming the family, e.g. "OpenAI: the Text format is not accepted."

    OpenAI's verdict is the one for the base model the dataset was last validated for (the
    launch rules still check the launch's own model against the format)."""
    rules = rule_set(family)
    if rules is None:
        return False, f"Tuneboard has no rules for the provider family “{family}”."
    verdict = next(v for v in dataset_families(dataset) if v.family == family)
    if not verdict.valid:
        return False, f"{rules.label}: {verdict.reason}."
    if method not in verdict.methods:
        trains = " or ".join(METHOD_LABELS.get(m, m) for m in verdict.methods)
        return False, (
            f"{rules.label}: {rules.format_label(verdict.format)} data trains {trains} jobs, "
            f"not {METHOD_LABELS.get(method, method)}."
        )
    return True, ""


def datasets_valid_for(*, family: str, method: str) -> QuerySet[Dataset]:
    """The datasets that can train ``method`` on ``family`` (a launch form's choices),
    filtered in the database on the ``validity`` column."""
    rules = rule_set(family)
    if rules is None:
        return Dataset.objects.none()
    matches = Q(**{f"validity__{family}__methods__contains": [method]})
    if rules is PRIMARY:
        # Rows without the primary's entry: their status was its verdict (_primary_from_status).
        formats = [f for f, methods in rules.formats.items() if method in methods]
        matches |= ~Q(validity__has_key=family) & Q(format__in=formats)
    return (
        Dataset.objects.select_related("uploaded_by")
        .filter(Q(status=Dataset.Status.VALID) & matches)
        .only(*LIST_FIELDS)
        .order_by("-uploaded_at", "-id")
    )


def tokenizer_health() -> dict[str, Any]:
    """The health check of the shipped BPE files (registered with core in ``apps.ready``):
    without them no dataset can be validated."""
    problems = [problem for problem in encodings.check_files().values() if problem]
    if problems:
        return {"ok": False, "error": "; ".join(problems)}
    return {"ok": True}


# Both files are read in the request that asks; past this the check is reported as skipped
# rather than keeping someone waiting on a launch form.
OVERLAP_MAX_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class Overlap:
    shared: int  # examples of the smaller dataset whose line also appears in the other
    of: int  # examples of the smaller dataset
    checked: bool  # False: the files were too large (or unreadable) to compare here


def _line_hashes(dataset: Dataset) -> list[bytes]:
    with dataset.file.open("rb") as fh:
        # Whitespace around a line does not make it another example.
        return [
            hashlib.blake2b(unit.strip(), digest_size=16).digest()
            for unit in iter_units(fh)
            if unit is not None
        ]


def datasets_overlap(*, first: Dataset, second: Dataset) -> Overlap:
    """How many examples two datasets share, compared line by line (by a hash of each
    non-blank line)."""
    if first.pk == second.pk:
        n = first.n_examples or 0
        return Overlap(shared=n, of=n, checked=True)
    if (first.size or 0) + (second.size or 0) > OVERLAP_MAX_BYTES:
        return Overlap(shared=0, of=0, checked=False)
    try:
        small, large = sorted((_line_hashes(first), _line_hashes(second)), key=len)
    except OSError:
        return Overlap(shared=0, of=0, checked=False)
    seen = set(large)
    return Overlap(shared=sum(1 for h in small if h in seen), of=len(small), checked=True)

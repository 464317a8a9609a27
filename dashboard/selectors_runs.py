"""Reads for the cross-run pages: the runs list, a run's charts (page include, figures and live
JSON, exports) and the comparison of runs. Every function runs a fixed number of queries,
whatever the number of runs, rows or metric points; lists read the summary columns each sync
keeps on ``Job`` and never aggregate metric rows."""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import (
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Q,
    QuerySet,
)
from django.db.models.expressions import RawSQL
from django.utils import timezone

from core.permissions import is_admin
from dashboard import curves
from dashboard.charts import (
    X_AXES,
    CheckpointMark,
    RunSeries,
    compare_description,
    compare_figures,
    comparison_rows,
    hyperparameter_label,
    metrics_csv,
    metrics_json,
    plotted_parameters,
    run_description,
    run_figures,
    scatter_best_vs_hyperparameter,
)
from dashboard.charts.layout import guardrail_marks
from dashboard.charts.series import finite_number
from dashboard.models import ShareLink
from datasets.models import BaseModel, Dataset
from jobs.costs import job_cost
from jobs.guardrail_rules import LABELS as GUARDRAIL_LABELS
from jobs.models import GuardrailFiring, Job, MetricPoint, ProviderConnection
from jobs.providers import declared_parameters
from jobs.selectors import catalog_model_for

PAGE_SIZE = 50
MIN_COMPARE = 2
COMPARE_POINT_BUDGET = 3500  # points per series across all runs: ≤ 1 MB for 20 runs
LIVE_POINTS_LIMIT = 2000
RECENT_RUNS_OFFERED = 50
HYPERPARAMETER_KEYS = ("n_epochs", "batch_size", "learning_rate_multiplier")
EXPORT_COLUMNS = (
    "step",
    "train_loss",
    "train_accuracy",
    "valid_loss",
    "valid_accuracy",
    "full_valid_loss",
    "full_valid_accuracy",
    "extra",
)


# --- The base-model catalog: prices for the cost column ----------------------------------------


@dataclass(frozen=True)
class Prices:
    """Training price per 1M tokens of every model name a job may carry, from one query.

    ``resolved`` holds every name ``catalog_model_for`` resolves (catalog ids and their alias
    prefixes such as ``gpt-4o-mini``), with the model's price (None when it has none)."""

    models: dict[str, BaseModel]
    resolved: dict[str, Decimal | None]

    def model_for(self, job: Job) -> BaseModel | None:
        return catalog_model_for(job.model or job.base_model, self.models) or catalog_model_for(
            job.base_model, self.models
        )

    def cost(self, job: Job) -> Decimal | None:
        """What the job cost by ``jobs.costs.job_cost`` (the job page's rule): trained tokens ×
        the catalog training price; $0 for a finished job that trained none."""
        model = self.model_for(job)
        return job_cost(
            status=job.status,
            trained_tokens=job.trained_tokens,
            price_per_1m=model.to_spec().training_price_per_1m if model is not None else None,
        )


def prices() -> Prices:
    models = {model.pk: model for model in BaseModel.objects.order_by("pk")}
    names = set(models)
    for model_id in models:
        parts = model_id.split("-")
        names.update("-".join(parts[:end]) for end in range(1, len(parts)))
    resolved = {}
    for name in sorted(names):
        model = catalog_model_for(name, models)
        if model is not None:
            resolved[name] = model.to_spec().training_price_per_1m
    return Prices(models=models, resolved=resolved)


def _json_number(key: str, source: str) -> str:
    return (
        f"(CASE WHEN jsonb_typeof(jobs_job.{source} -> '{key}') = 'number' "
        f"THEN (jobs_job.{source} ->> '{key}')::float8 END)"
    )


def hyperparameter_expression(key: str) -> RawSQL:
    """A numeric hyperparameter as the provider resolved it, else as requested (NULL for
    "auto" or when unknown)."""
    return RawSQL(  # noqa: S611 - only constant keys from this module are interpolated
        f"COALESCE({_json_number(key, 'hyperparameters')}, "
        f"{_json_number(key, 'requested_hyperparameters')})",
        (),
        output_field=FloatField(),
    )


# --- Runs list ---------------------------------------------------------------------------------


SORTS: dict[str, str] = {
    "created": "Created",
    "n_epochs": "Epochs",
    "batch_size": "Batch size",
    "lr": "LR multiplier",
    "learning_rate": "Learning rate",
    "tokens": "Trained tokens",
    "cost": "Cost",
    "train_loss": "Train loss",
    "valid_loss": "Best full-valid loss",
    "valid_step": "Step of best",
    "duration": "Duration",
    "steps": "Steps",
}
DEFAULT_SORT = "created"


def _sort_expression(key: str) -> Any:
    if key == "created":
        return F("created_at")
    if key == "tokens":
        return F("trained_tokens")
    if key == "cost":  # kept by the database on every write (jobs migration 0012)
        return F("cost_usd")
    if key == "train_loss":
        return F("final_train_loss")
    if key == "valid_loss":
        return F("best_full_valid_loss")
    if key == "valid_step":
        return F("best_full_valid_step")
    if key == "steps":
        return F("total_steps")
    if key == "duration":
        return ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    if key == "n_epochs":
        return hyperparameter_expression("n_epochs")
    if key == "batch_size":
        return hyperparameter_expression("batch_size")
    if key == "lr":
        return hyperparameter_expression("learning_rate_multiplier")
    if key == "learning_rate":
        return hyperparameter_expression("learning_rate")
    raise ValueError(f"unknown sort {key!r}")


@dataclass(frozen=True)
class RunFilters:
    q: str = ""
    status: str = ""
    connection: int | None = None
    base_model: str = ""
    dataset: int | None = None
    tag: str = ""
    creator: int | None = None
    created_from: date | None = None
    created_to: date | None = None
    archived: str = ""  # "" hides archived runs, "include" shows them too, "only" only them
    sort: str = DEFAULT_SORT
    descending: bool = True


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def filtered_jobs(filters: RunFilters) -> QuerySet[Job]:
    jobs = Job.objects.all()
    if filters.archived == "only":
        jobs = jobs.filter(archived=True)
    elif filters.archived != "include":
        jobs = jobs.filter(archived=False)
    if filters.status:
        jobs = jobs.filter(status=filters.status)
    if filters.connection is not None:
        jobs = jobs.filter(connection_id=filters.connection)
    if filters.base_model:
        jobs = jobs.filter(base_model=filters.base_model)
    if filters.dataset is not None:
        jobs = jobs.filter(training_dataset_id=filters.dataset)
    if filters.tag:
        jobs = jobs.filter(tags__contains=[filters.tag])
    if filters.creator is not None:
        jobs = jobs.filter(created_by_id=filters.creator)
    if filters.created_from:
        jobs = jobs.filter(created_at__gte=_day_start(filters.created_from))
    if filters.created_to:
        jobs = jobs.filter(
            created_at__lt=_day_start(filters.created_to) + timezone.timedelta(days=1)
        )
    text = filters.q.strip()
    if text:
        jobs = jobs.filter(
            Q(name__icontains=text)
            | Q(notes__icontains=text)
            | Q(provider_job_id__icontains=text)
            | Q(fine_tuned_model__icontains=text)
            | Q(base_model__icontains=text)
            | Q(model__icontains=text)
        )
    return jobs


LIST_FIELDS = (
    "id",
    "name",
    "notes",
    "tags",
    "status",
    "archived",
    "provider_job_id",
    "base_model",
    "model",
    "fine_tuned_model",
    "requested_hyperparameters",
    "hyperparameters",
    "trained_tokens",
    "total_steps",
    "last_step",
    "final_train_loss",
    "best_full_valid_loss",
    "best_full_valid_step",
    "created_at",
    "started_at",
    "finished_at",
    "connection_id",
    "training_dataset_id",
    "created_by_id",
)


@dataclass
class RunRow:
    job: Job
    cost: Decimal | None
    # Names of the related rows, joined in the rows' query (no model instance for each).
    provider_name: str
    dataset_name: str | None
    creator_name: str | None
    n_epochs: Any
    batch_size: Any
    learning_rate_multiplier: Any
    learning_rate: Any  # absolute, for providers that take one

    @property
    def duration_seconds(self) -> float | None:
        return self.job.duration_seconds


@dataclass
class FilterOptions:
    statuses: list[tuple[str, str]]
    connections: list[tuple[int, str]]
    base_models: list[str]
    datasets: list[tuple[int, str]]
    tags: list[str]
    creators: list[tuple[int, str]]


@dataclass
class RunsPage:
    rows: list[RunRow]
    page: Page
    total: int
    options: FilterOptions
    filters: RunFilters


def hyperparameter_value(job: Job, key: str, kind: str | None = None) -> Any:
    """Resolved by the provider, else requested, else "auto" — or None when the provider of
    ``kind`` has no such parameter (shown as a dash, never as "auto")."""
    resolved = (job.hyperparameters or {}).get(key)
    if resolved is not None:
        return resolved
    requested = (job.requested_hyperparameters or {}).get(key)
    if requested is not None:
        return requested
    if kind is not None and key not in {p.name for p in declared_parameters(kind)}:
        return None
    return "auto"


def run_row(job: Job, price_table: Prices) -> RunRow:
    kind = job.provider_kind  # type: ignore[attr-defined]
    return RunRow(
        job=job,
        cost=price_table.cost(job),
        provider_name=job.provider_name,  # type: ignore[attr-defined]
        dataset_name=job.dataset_name,  # type: ignore[attr-defined]
        creator_name=job.creator_name,  # type: ignore[attr-defined]
        n_epochs=hyperparameter_value(job, "n_epochs", kind),
        batch_size=hyperparameter_value(job, "batch_size", kind),
        learning_rate_multiplier=hyperparameter_value(job, "learning_rate_multiplier", kind),
        learning_rate=hyperparameter_value(job, "learning_rate", kind),
    )


OPTIONS_CACHE_KEY = "dashboard:run-filter-options"
OPTIONS_CACHE_SECONDS = 60


def _run_tags() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT tag FROM jobs_job, jsonb_array_elements_text(tags) AS tag "
            "WHERE jsonb_typeof(tags) = 'array' AND tags <> '[]'::jsonb ORDER BY tag"
        )
        return [row[0] for row in cursor.fetchall()]


def filter_options() -> FilterOptions:
    """What the filters offer: providers, base models, datasets, tags and creators in use.

    Unnesting every run's tags scans the whole table, so the options are kept for a minute
    (every filter also takes a value typed in the address, and the tag filter any text, so a
    brand-new value can be used before it is offered)."""
    options = cache.get(OPTIONS_CACHE_KEY)
    if options is None:
        User = get_user_model()
        options = FilterOptions(
            statuses=list(Job.Status.choices),
            connections=list(ProviderConnection.objects.order_by("name").values_list("id", "name")),
            base_models=list(
                Job.objects.order_by("base_model").values_list("base_model", flat=True).distinct()
            ),
            datasets=list(
                Dataset.objects.filter(pk__in=Job.objects.values("training_dataset_id"))
                .order_by("name", "id")
                .values_list("id", "name")
            ),
            tags=_run_tags(),
            creators=list(
                User.objects.filter(pk__in=Job.objects.values("created_by_id"))
                .order_by("username")
                .values_list("id", "username")
            ),
        )
        cache.set(OPTIONS_CACHE_KEY, options, OPTIONS_CACHE_SECONDS)
    return options


def runs_page(filters: RunFilters, *, page_number: Any = 1) -> RunsPage:
    """One page of the runs list: count, rows, catalog prices and filter options — a fixed
    number of queries whatever the page, filter or sort."""
    price_table = prices()
    jobs = filtered_jobs(filters)
    sort = filters.sort if filters.sort in SORTS else DEFAULT_SORT
    expression = _sort_expression(sort)
    if sort == "created":  # never null: the plain order can walk the created_at index
        ordering = expression.desc() if filters.descending else expression.asc()
        tiebreak: tuple[str, ...] = ("-id",) if filters.descending else ("id",)
    else:
        ordering = (
            expression.desc(nulls_last=True)
            if filters.descending
            else expression.asc(nulls_last=True)
        )
        tiebreak = ("-created_at", "-id")
    # The page's ids first (no joins, narrow rows: an index or one sort of one table), then
    # its fifty rows with their joins.
    ids = jobs.order_by(ordering, *tiebreak).values_list("pk", flat=True)
    page = Paginator(ids, PAGE_SIZE).get_page(page_number)
    page_ids = list(page.object_list)
    found = {
        job.pk: job
        for job in Job.objects.filter(pk__in=page_ids)
        .only(*LIST_FIELDS)
        .annotate(
            provider_name=F("connection__name"),
            provider_kind=F("connection__kind"),
            dataset_name=F("training_dataset__name"),
            creator_name=F("created_by__username"),
        )
    }
    rows = [run_row(found[pk], price_table) for pk in page_ids if pk in found]
    return RunsPage(
        rows=rows,
        page=page,
        total=page.paginator.count,
        options=filter_options(),
        filters=filters,
    )


def job_for_annotation(pk: Any) -> Job | None:
    return Job.objects.filter(pk=pk).first()


# --- A run's charts -----------------------------------------------------------------------------


CHART_FIELDS = (
    "id",
    "name",
    "provider_job_id",
    "status",
    "base_model",
    "model",
    "method",
    "requested_hyperparameters",
    "hyperparameters",
    "trained_tokens",
    "total_steps",
    "last_step",
    "final_train_loss",
    "best_full_valid_loss",
    "best_full_valid_step",
    "created_at",
    "started_at",
    "finished_at",
    "last_synced_at",
    "next_poll_at",
)


def chart_job(pk: Any) -> Job | None:
    return Job.objects.filter(pk=pk).only(*CHART_FIELDS).first()


def run_label(job: Job) -> str:
    return job.display_name


@dataclass
class ChartOptions:
    x_axis: str = "step"
    log_y: bool = False
    smoothing: float = 0.0


@dataclass
class RunCharts:
    job: Job
    run: RunSeries
    figures: dict[str, Any]
    descriptions: dict[str, str]
    diagnosis: dict[str, Any] | None
    options: ChartOptions
    x_axis: str
    last_step: int | None
    checkpoints: list[CheckpointMark]
    available_steps: list[int]

    @property
    def terminal(self) -> bool:
        return self.job.status in Job.TERMINAL

    def conversion(self) -> dict[str, float | None]:
        return {
            "steps_per_epoch": self.run.steps_per_epoch,
            "tokens_per_step": self.run.tokens_per_step,
        }

    def supported_axes(self) -> list[str]:
        return [axis for axis in X_AXES if self.run.supports(axis)]


def run_charts(
    job: Job,
    options: ChartOptions | None = None,
    *,
    label: str | None = None,
    run_id: str | None = None,
    public: bool = False,
    up_to_step: int | None = None,
) -> RunCharts:
    """Figures, text alternatives and diagnosis of one run (checkpoints: one query; curves:
    one query; diagnosis: one query when stored, else the metric rows and, for a finished
    run, one write)."""
    options = options or ChartOptions()
    marks = curves.checkpoints_for([job.pk]).get(str(job.pk), [])
    curve = curves.curves_for([job], level=curves.LEVELS[0], checkpoints={str(job.pk): marks},
                              with_diagnosis=True, up_to_step=up_to_step)[str(job.pk)]  # fmt: skip
    shown_marks = public_marks(marks) if public else marks
    run = curves.series_from_points(
        job,
        curve.points,
        label=label if label is not None else run_label(job),
        run_id=run_id if run_id is not None else str(job.pk),
        checkpoints=shown_marks,
    )
    figures = run_figures(
        run, x_axis=options.x_axis, log_y=options.log_y, smoothing=options.smoothing
    )
    axis = figures["loss"]["layout"]["meta"]["x_axis"]
    fired = [
        (step, f"{GUARDRAIL_LABELS.get(kind, kind)} guardrail")
        for step, kind in GuardrailFiring.objects.filter(job=job, step__isnull=False)
        .order_by("step")
        .values_list("step", "kind")
    ]
    if fired:
        shapes, notes = guardrail_marks(run, axis, fired)
        for figure in figures.values():
            figure["layout"]["shapes"] = [*figure["layout"].get("shapes", []), *shapes]
            figure["layout"]["annotations"] = [*figure["layout"].get("annotations", []), *notes]
    return RunCharts(
        job=job,
        run=run,
        figures=figures,
        descriptions={kind: run_description(run, kind, axis) for kind in ("loss", "accuracy")},
        diagnosis=curve.diagnosis,
        options=options,
        x_axis=axis,
        last_step=curve.last_step,
        checkpoints=marks,
        available_steps=curves.available_checkpoint_steps(marks),
    )


def public_marks(marks: Iterable[CheckpointMark]) -> list[CheckpointMark]:
    """Checkpoints without their provider model ids (shared pages name them by step)."""
    return [
        CheckpointMark(step=mark.step, model_id=f"step {mark.step}", metrics=mark.metrics)
        for mark in marks
    ]


def share_links_for_job(job: Job) -> list[ShareLink]:
    return list(
        ShareLink.objects.filter(job_ids__contains=[str(job.pk)])
        .select_related("created_by")
        .defer("snapshot")
        .order_by("-created_at")[:50]
    )


def live_points(
    job_id: Any, *, after_step: int, limit: int = LIVE_POINTS_LIMIT, up_to_step: int | None = None
) -> list[dict]:
    points = MetricPoint.objects.filter(job_id=job_id, step__gt=after_step)
    if up_to_step is not None:
        points = points.filter(step__lte=up_to_step)
    rows = list(
        points
        .order_by("step")
        .values("step", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy",
                "full_valid_loss", "full_valid_accuracy")[: limit + 1]
    )  # fmt: skip
    return rows


def live_update(job: Job, *, after_step: int, up_to_step: int | None = None) -> dict[str, Any]:
    """The live endpoint: the run's state and only the metric points after ``after_step``
    (and not after ``up_to_step``)."""
    rows = live_points(job.pk, after_step=after_step, up_to_step=up_to_step)
    has_more = len(rows) > LIVE_POINTS_LIMIT
    rows = rows[:LIVE_POINTS_LIMIT]
    points = [
        {key: (finite_number(value) if key != "step" else value) for key, value in row.items()}
        for row in rows
    ]
    return {
        "status": job.status,
        "status_display": job.get_status_display(),
        "terminal": job.status in Job.TERMINAL,
        "total_steps": job.total_steps,
        "after_step": after_step,
        "last_step": points[-1]["step"] if points else after_step,
        "has_more": has_more,
        "points": points,
    }


def export_rows(job_id: Any) -> list[dict[str, Any]]:
    """Every metric point of a run (not downsampled), for the CSV and JSON downloads."""
    return list(MetricPoint.objects.filter(job_id=job_id).order_by("step").values(*EXPORT_COLUMNS))


def run_metrics_csv(job_id: Any) -> str:
    return metrics_csv(export_rows(job_id))


def run_metrics_json(job_id: Any) -> list[dict[str, Any]]:
    return metrics_json(export_rows(job_id))


# --- Comparison ---------------------------------------------------------------------------------


def parse_run_ids(values: Iterable[str]) -> tuple[list[str], list[str]]:
    """UUIDs from ``runs`` values (comma-separated and/or repeated), deduplicated in order;
    returns (ids, rejected pieces)."""
    ids: list[str] = []
    rejected: list[str] = []
    for value in values:
        for piece in value.split(","):
            piece = piece.strip()
            if not piece:
                continue
            try:
                parsed = str(uuid.UUID(piece))
            except ValueError:
                rejected.append(piece[:40])
                continue
            if parsed not in ids:
                ids.append(parsed)
    return ids, rejected


COMPARE_FIELDS = (
    *CHART_FIELDS,
    "training_dataset__id",
    "training_dataset__name",
    "connection__id",
    "connection__name",
    "connection__kind",
    "seed",
)


def compare_jobs(ids: Sequence[str]) -> list[Job]:
    """The runs in the order asked for (unknown ids left out), in one query."""
    found = {
        str(job.pk): job
        for job in Job.objects.filter(pk__in=list(ids))
        .select_related("training_dataset", "connection")
        .only(*COMPARE_FIELDS)
    }
    return [found[job_id] for job_id in ids if job_id in found]


def compare_level(n_runs: int) -> int:
    return curves.level_for(min(curves.LEVELS[0], COMPARE_POINT_BUDGET // max(1, n_runs)))


def compare_hyperparameters(job: Job, *, public: bool = False) -> dict[str, Any]:
    """The comparison's hyperparameter rows of a run: the training set-up that can differ."""
    values: dict[str, Any] = {}
    merged = curves.resolved_hyperparameters(job)
    declared = {p.name for p in declared_parameters(job.connection.kind)}
    for key in HYPERPARAMETER_KEYS:
        # "auto" only where the run's provider has this parameter at all: a Together run has
        # an absolute learning rate, never a multiplier.
        if key in declared or key in merged:
            values[key] = merged.pop(key, "auto")
    values.update(merged)
    values["base_model"] = public_model_name(job.base_model) if public else job.base_model
    values["method"] = job.method
    if not public:
        values["training_dataset"] = job.training_dataset.name if job.training_dataset else None
        values["seed"] = job.seed
    return values


def public_model_name(name: str) -> str:
    """A base model as a shared page may show it: a fine-tuned model's own id (which names the
    organisation) is reduced to its base."""
    if name.startswith("ft:"):
        parts = name.split(":")
        return f"fine-tuned {parts[1]}" if len(parts) > 1 and parts[1] else "fine-tuned model"
    return name


@dataclass
class ComparedRun:
    run: RunSeries
    colour: str
    label: str
    job: Job | None = None  # None on shared pages, which link nowhere
    status: str = ""
    status_display: str = ""
    # The fit diagnosis (stored for a finished run; from the drawn curve for one still going,
    # so provisional) and the checkpoint to use: the model at its best step, else the best
    # one still available.
    diagnosis: dict[str, Any] | None = None
    provisional: bool = False

    @property
    def best_checkpoint(self) -> str:
        if not self.diagnosis:
            return ""
        marks = {mark.step: mark.model_id for mark in self.run.checkpoints}
        step = self.diagnosis.get("best_step")
        if not self.diagnosis.get("best_is_available_checkpoint"):
            step = self.diagnosis.get("best_available_step")
        return marks.get(step, "") if step is not None else ""


@dataclass
class Comparison:
    runs: list[ComparedRun]
    figures: dict[str, Any]
    descriptions: dict[str, str]
    rows: list[dict[str, Any]]
    hyperparameter_table: list[dict[str, Any]]
    metric_columns: list[dict[str, Any]]
    scatters: list[dict[str, Any]]
    x_axis: str
    level: int
    options: ChartOptions
    missing: list[str] = field(default_factory=list)

    def supported_axes(self) -> list[str]:
        return [axis for axis in X_AXES if all(r.run.supports(axis) for r in self.runs)]

    @property
    def any_latest(self) -> bool:
        """Whether a run is still going, so some of its values are only the latest."""
        return any(cell["latest"] for column in self.metric_columns for cell in column["cells"])

    @property
    def any_diagnosis(self) -> bool:
        return any(r.diagnosis for r in self.runs)

    @property
    def any_varying(self) -> bool:
        return any(not row["same"] for row in self.hyperparameter_table)

    @property
    def metric_table(self) -> list[dict[str, Any]]:
        """Row-major view of ``metric_columns``: one row per run, one cell per column."""
        return [
            {
                "run": run,
                "cells": [
                    {"key": column["key"], "best": column["cells"][i]["best"],
                     "value": column["cells"][i]["value"],
                     "latest": column["cells"][i]["latest"]}
                    for column in self.metric_columns
                ],
            }
            for i, run in enumerate(self.runs)
        ]  # fmt: skip

    @property
    def scatter_panels(self) -> list[dict[str, Any]]:
        """Scatter figures with plain-text captions (the figures hold escaped copies)."""
        return [
            {
                "parameter": hyperparameter_label(
                    html.unescape(figure["layout"]["meta"]["parameter"])
                ),
                "caption": html.unescape(figure["layout"]["meta"]["description"]),
            }
            for figure in self.scatters
        ]


def run_extras(job: Job, cost: Decimal | None) -> dict[str, Any]:
    """Metric-table values that come from the run rather than its curves."""
    return {
        "trained_tokens": job.trained_tokens,
        "cost": float(cost) if cost is not None else None,
        "duration_seconds": job.duration_seconds,
    }


METRIC_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (key, heading, which value is best: "min", "max" or "")
    ("final_train_loss", "Train loss", "min"),
    ("best_full_valid_loss", "Best full-valid loss", "min"),
    ("best_full_valid_step", "Step of best", ""),
    ("final_full_valid_loss", "Full-valid loss", "min"),
    ("final_train_accuracy", "Train accuracy", "max"),
    ("final_full_valid_accuracy", "Full-valid accuracy", "max"),
    ("trained_tokens", "Trained tokens", ""),
    ("cost", "Cost (USD)", "min"),
    ("duration_seconds", "Duration", "min"),
)


# Columns holding a run's last reported value: final once it has finished, only the latest
# while it has not (the headings are neutral; such cells say "latest").
LAST_VALUE_COLUMNS = frozenset(
    {"final_train_loss", "final_full_valid_loss", "final_train_accuracy",
     "final_full_valid_accuracy"}
)  # fmt: skip


def _best_positions(rows: list[dict[str, Any]], key: str, best: str) -> set[int]:
    values = [(i, finite_number(row["metrics"].get(key))) for i, row in enumerate(rows)]
    present = [(i, v) for i, v in values if v is not None]
    if not best or len(present) < 2:
        return set()
    target = min(v for _, v in present) if best == "min" else max(v for _, v in present)
    return {i for i, v in present if v == target}


def hyperparameter_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per hyperparameter: its values per run and whether they all agree."""
    keys: list[str] = []
    for row in rows:
        for key in row["hyperparameters"]:
            if key not in keys:
                keys.append(key)
    table = []
    for key in keys:
        values = [row["hyperparameters"].get(key) for row in rows]
        same = all(value == values[0] for value in values)
        table.append({"key": key, "values": values, "same": same})
    return table


def informative_scatters(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best validation loss against each meaningful hyperparameter with varying numeric values
    (never the seed), for those where at least two runs have a point (runs without validation
    data have none)."""
    figures = (scatter_best_vs_hyperparameter(rows, key) for key in plotted_parameters(rows))
    return [f for f in figures if len(rows) - len(f["layout"]["meta"]["excluded"]) >= 2]


def build_comparison(
    series: Sequence[RunSeries],
    *,
    extras: Sequence[dict[str, Any]],
    options: ChartOptions,
    level: int,
    jobs: Sequence[Job | None] | None = None,
    statuses: Sequence[tuple[str, str]] | None = None,
    missing: Sequence[str] = (),
) -> Comparison:
    """Figures, tables and scatters of runs already turned into series (from the database or
    from a share link's snapshot)."""
    figures = compare_figures(
        series, x_axis=options.x_axis, log_y=options.log_y, smoothing=options.smoothing
    )
    axis = figures["loss"]["layout"]["meta"]["x_axis"]
    rows = comparison_rows(series)
    for row, extra in zip(rows, extras, strict=True):
        row["metrics"].update(extra)
    statuses = list(statuses) if statuses is not None else [("", "")] * len(series)
    # A run of unknown status (none given) is not marked: nothing says it is still going.
    unfinished = [bool(status) and status not in Job.TERMINAL for status, _ in statuses]
    if statuses and any(status for status, _ in statuses):
        for row, (status, _) in zip(rows, statuses, strict=True):
            row["status"] = status  # the CSV export says which values are only the latest
    metric_columns = []
    for key, heading, best in METRIC_COLUMNS:
        positions = _best_positions(rows, key, best)
        metric_columns.append(
            {
                "key": key,
                "heading": heading,
                "best": best,
                "cells": [
                    {
                        "value": row["metrics"].get(key),
                        "best": i in positions,
                        "latest": key in LAST_VALUE_COLUMNS
                        and unfinished[i]
                        and row["metrics"].get(key) is not None,
                    }
                    for i, row in enumerate(rows)
                ],
            }
        )
    jobs = list(jobs) if jobs is not None else [None] * len(series)
    compared = [
        ComparedRun(
            run=run, colour=row["colour"], label=run.label, job=job, status=st[0],
            status_display=st[1],
        )
        for run, row, job, st in zip(series, rows, jobs, statuses, strict=True)
    ]  # fmt: skip
    return Comparison(
        runs=compared,
        figures=figures,
        descriptions={
            kind: compare_description(series, kind, axis) for kind in ("loss", "accuracy")
        },
        rows=rows,
        hyperparameter_table=hyperparameter_table(rows),
        metric_columns=metric_columns,
        scatters=informative_scatters(rows),
        x_axis=axis,
        level=level,
        options=options,
        missing=list(missing),
    )


def comparison(ids: Sequence[str], options: ChartOptions | None = None) -> Comparison:
    """Everything the compare page shows, in a fixed number of queries: runs, catalog,
    checkpoints and the curves the ingest stored (never the metric rows)."""
    options = options or ChartOptions()
    jobs = compare_jobs(ids)
    found = {str(job.pk) for job in jobs}
    price_table = prices()
    level = compare_level(len(jobs))
    marks = curves.checkpoints_for([job.pk for job in jobs])
    curve_map = curves.curves_for(jobs, level=level, checkpoints=marks)
    series = [
        curves.series_from_points(
            job,
            curve_map[str(job.pk)].points,
            label=run_label(job),
            run_id=str(job.pk),
            checkpoints=marks.get(str(job.pk), []),
            hyperparameters=compare_hyperparameters(job),
        )
        for job in jobs
    ]
    built = build_comparison(
        series,
        extras=[run_extras(job, price_table.cost(job)) for job in jobs],
        options=options,
        level=level,
        jobs=jobs,
        statuses=[(job.status, job.get_status_display()) for job in jobs],
        missing=[job_id for job_id in ids if job_id not in found],
    )
    # Finished runs: the diagnosis of all their rows stored when they finished (one query).
    # Others (still going, or not stored yet): from the curve drawn here (spikes, dips and
    # the best point are kept in it), so no page reads a whole series; marked provisional.
    stored = curves.stored_diagnoses(jobs, checkpoints=marks)
    for compared, run in zip(built.runs, series, strict=True):
        job_id = str(compared.job.pk) if compared.job else ""
        compared.diagnosis = stored.get(job_id) or curves.diagnosis_dict(run)
        compared.provisional = compared.job is not None and not compared.job.is_terminal
    return built


def recent_runs(exclude: Sequence[str], *, limit: int = RECENT_RUNS_OFFERED) -> list[Job]:
    """Runs the compare page offers to add (newest first)."""
    return list(
        Job.objects.filter(archived=False)
        .exclude(pk__in=list(exclude))
        .only("id", "name", "provider_job_id", "status", "created_at")
        .order_by("-created_at", "-id")[:limit]
    )


def share_links_of(user: Any) -> list[ShareLink]:
    """A member's share links, newest first (an admin sees everyone's)."""
    links = ShareLink.objects.select_related("created_by", "job", "evaluation").defer(
        "snapshot",
        "job__requested_hyperparameters",
        "job__hyperparameters",
        "job__result_files",
        "job__integrations",
        "job__error",
        "job__notes",
    )
    if not is_admin(user):
        links = links.filter(created_by=user)
    return list(links.order_by("-created_at", "-id")[:200])


def live_diagnosis(job: Job, *, up_to_step: int | None) -> dict[str, Any] | None:
    """The fit diagnosis of the run's points up to ``up_to_step`` (the job page's poll: the
    diagnosis speaks of the same step as the status and the charts)."""
    marks = curves.checkpoints_for([job.pk]).get(str(job.pk), [])
    _count, columns = curves.metric_columns([job.pk], up_to_step=up_to_step).get(
        str(job.pk), (0, {})
    )
    return curves.with_rule_text(curves.compute_diagnosis(job, columns, marks))

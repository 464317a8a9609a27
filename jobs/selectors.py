"""Reads for the jobs pages: connections, the launch form's options and estimates, the job page
and its live JSON. Every function runs a fixed number of queries, whatever the row counts."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEntry
from datasets.models import BaseModel, Dataset
from datasets.selectors import datasets_overlap, families_from_row
from datasets.validation import (
    Distribution,
    estimate_hyperparameters,
    estimate_training_cost,
    rules,
)
from jobs import guardrail_rules
from jobs.costs import COST_FINAL_STATUSES, job_cost
from jobs.models import (
    Checkpoint,
    Guardrail,
    GuardrailFiring,
    ImportedFile,
    ImportRun,
    Job,
    JobControl,
    JobEvent,
    ProviderConnection,
    WebhookDelivery,
)
from jobs.providers import traits

DEFAULT_BASE_MODEL_ID = "gpt-4o-mini-2024-07-18"
EVENTS_SHOWN = 200
FINE_TUNED_SHOWN = 500  # the newest fine-tuned models offered for continued training
LIVE_EVENTS_LIMIT = 200
EVENT_LEVELS = ("info", "warn", "error")
CANCELLABLE = frozenset({"validating_files", "queued", "running", "paused"})
# A finished control stays on the run page this long (its outcome), a pending one until done.
CONTROL_SHOWN_FOR = timedelta(minutes=10)
CONTROL_UNDER_WAY = {
    JobControl.Action.CANCEL: "Cancel requested…",
    JobControl.Action.PAUSE: "Pause requested…",
    JobControl.Action.RESUME: "Resume requested…",
    JobControl.Action.SYNC: "Syncing…",
    JobControl.Action.DELETE_MODEL: "Deleting the fine-tuned model…",
}


# --- Connections ------------------------------------------------------------------------------


def connections_list() -> list[ProviderConnection]:
    return list(ProviderConnection.objects.order_by("name"))


def connection_get(pk: int) -> ProviderConnection | None:
    return ProviderConnection.objects.filter(pk=pk).first()


def connections_usable() -> QuerySet[ProviderConnection]:
    """Connections a job can be launched on (the ``usable`` property, as a query)."""
    return (
        ProviderConnection.objects.filter(enabled=True, archived_at__isnull=True)
        .exclude(api_key_encrypted="")
        .order_by("name")
    )


# --- The base-model catalog ------------------------------------------------------------------


def catalog() -> dict[str, BaseModel]:
    return {model.pk: model for model in BaseModel.objects.order_by("pk")}


def catalog_model_for(name: str, models: dict[str, BaseModel]) -> BaseModel | None:
    """The catalog row for a provider model name: a catalog id, an alias such as
    ``gpt-4o-mini`` (its newest snapshot), or a fine-tuned ``ft:<base>:…`` name (its base)."""
    if not name:
        return None
    base = name.split(":")[1] if name.startswith("ft:") else name
    if base in models:
        return models[base]
    snapshots = sorted(model_id for model_id in models if model_id.startswith(base + "-"))
    return models[snapshots[-1]] if snapshots else None


# --- Launch form -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FineTunedModel:
    connection_id: int
    name: str
    catalog_id: str | None


@dataclass(frozen=True)
class DatasetFacts:
    """What the launch form needs of a valid dataset, without loading its report."""

    id: int
    name: str
    format: str
    n_examples: int
    encoding: str
    tokens_by_context: dict[int, int]  # billed tokens per epoch for each catalog context limit
    split_part: str = ""  # "train", "validation" or "test" for a part of a split, else ""
    # Provider family → the methods the dataset can train there (families that accept it).
    families: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def trains_on(self, family: str) -> bool:
        return bool(self.families.get(family))

    @property
    def is_training_data(self) -> bool:
        return self.split_part in ("", "train")

    @property
    def defaults(self) -> dict[str, Any]:
        return estimate_hyperparameters(self.n_examples)


@dataclass(frozen=True)
class LaunchOptions:
    connections: list[ProviderConnection]
    models: dict[str, BaseModel]
    fine_tuned: list[FineTunedModel]
    datasets: dict[int, DatasetFacts]

    def model_for(self, name: str) -> BaseModel | None:
        for tuned in self.fine_tuned:
            if tuned.name == name:
                return self.models.get(tuned.catalog_id or "")
        return catalog_model_for(name, self.models)

    def default_training_dataset(self) -> int | None:
        """The most recent valid dataset that is not the validation or test part of a split
        (``datasets`` is newest first)."""
        return next((d.id for d in self.datasets.values() if d.is_training_data), None)

    def js_data(self) -> dict[str, Any]:
        """For json_script: each valid dataset's estimated "auto" hyperparameters, shown beside
        the fields as the dataset changes (the cost is asked from ``jobs:estimate``)."""
        datasets = {
            str(facts.id): {
                "name": facts.name,
                "defaults": {
                    key: facts.defaults[key]
                    for key in ("n_epochs", "batch_size", "learning_rate_multiplier")
                },
            }
            for facts in self.datasets.values()
        }
        return {"datasets": datasets}


def fine_tuned_models(
    connection_ids: list[int], models: dict[str, BaseModel]
) -> list[FineTunedModel]:
    """Succeeded jobs' models on these connections (to continue training), minus deleted ones."""
    rows = (
        Job.objects.filter(connection_id__in=connection_ids, status=Job.Status.SUCCEEDED)
        .exclude(fine_tuned_model="")
        .filter(model_deleted_at__isnull=True)
        .order_by("-created_at")
        .values_list("connection_id", "fine_tuned_model", "model", "base_model")[:FINE_TUNED_SHOWN]
    )
    seen: set[str] = set()
    tuned = []
    for connection_id, name, model, base_model in rows:
        if name in seen:
            continue
        seen.add(name)
        base = catalog_model_for(name, models) or catalog_model_for(model or base_model, models)
        tuned.append(FineTunedModel(connection_id, name, base.pk if base else None))
    return tuned


def fine_tuned_model_sources(name: str, models: dict[str, BaseModel]) -> list[FineTunedModel]:
    """The jobs that made the fine-tuned model ``name`` and still have it (succeeded, not
    deleted), one per connection, with the catalog model it was trained from."""
    rows = (
        Job.objects.filter(
            fine_tuned_model=name, status=Job.Status.SUCCEEDED, model_deleted_at__isnull=True
        )
        .order_by("-created_at")
        .values_list("connection_id", "model", "base_model")
    )
    sources: dict[int, FineTunedModel] = {}
    for connection_id, model, base_model in rows:
        if connection_id not in sources:
            base = catalog_model_for(name, models) or catalog_model_for(model or base_model, models)
            sources[connection_id] = FineTunedModel(connection_id, name, base.pk if base else None)
    return list(sources.values())


def valid_datasets(contexts: set[int]) -> dict[int, DatasetFacts]:
    rows = (
        Dataset.objects.filter(status=Dataset.Status.VALID)
        .order_by("-uploaded_at", "-id")
        .values(
            "id",
            "name",
            "format",
            "n_examples",
            "report__n_examples",
            "report__tokens__encoding",
            "report__tokens__total__counts",
            "derivation__kind",
            "derivation__part",
            "status",
            "validity",
        )
    )
    facts = {}
    for row in rows:
        families = {
            v.family: v.methods
            for v in families_from_row(
                status=row["status"], format=row["format"], validity=row["validity"]
            )
            if v.valid
        }
        counts = row["report__tokens__total__counts"] or []
        if not counts:
            # A file only another family accepts (plain text, say): its tokens are that
            # family's (the report's parts; read for these rare rows only).
            counts = _part_token_counts(row["id"])
        distribution = Distribution({int(v): int(c) for v, c in counts})
        facts[row["id"]] = DatasetFacts(
            id=row["id"],
            name=row["name"],
            format=row["format"],
            n_examples=row["n_examples"] or row["report__n_examples"] or distribution.n,
            encoding=row["report__tokens__encoding"] or "",
            tokens_by_context={limit: distribution.capped_total(limit) for limit in contexts},
            split_part=str(row["derivation__part"] or "")
            if row["derivation__kind"] == "split"
            else "",
            families=families,
        )
    return facts


def _part_token_counts(dataset_id: int) -> list[Any]:
    parts = Dataset.objects.filter(pk=dataset_id).values_list("report__parts", flat=True).first()
    for part in parts if isinstance(parts, list) else []:
        counts = (((part or {}).get("tokens") or {}).get("total") or {}).get("counts")
        if counts:
            return list(counts)
    return []


def launch_warnings(*, training_id: Any, validation_id: Any) -> list[str]:
    """What to point out before launching with this training and validation data: the same
    dataset twice, or examples the two share (validation loss then measures memorised
    examples and cannot show overfitting)."""
    if not (isinstance(training_id, int) and isinstance(validation_id, int)):
        return []  # no query: the page's query count stays flat without a validation set
    datasets = {d.pk: d for d in Dataset.objects.filter(pk__in=[training_id, validation_id])}
    training, validation = datasets.get(training_id), datasets.get(validation_id)
    if training is None or validation is None:
        return []
    if training.pk == validation.pk:
        return [
            "The validation dataset is the training dataset: its loss will follow the "
            "training loss and cannot show overfitting."
        ]
    overlap = datasets_overlap(first=training, second=validation)
    if not overlap.checked:
        return [
            "The training and validation datasets were not compared for shared examples "
            "(the files are too large to compare here)."
        ]
    if overlap.shared:
        return [
            f"The training and validation datasets share {overlap.shared:,} of "
            f"{overlap.of:,} examples: validation loss on them measures memorisation, not "
            "generalisation."
        ]
    return []


def launch_options() -> LaunchOptions:
    connections = list(connections_usable())
    models = catalog()
    return LaunchOptions(
        connections=connections,
        models=models,
        fine_tuned=fine_tuned_models([c.pk for c in connections], models),
        datasets=valid_datasets({m.training_context for m in models.values()}),
    )


@dataclass(frozen=True)
class CostEstimate:
    model_id: str
    n_epochs: int
    epochs_auto: bool
    billed_tokens: int
    price_per_1m: Decimal | None
    cost: Decimal | None
    encoding_mismatch: bool  # token counts were made with another tokenizer: approximate
    encoding: str = ""  # the tokenizer the dataset's tokens were counted with


def launch_estimate(
    facts: DatasetFacts | None, model: BaseModel | None, n_epochs: int | None
) -> CostEstimate | None:
    """Billed tokens × the model's training price: each example up to the training context,
    once per epoch (the chosen number, or the estimate of "auto")."""
    if facts is None or model is None:
        return None
    epochs = n_epochs or facts.defaults["n_epochs"]
    spec = model.to_spec()
    per_epoch = facts.tokens_by_context.get(spec.training_context)
    if per_epoch is None:
        return None
    billed = rules.billed_tokens(tokens_per_epoch=per_epoch, n_epochs=epochs)
    return CostEstimate(
        model_id=model.pk,
        n_epochs=epochs,
        epochs_auto=n_epochs is None,
        billed_tokens=billed,
        price_per_1m=spec.training_price_per_1m,
        cost=estimate_training_cost(billed, spec),
        encoding_mismatch=bool(facts.encoding) and facts.encoding != spec.encoding,
        encoding=facts.encoding or spec.encoding,
    )


def dataset_validation_failure(pk: int) -> tuple[str, str] | None:
    """(name, message) of a dataset whose validation could not run (a tokenizer that cannot
    be loaded, say): the launch page says why it is not offered instead of "not valid"."""
    row = (
        Dataset.objects.filter(pk=pk, status=Dataset.Status.ERROR)
        .values_list("name", "error_message")
        .first()
    )
    return (row[0], row[1]) if row else None


def job_for_clone(pk: Any) -> Job | None:
    return Job.objects.filter(pk=pk).first()


@dataclass(frozen=True)
class LaunchEstimate:
    """What the launch page shows for the chosen dataset, model and epochs."""

    cost: CostEstimate | None  # None until a dataset and a known model are chosen
    defaults: dict[str, Any] | None  # the dataset's estimated "auto" hyperparameters


def launch_page_estimate(
    *,
    options: LaunchOptions,
    training_dataset: int | None,
    base_model: str,
    n_epochs: int | None,
) -> LaunchEstimate:
    """The launch page's cost estimate and defaults, from ``launch_options()`` (no queries).
    ``n_epochs`` None (or not a positive number) is "auto"."""
    facts = options.datasets.get(training_dataset) if training_dataset is not None else None
    model = options.model_for(base_model) if base_model else None
    epochs = n_epochs if isinstance(n_epochs, int) and n_epochs > 0 else None
    return LaunchEstimate(
        cost=launch_estimate(facts, model, epochs),
        defaults=facts.defaults if facts else None,
    )


# --- Job page --------------------------------------------------------------------------------


def job_get(pk: Any) -> Job | None:
    return (
        Job.objects.select_related(
            "connection", "training_dataset", "validation_dataset", "created_by", "cloned_from"
        )
        .defer(
            "training_dataset__report",
            "training_dataset__line_index",
            "validation_dataset__report",
            "validation_dataset__line_index",
        )
        .filter(pk=pk)
        .annotate(latest_control_id=_latest_control())
        .first()
    )


def _latest_control() -> Subquery:
    """The newest control of the job, in the job's own query (most jobs have none)."""
    return Subquery(
        JobControl.objects.filter(job=OuterRef("pk"))
        .order_by("-requested_at", "-id")
        .values("pk")[:1]
    )


@dataclass(frozen=True)
class Controls:
    provider_usable: bool
    provider_reason: str
    cancel: bool = False
    pause: bool = False
    resume: bool = False
    sync: bool = False
    delete_model: bool = False
    # The run reports itself (a self-hosted training script): nothing to ask a provider.
    self_reported: bool = False

    @property
    def any_provider(self) -> bool:
        return self.cancel or self.pause or self.resume or self.sync or self.delete_model


def connection_problem(connection: ProviderConnection) -> str:
    if not traits(connection.kind).hosted:
        return f"Runs on “{connection.name}” are reported and controlled by their training script"
    if connection.archived_at is not None:
        return f"The connection “{connection.name}” is archived"
    if not connection.enabled:
        return f"The connection “{connection.name}” is disabled"
    if not connection.api_key_encrypted:
        return f"The connection “{connection.name}” has no API key"
    return ""


def job_controls(job: Job, *, model_deleted: bool) -> Controls:
    """Which provider actions apply to the job in its current state."""
    problem = connection_problem(job.connection)
    if problem:
        return Controls(
            provider_usable=False,
            provider_reason=problem,
            self_reported=not traits(job.connection.kind).hosted,
        )
    at_provider = bool(job.provider_job_id)
    return Controls(
        provider_usable=True,
        provider_reason="",
        cancel=at_provider and job.status in CANCELLABLE,
        pause=at_provider and job.status == Job.Status.RUNNING,
        resume=at_provider and job.status == Job.Status.PAUSED,
        sync=at_provider and job.status != Job.Status.LOST,
        delete_model=bool(job.fine_tuned_model) and not model_deleted,
    )


@dataclass
class JobPage:
    job: Job
    events: list[JobEvent]
    more_events: bool
    last_event_id: int
    level: str
    checkpoints: list[Checkpoint]
    checkpoint_metrics: list[str]
    validated_at: datetime | None
    model_deleted_at: datetime | None
    catalog_model: BaseModel | None
    cost: Decimal | None  # jobs.costs.job_cost: final once the job has ended
    cost_final: bool
    estimate: CostEstimate | None  # the planned cost, while the job is under way
    controls: Controls
    hyperparameters: list[tuple[str, Any, Any]] = field(default_factory=list)
    control: JobControl | None = None

    @property
    def control_text(self) -> str:
        return control_text(self.control) if self.control is not None else ""


HYPERPARAMETER_LABELS = {
    "n_epochs": "Epochs",
    "batch_size": "Batch size",
    "learning_rate_multiplier": "Learning-rate multiplier",
    "beta": "β (DPO)",
}


def _hyperparameter_rows(job: Job) -> list[tuple[str, Any, Any]]:
    """(label, requested, resolved by the provider) for every key either side knows."""
    requested = job.requested_hyperparameters or {}
    resolved = job.hyperparameters or {}
    keys = [k for k in HYPERPARAMETER_LABELS if k in requested or k in resolved]
    keys += sorted((set(requested) | set(resolved)) - set(HYPERPARAMETER_LABELS))
    # An imported job's request is not known: the provider only reports what it used.
    missing = "—" if job.origin == Job.Origin.IMPORTED else "auto"
    return [
        (HYPERPARAMETER_LABELS.get(k, k), requested.get(k, missing), resolved.get(k)) for k in keys
    ]


def _training_facts(job: Job, contexts: set[int]) -> DatasetFacts | None:
    return training_facts(job.training_dataset_id, contexts)


def training_facts(dataset_id: int | None, contexts: set[int]) -> DatasetFacts | None:
    """One dataset's example count and billed tokens per epoch at each context limit."""
    if dataset_id is None:
        return None
    row = (
        Dataset.objects.filter(pk=dataset_id)
        .values("n_examples", "report__tokens__encoding", "report__tokens__total__counts")
        .first()
    )
    if row is None or not row["report__tokens__total__counts"]:
        return None
    distribution = Distribution({int(v): int(c) for v, c in row["report__tokens__total__counts"]})
    return DatasetFacts(
        id=dataset_id,
        name="",
        format="",
        n_examples=row["n_examples"] or distribution.n,
        encoding=row["report__tokens__encoding"] or "",
        tokens_by_context={limit: distribution.capped_total(limit) for limit in contexts},
    )


@dataclass
class OlderEvents:
    events: list[JobEvent]
    older_cursor: int | None  # the id to ask ``before`` next, None at the first event


def job_events_before(job: Job, *, before: int, level: str = "") -> OlderEvents | None:
    """The ``EVENTS_SHOWN`` events that come after event ``before`` in the job page's order
    (newest first), for the "older events" pages; None when ``before`` is no event of the
    job. The cursor is an event, not an offset, so events arriving meanwhile shift nothing."""
    cursor = JobEvent.objects.filter(job=job, pk=before).values("created_at", "id").first()
    if cursor is None:
        return None
    events_qs = JobEvent.objects.filter(job=job).filter(
        Q(created_at__lt=cursor["created_at"])
        | Q(created_at=cursor["created_at"], id__lt=cursor["id"])
    )
    if level:
        events_qs = events_qs.filter(level=level)
    events = list(events_qs.order_by("-created_at", "-id")[: EVENTS_SHOWN + 1])
    shown = events[:EVENTS_SHOWN]
    return OlderEvents(
        events=shown, older_cursor=shown[-1].pk if len(events) > EVENTS_SHOWN else None
    )


def model_deleted_at(job: Job) -> datetime | None:
    """When the job's fine-tuned model was deleted at the provider."""
    return job.model_deleted_at if job.fine_tuned_model else None


def job_page(job: Job, *, level: str = "") -> JobPage:
    events_qs = JobEvent.objects.filter(job=job)
    if level:
        events_qs = events_qs.filter(level=level)
    events = list(events_qs.order_by("-created_at", "-id")[: EVENTS_SHOWN + 1])
    last_event_id = JobEvent.objects.filter(job=job).aggregate(last=Max("id"))["last"] or 0
    checkpoints = list(Checkpoint.objects.filter(job=job).order_by("step"))
    metric_keys = sorted({key for c in checkpoints for key in (c.metrics or {})})
    validated = (
        JobEvent.objects.filter(job=job, message__startswith="Files validated")
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    deleted_at = model_deleted_at(job)
    models = catalog()
    model = catalog_model_for(job.model or job.base_model, models) or catalog_model_for(
        job.base_model, models
    )
    cost_final = job.status in COST_FINAL_STATUSES
    cost = job_cost(
        status=job.status,
        trained_tokens=job.trained_tokens,
        price_per_1m=model.to_spec().training_price_per_1m if model is not None else None,
    )
    estimate = None
    if not cost_final and model is not None:
        # While the job is under way the page shows what it is planned to cost, labelled so.
        facts = _training_facts(job, {model.training_context})
        epochs = (job.hyperparameters or {}).get("n_epochs")
        if not isinstance(epochs, int):
            requested = (job.requested_hyperparameters or {}).get("n_epochs")
            epochs = requested if isinstance(requested, int) else None
        estimate = launch_estimate(facts, model, epochs)
    return JobPage(
        job=job,
        events=events[:EVENTS_SHOWN],
        more_events=len(events) > EVENTS_SHOWN,
        last_event_id=last_event_id,
        level=level,
        checkpoints=checkpoints,
        checkpoint_metrics=metric_keys,
        validated_at=validated,
        model_deleted_at=deleted_at,
        catalog_model=model,
        cost=cost,
        cost_final=cost_final,
        estimate=estimate,
        controls=job_controls(job, model_deleted=deleted_at is not None),
        hyperparameters=_hyperparameter_rows(job),
        control=control_shown(job),
    )


def control_shown(job: Job) -> JobControl | None:
    """The control the run page shows: the newest, while it is under way and for a while
    after it is done (its outcome). No query when the job was read with ``latest_control_id``
    (``job_get``, ``job_live``) and has none."""
    latest = getattr(job, "latest_control_id", ...)
    if latest is None:
        return None
    controls = JobControl.objects.filter(job_id=job.pk).select_related("requested_by")
    if latest is ...:
        control = controls.order_by("-requested_at", "-id").first()
    else:
        control = controls.filter(pk=latest).first()
    if control is None or control.pending:
        return control
    if control.finished_at and timezone.now() - control.finished_at <= CONTROL_SHOWN_FOR:
        return control
    return None


def control_text(control: JobControl) -> str:
    """What the run page says about a control: under way, or its outcome."""
    if control.pending:
        return CONTROL_UNDER_WAY[JobControl.Action(control.action)]
    return control.outcome or control.get_state_display()


def control_json(control: JobControl | None) -> dict[str, Any] | None:
    if control is None:
        return None
    return {
        "id": control.pk,
        "action": control.action,
        "state": control.state,
        "pending": control.pending,
        "text": control_text(control),
        "requested_by": control.requested_by.get_username() if control.requested_by else None,
        "requested_at": _iso(control.requested_at),
        "finished_at": _iso(control.finished_at),
    }


def progress_percent(job: Job) -> float | None:
    if not job.total_steps or job.last_step is None:
        return None
    return round(min(100.0, 100.0 * job.last_step / job.total_steps), 1)


LIVE_FIELDS = (
    "id",
    "name",
    "provider_job_id",
    "status",
    "last_step",
    "total_steps",
    "estimated_finish",
    "started_at",
    "finished_at",
    "fine_tuned_model",
    "trained_tokens",
    "last_sync_error",
    "launch_error",
    "tags",
    "last_synced_at",
    "poll_failures",
    "final_train_loss",
    "model_deleted_at",
    "archived",
    "connection_id",
)


def sections_key(job: Job, control: JobControl | None) -> str:
    """What the job page's status-dependent sections (``_detail_sections.html``) are rendered
    from, in short: it changes with every sync and every control step, and the live JSON
    sends the sections again only when the page's key differs."""
    facts = "|".join(
        str(part)
        for part in (
            job.status,
            _iso(job.last_synced_at),
            job.poll_failures,
            job.launch_error,
            job.fine_tuned_model,
            _iso(job.model_deleted_at),
            job.archived,
            f"{control.pk}:{control.state}" if control is not None else "",
        )
    )
    return hashlib.sha256(facts.encode()).hexdigest()[:16]


def _iso(value: datetime | None) -> str | None:
    return timezone.localtime(value).isoformat() if value else None


def job_live_get(pk: Any) -> Job | None:
    """The job as one poll of its page reports it: read once, first, and every other part of
    the answer (events, charts, diagnosis, sections) shows this state or older."""
    return (
        Job.objects.filter(pk=pk)
        .only(*LIVE_FIELDS)
        .annotate(latest_control_id=_latest_control())
        .first()
    )


def job_live(job: Job, *, after: int, level: str = "") -> dict[str, Any]:
    """Status, progress and the events stored after event ``after`` (oldest first). The
    cursor moves past events of other levels too, so a filtered page never asks for them again."""
    batch = list(
        JobEvent.objects.filter(job_id=job.pk, id__gt=after)
        .order_by("id")
        .values("id", "created_at", "level", "type", "message")[: LIVE_EVENTS_LIMIT + 1]
    )
    has_more = len(batch) > LIVE_EVENTS_LIMIT
    batch = batch[:LIVE_EVENTS_LIMIT]
    events = [
        {**row, "created_at": _iso(row["created_at"])}
        for row in batch
        if not level or row["level"] == level
    ]
    control = control_shown(job)
    return {
        "id": str(job.pk),
        "name": job.display_name,
        "tags": job.tags,
        "status": job.status,
        "status_display": job.get_status_display(),
        "terminal": job.is_terminal,
        "progress": {
            "last_step": job.last_step,
            "total_steps": job.total_steps,
            "percent": progress_percent(job),
        },
        "estimated_finish": _iso(job.estimated_finish),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "fine_tuned_model": job.fine_tuned_model,
        "trained_tokens": job.trained_tokens,
        "last_sync_error": job.last_sync_error,
        "launch_error": job.launch_error,
        "events": events,
        "last_event_id": batch[-1]["id"] if batch else after,
        "has_more": has_more,
        "control": control_json(control),
        "sections_key": sections_key(job, control),
        "final_train_loss": job.final_train_loss,
    }


def audit_for_job(job: Job, limit: int = 20) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(object_type="job", object_id=str(job.pk))
        .select_related("actor")
        .order_by("-at")[:limit]
    )


def datasets_matching(ids: list[int]) -> dict[int, Dataset]:
    """Datasets by id, without their (large) report and line index."""
    return Dataset.objects.defer("report", "line_index").in_bulk(ids)


# --- History: connection page, imports, webhooks, audit log -----------------------------------

IMPORT_RUNS_SHOWN = 10
DELIVERIES_SHOWN = 20
AUDIT_PAGE_SIZE = 50


@dataclass(frozen=True)
class ConnectionOverview:
    connection: ProviderConnection
    problem: str
    jobs: int
    imported_jobs: int
    runs: list[ImportRun]
    active_run: ImportRun | None
    deliveries: list[WebhookDelivery]
    missing_files: int
    webhook_ready: bool


def connection_overview(connection: ProviderConnection) -> ConnectionOverview:
    runs = list(
        ImportRun.objects.filter(connection=connection)
        .select_related("started_by")
        .defer("job_ids")
        .order_by("-created_at", "-id")[:IMPORT_RUNS_SHOWN]
    )
    counts = Job.objects.filter(connection=connection).aggregate(
        jobs=Count("id"), imported=Count("id", filter=Q(origin=Job.Origin.IMPORTED))
    )
    return ConnectionOverview(
        connection=connection,
        problem=connection_problem(connection),
        jobs=counts["jobs"],
        imported_jobs=counts["imported"],
        runs=runs,
        active_run=next((run for run in runs if run.is_active), None),
        deliveries=list(
            WebhookDelivery.objects.filter(connection=connection)
            .select_related("job")
            .only("webhook_id", "type", "provider_job_id", "outcome", "received_at", "job__id")
            .order_by("-received_at", "-id")[:DELIVERIES_SHOWN]
        ),
        missing_files=ImportedFile.objects.filter(
            connection=connection, status=ImportedFile.Status.MISSING
        ).count(),
        webhook_ready=bool(connection.webhook_secret_encrypted),
    )


def import_run_status(pk: int) -> dict[str, Any] | None:
    run = (
        ImportRun.objects.filter(pk=pk)
        .values(
            "id",
            "connection_id",
            "status",
            "jobs_total",
            "jobs_done",
            "jobs_created",
            "files_downloaded",
            "files_missing",
            "errors",
            "last_error",
            "created_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
        )
        .first()
    )
    if run is None:
        return None
    total, done = run["jobs_total"], run["jobs_done"]
    return {
        **run,
        "active": run["status"] in ImportRun.ACTIVE,
        "percent": round(min(100.0, 100.0 * done / total), 1) if total else None,
        "created_at": _iso(run["created_at"]),
        "started_at": _iso(run["started_at"]),
        "heartbeat_at": _iso(run["heartbeat_at"]),
        "finished_at": _iso(run["finished_at"]),
    }


def audit_choices() -> tuple[list[str], list[str]]:
    actions = list(
        AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct()
    )
    types = list(
        AuditEntry.objects.order_by("object_type").values_list("object_type", flat=True).distinct()
    )
    return actions, types


def audit_entries(*, action: str = "", actor: str = "", object_type: str = "") -> QuerySet:
    entries = AuditEntry.objects.select_related("actor").order_by("-at", "-id")
    if action:
        entries = entries.filter(action=action)
    if object_type:
        entries = entries.filter(object_type=object_type)
    if actor:
        if actor.lower() == "system":
            entries = entries.filter(actor__isnull=True)
        else:
            entries = entries.filter(actor__username__iexact=actor)
    return entries


AUDIT_LINKS = {
    "job": ("jobs:detail", "uuid"),
    "providerconnection": ("jobs:connection_detail", "int"),
    "dataset": ("datasets:detail", "int"),
}


def audit_link(entry: AuditEntry) -> str:
    """The page of the entry's object, when it has one ("" otherwise)."""
    route = AUDIT_LINKS.get(entry.object_type)
    if route is None or not entry.object_id:
        return ""
    name, kind = route
    try:
        pk: Any = uuid.UUID(entry.object_id) if kind == "uuid" else int(entry.object_id)
    except ValueError:
        return ""
    return reverse(name, kwargs={"pk": pk})


def reporting_snippet(job: Job, *, server: str) -> str:
    """The lines that reproduce a self-hosted run's logging set-up (shown on its page); ""
    for runs Tuneboard syncs from a provider."""
    if traits(job.connection.kind).hosted:
        return ""
    name = job.name.replace('"', "'")
    model = job.base_model.replace('"', "'")
    external = (job.provider_job_id or "").replace('"', "'")
    return "\n".join(
        (
            "# pip install ./client   (the tuneboard-client package; it needs only httpx)",
            f"# export TUNEBOARD_URL={server}",
            "# export TUNEBOARD_TOKEN=tb_…   (a read-write token: Account → API tokens)",
            "import tuneboard",
            "from tuneboard import TuneboardCallback",
            "",
            f'run = tuneboard.init(run="{external}", name="{name}", base_model="{model}")',
            "trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=valid,",
            "                  callbacks=[TuneboardCallback(run)])",
            "trainer.train()",
        )
    )


@dataclass(frozen=True)
class GuardrailRow:
    guardrail: Guardrail
    label: str
    params_text: str
    firing: GuardrailFiring | None


@dataclass(frozen=True)
class GuardrailPanel:
    rows: list[GuardrailRow]
    kinds: list[tuple[str, str, str]]  # (kind, label, default parameters as text)
    actions: list[tuple[str, str]]
    stopped_by: GuardrailFiring | None  # the firing that paused or cancelled the job
    checkpoint_to_use: Checkpoint | None


def params_text(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def guardrail_panel(job: Job) -> GuardrailPanel:
    """The run page's guardrails: each rule, whether and why it fired, and after one stopped
    the run, the checkpoint to use (the lowest full-validation loss among those still kept)."""
    guardrails = list(Guardrail.objects.filter(job=job).select_related("firing").order_by("pk"))
    rows = []
    stopped_by = None
    for guardrail in guardrails:
        firing = getattr(guardrail, "firing", None)
        rows.append(
            GuardrailRow(
                guardrail, guardrail_rules.LABELS[guardrail.kind], params_text(guardrail.params),
                firing,
            )
        )  # fmt: skip
        if firing is not None and firing.action in ("pause", "cancel"):
            stopped_by = firing
    checkpoint = None
    if stopped_by is not None:
        kept = list(Checkpoint.objects.filter(job=job, deleted_at__isnull=True).order_by("step"))
        scored = [
            c for c in kept if isinstance((c.metrics or {}).get("full_valid_loss"), int | float)
        ]
        if scored:
            checkpoint = min(scored, key=lambda c: (c.metrics["full_valid_loss"], c.step))
        elif kept:
            best = job.best_full_valid_step
            before = [c for c in kept if best is not None and c.step <= best]
            checkpoint = before[-1] if before else kept[-1]
    declared = traits(job.connection.kind)
    actions = [(a, a.capitalize()) for a in guardrail_rules.ACTIONS
               if a != "pause" or declared.pauses]  # fmt: skip
    kinds = [(k, guardrail_rules.LABELS[k], params_text(guardrail_rules.DEFAULTS[k]))
             for k in guardrail_rules.KINDS]  # fmt: skip
    return GuardrailPanel(rows, kinds, actions, stopped_by, checkpoint)

"""Writes for provider connections and jobs. Provider calls happen outside transactions."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import leases, queue
from core.services import audit_record
from datasets.models import BaseModel, Dataset
from datasets.selectors import dataset_families, dataset_valid_for
from datasets.validation import PRIMARY, provider_limits
from jobs import guardrails, selectors
from jobs.connections import provider_for_connection
from jobs.locks import AdvisoryLock
from jobs.models import Checkpoint, Job, JobControl, ProviderConnection, ProviderFile
from jobs.providers import (
    BadRequestError,
    JobInfo,
    JobSpec,
    NotFoundError,
    ProviderError,
    TransientProviderError,
    parameters,
    parameters_for,
    traits,
)
from jobs.providers.parameters import Parameter
from jobs.providers.uploads import content_filename
from jobs.sync import job_sync

log = logging.getLogger(__name__)
METADATA_KEY = "tuneboard_job_id"
LAUNCH_LOCK = "jobs.launch"
MAX_LAUNCH_ATTEMPTS = 5
HYPERPARAMETER_RANGES = {
    "n_epochs": provider_limits.N_EPOCHS,
    "batch_size": provider_limits.BATCH_SIZE,
}


class JobError(Exception):
    """A user-facing reason why an action cannot be done. ``field`` names the input the reason
    is about, when there is one: a ``LaunchRequest`` attribute or hyperparameter key, spelt as
    the launch form's field (``"validation_dataset"``, ``"n_epochs"``, ``"wandb_project"``)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class LaunchRejected(JobError):
    """Every rule a launch request breaks, in the order they are checked; its message and
    field are the first one's, ``problems`` holds them all (a form shows each on its field)."""

    def __init__(self, problems: list[JobError]) -> None:
        super().__init__(problems[0].message, field=problems[0].field)
        self.problems = problems


# --- Connections ------------------------------------------------------------------------------


def connection_save(
    *,
    connection: ProviderConnection | None = None,
    name: str,
    kind: str,
    base_url: str,
    api_key: str | None,
    organization: str = "",
    project: str = "",
    api_version: str = "",
    webhook_secret: str | None = None,
    enabled: bool = True,
    notify_emails: str | None = None,
    slack_webhook_url: str | None = None,
    guardrail_defaults: list[dict[str, Any]] | None = None,
    actor: AbstractBaseUser | None = None,
) -> ProviderConnection:
    """Create or update a connection. ``api_key=None`` keeps the stored key (write-only field);
    ``None`` for the notification fields and the guardrail defaults keeps them as they are."""
    connection = connection or ProviderConnection()
    creating = connection.pk is None
    connection.name = name
    connection.kind = kind
    connection.base_url = base_url.rstrip("/")
    connection.organization = organization
    connection.project = project
    connection.api_version = api_version
    connection.enabled = enabled
    if api_key is not None:
        connection.set_api_key(api_key)
    if webhook_secret is not None:
        connection.set_webhook_secret(webhook_secret)
    if notify_emails is not None:
        connection.notify_emails = notify_emails
    if slack_webhook_url is not None:
        connection.slack_webhook_url = slack_webhook_url
    if guardrail_defaults is not None:
        problem = guardrails.rules_problem(connection, guardrail_defaults)
        if problem:
            raise JobError(problem, field="guardrail_defaults")
        connection.guardrail_defaults = [guardrails.clean_rule(r) for r in guardrail_defaults]
    connection.save()
    audit_record(
        actor=actor,
        action="connection_created" if creating else "connection_updated",
        obj=connection,
    )
    if traits(kind).refreshes_catalog and connection.enabled:
        # The models its provider fine-tunes, with their limits, for the launch page.
        queue.enqueue("jobs.tasks.catalog_refresh_task", connection.pk, robust=True)
    return connection


def connection_archive(
    *, connection: ProviderConnection, actor: AbstractBaseUser | None = None
) -> ProviderConnection:
    """Keep the connection's history read-only: remove its API key, stop polling its jobs.

    Jobs, events, checkpoints, metrics, datasets and share links stay as they are; controls
    that need the provider disappear (``selectors.connection_problem``), a running import
    stops at its next step, and webhooks are acknowledged without syncing."""
    now = timezone.now()
    with transaction.atomic():
        ProviderConnection.objects.filter(pk=connection.pk).update(
            archived_at=Coalesce(F("archived_at"), Value(now)),
            api_key_encrypted="",
            api_key_hint="",
            updated_at=now,
        )
        stopped = Job.objects.filter(connection=connection, next_poll_at__isnull=False).update(
            next_poll_at=None
        )
        audit_record(
            actor=actor,
            action="connection_archived",
            obj=connection,
            detail={"polls_stopped": stopped},
        )
    connection.refresh_from_db()
    return connection


def connection_ensure(*, name: str, kind: str, base_url: str, api_key: str) -> ProviderConnection:
    """Idempotent bootstrap (make run): create once, keep the URL and key in step afterwards."""
    connection = ProviderConnection.objects.filter(name=name).first()
    if connection is None:
        return connection_save(name=name, kind=kind, base_url=base_url, api_key=api_key)
    if connection.base_url != base_url.rstrip("/") or connection.get_api_key() != api_key:
        connection.base_url = base_url.rstrip("/")
        connection.set_api_key(api_key)
        connection.save()
    return connection


# --- Launch -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchRequest:
    """What to launch. ``job_launch`` reads the datasets' stored rows by their pk (checking and
    recording those), so ``Dataset(pk=…)`` is enough to name one."""

    connection: ProviderConnection
    base_model: str
    training_dataset: Dataset
    validation_dataset: Dataset | None = None
    method: str = "supervised"
    hyperparameters: dict[str, Any] | None = None  # only explicit values; missing = "auto"
    suffix: str = ""
    seed: int | None = None
    integrations: list[dict[str, Any]] | None = None
    name: str = ""
    notes: str = ""
    tags: list[str] | None = None
    cloned_from: Job | None = None
    # [{kind, params, action}] (jobs.guardrail_rules); None: the connection's defaults.
    guardrails: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True)
class HyperparameterRule:
    """What a launch may request for one hyperparameter (missing means "auto")."""

    integer: bool
    low: float
    high: float | None
    low_exclusive: bool
    message: str

    def allows(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        too_low = value <= self.low if self.low_exclusive else value < self.low
        return not too_low and (self.high is None or value <= self.high)


_EPOCHS = HYPERPARAMETER_RANGES["n_epochs"]
_BATCH = HYPERPARAMETER_RANGES["batch_size"]
_LR = provider_limits.LEARNING_RATE_MULTIPLIER
_LR_TEXT = tuple(provider_limits.plain(bound) for bound in _LR)
HYPERPARAMETER_RULES = {
    "n_epochs": HyperparameterRule(
        integer=True, low=_EPOCHS[0], high=_EPOCHS[1], low_exclusive=False,
        message=f"Epochs must be “auto” or a whole number from {_EPOCHS[0]} to {_EPOCHS[1]}.",
    ),
    "batch_size": HyperparameterRule(
        integer=True, low=_BATCH[0], high=_BATCH[1], low_exclusive=False,
        message=f"Batch size must be “auto” or a whole number from {_BATCH[0]} to {_BATCH[1]}.",
    ),
    "learning_rate_multiplier": HyperparameterRule(
        integer=False, low=_LR[0], high=_LR[1], low_exclusive=False,
        message=f"The learning-rate multiplier must be “auto” or a number from {_LR_TEXT[0]} to {_LR_TEXT[1]}.",
    ),
    "beta": HyperparameterRule(
        integer=False, low=0, high=provider_limits.BETA_MAX, low_exclusive=True,
        message="β must be “auto” or a number greater than 0 and at most 2.",
    ),
}  # fmt: skip
SUFFIX_MAX = provider_limits.SUFFIX_MAX_LENGTH
MAX_SEED = 2_147_483_647
SUPERVISED_FORMATS = frozenset(
    {
        Dataset.Format.CHAT,
        Dataset.Format.CHAT_TOOLS,
        Dataset.Format.VISION,
        Dataset.Format.LEGACY_COMPLETION,
    }
)


def _base_model_problems(
    request: LaunchRequest, models: dict[str, BaseModel]
) -> tuple[BaseModel | None, list[JobError]]:
    """The catalog row the request trains (None when unknown) and what is wrong with it: a
    fine-tuned model must be a live one of a job that succeeded on this connection (where the
    provider can continue one); a catalog model (or alias) must be in the connection's catalog
    family and not be shut down."""
    name = request.base_model
    declared = traits(request.connection.kind)
    family = {pk: m for pk, m in models.items() if m.provider_kind == declared.family}
    if name.startswith("ft:") and declared.continues_fine_tuned:
        sources = selectors.fine_tuned_model_sources(name, models)
        if not sources:
            return None, [
                JobError(
                    f"{name} is not a model fine-tuned by a job here, or it was deleted.",
                    field="base_model",
                )
            ]
        mine = [s for s in sources if s.connection_id == request.connection.pk]
        if not mine:
            return None, [
                JobError("That fine-tuned model belongs to another connection.", field="base_model")
            ]
        return models.get(mine[0].catalog_id or ""), []
    model = selectors.catalog_model_for(name, family)
    if model is None:
        if declared.refreshes_catalog and not family:
            message = (
                f"The list of models {declared.label} fine-tunes has not been fetched yet: "
                "refresh it on the launch page."
            )
        elif declared.refreshes_catalog:
            message = f"{name} is not among the models {declared.label} fine-tunes."
        else:
            message = f"{name} is not in the model catalog."
        return None, [JobError(message, field="base_model")]
    if model.is_shut_down():
        return model, [
            JobError(
                f"{model.pk} was shut down on {model.shutdown_on:%Y-%m-%d}.", field="base_model"
            )
        ]
    return model, []


def _dataset_problem(
    dataset: Dataset | None, field: str, method: str, model: BaseModel | None, family: str
) -> JobError | None:
    """A training or validation dataset must (still) be valid for the connection's provider
    family (``datasets.selectors.dataset_valid_for``: its rule set accepts the file and the
    file's format trains the method there) and suit the model: prompt/completion lines for
    legacy models only, images for vision models only. ``dataset`` is the stored row (None
    when it was deleted)."""
    role = "training" if field == "training_dataset" else "validation"
    if dataset is None:
        return JobError(f"The {role} dataset no longer exists.", field=field)
    if dataset.status != Dataset.Status.VALID:
        return JobError(
            f"The {role} dataset “{dataset.name}” is not valid ({dataset.get_status_display()}).",
            field=field,
        )
    accepted = any(v.valid for v in dataset_families(dataset) if v.family == family)
    usable, reason = dataset_valid_for(dataset, family=family, method=method)
    if not accepted:
        return JobError(f"“{dataset.name}”: {reason}", field=field)
    if family == PRIMARY.name:
        # OpenAI's own wording for a format the method does not train on.
        problem = _method_format_problem(dataset, field, method)
        if problem is not None:
            return problem
    if not usable and method in Job.Method.values:  # an unknown method is its own problem
        return JobError(f"“{dataset.name}”: {reason}", field=field)
    return _model_format_problem(dataset, field, method, model)


def _method_format_problem(dataset: Dataset, field: str, method: str) -> JobError | None:
    kind = dataset.get_format_display()
    if method == Job.Method.DPO and dataset.format != Dataset.Format.DPO:
        return JobError(f"DPO needs preference data; “{dataset.name}” is {kind}.", field=field)
    if method == Job.Method.SUPERVISED and dataset.format not in SUPERVISED_FORMATS:
        advice = (
            "choose the DPO method."
            if dataset.format == Dataset.Format.DPO
            else "it cannot train a supervised job."
        )
        return JobError(f"“{dataset.name}” is {kind} data; {advice}", field=field)
    return None


def _model_format_problem(
    dataset: Dataset, field: str, method: str, model: BaseModel | None
) -> JobError | None:
    if model is None or method != Job.Method.SUPERVISED:
        return None
    legacy = dataset.format == Dataset.Format.LEGACY_COMPLETION
    if model.provider_kind == PRIMARY.name:
        if legacy and not model.legacy_completion:
            return JobError(
                f"{model.pk} trains on chat messages, not prompt/completion lines.", field=field
            )
        if not legacy and model.legacy_completion:
            return JobError(f"{model.pk} trains on prompt/completion lines only.", field=field)
    if dataset.format == Dataset.Format.VISION and not model.supports_vision:
        return JobError(f"{model.pk} does not support image inputs.", field=field)
    return None


def _declared_problems(request: LaunchRequest, declared: dict[str, Parameter]) -> list[JobError]:
    """Hyperparameters checked against what the connection's adapter declares."""
    problems = []
    values = request.hyperparameters or {}
    for key, value in values.items():
        parameter = declared.get(key)
        if parameter is None:
            problems.append(JobError(f"“{key}” is not a hyperparameter this provider takes."))
        elif request.method not in parameter.methods:
            problems.append(
                JobError(f"{parameter.label} does not apply to this method.", field=key)
            )
        elif not parameters.applies(
            parameter, method=request.method, values=values, declared=tuple(declared.values())
        ):
            when, wanted = parameter.only_when or ("", "")
            problems.append(
                JobError(f"{parameter.label} applies only when {when} is {wanted}.", field=key)
            )
        elif value is None or value == "auto":
            if not parameter.auto and parameter.default is None:
                problems.append(JobError(f"{parameter.label} needs a value.", field=key))
        elif not parameter_allows(parameter, value):
            problems.append(JobError(parameter_message(parameter), field=key))
    return problems


def parameter_allows(parameter: Parameter, value: Any) -> bool:
    if parameter.kind == "choice":
        return str(value) in parameter.choices
    if parameter.kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    if parameter.kind == "int" and not float(value).is_integer():
        return False
    low, high = parameter.low, parameter.high
    return (low is None or value >= low) and (high is None or value <= high)


def parameter_message(parameter: Parameter) -> str:
    if parameter.kind == "choice":
        return f"{parameter.label} must be one of {', '.join(parameter.choices)}."
    what = "a whole number" if parameter.kind == "int" else "a number"
    return f"{parameter.label} must be {what} from {parameter.low:g} to {parameter.high:g}."


def launch_parameters(
    *, kind: str, model: BaseModel | None, method: str, hyperparameters: dict[str, Any]
) -> tuple[Parameter, ...]:
    """The parameters a launch on ``kind`` may set, within the limits the provider lists for
    ``model`` (and, for the batch size, for LoRA or full training and the method)."""
    training_type = str((hyperparameters or {}).get("training_type") or "lora")
    limits = model.limits if model is not None else None
    return parameters_for(kind, limits, method=method, training_type=training_type)


def _hyperparameter_problems(request: LaunchRequest, model: BaseModel | None) -> list[JobError]:
    declared = launch_parameters(
        kind=request.connection.kind,
        model=model,
        method=request.method,
        hyperparameters=request.hyperparameters or {},
    )
    if declared != parameters.OPENAI:
        return _declared_problems(request, {p.name: p for p in declared})
    # OpenAI's parameters keep their own rules (``HYPERPARAMETER_RULES``: the limits the
    # sandbox applies too, and the messages the launch form shows).
    problems = []
    for key, value in (request.hyperparameters or {}).items():
        rule = HYPERPARAMETER_RULES.get(key)
        if rule is None:
            problems.append(JobError(f"“{key}” is not a hyperparameter a launch can set."))
        elif key == "beta" and request.method != Job.Method.DPO:
            problems.append(
                JobError("β applies to DPO only; leave it on “auto” for supervised.", field=key)
            )
        elif not rule.allows(value):
            problems.append(JobError(rule.message, field=key))
    return problems


def _output_problems(request: LaunchRequest) -> list[JobError]:
    """The suffix, seed and integrations the provider accepts."""
    problems = []
    suffix_max = min(SUFFIX_MAX, traits(request.connection.kind).suffix_max)
    if len(request.suffix) > suffix_max:
        problems.append(JobError(f"The suffix is at most {suffix_max} characters.", field="suffix"))
    elif request.suffix and not provider_limits.suffix_allowed(request.suffix):
        problems.append(
            JobError(
                "The suffix may hold only letters, digits, hyphens (-) and underscores (_).",
                field="suffix",
            )
        )
    seed = request.seed
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED
    ):
        problems.append(
            JobError(f"The seed must be a whole number from 0 to {MAX_SEED}.", field="seed")
        )
    if request.integrations and not traits(request.connection.kind).wandb_integration:
        problems.append(
            JobError(
                f"{traits(request.connection.kind).label} jobs cannot report to W&B from here.",
                field="wandb_project",
            )
        )
    for integration in request.integrations or []:
        wandb = integration.get("wandb") if integration.get("type") == "wandb" else None
        if not isinstance(wandb, dict):
            problems.append(JobError("Only the W&B integration is supported."))
        elif not str(wandb.get("project") or "").strip():
            problems.append(
                JobError("Enter the W&B project to use the integration.", field="wandb_project")
            )
    return problems


def _launch_problems(
    request: LaunchRequest, models: dict[str, BaseModel]
) -> tuple[list[JobError], dict[int, Dataset]]:
    """Every rule the request breaks (none: it can be launched), and the stored rows of its
    datasets, read here: the request's datasets only name them."""
    problems: list[JobError] = []
    connection_problem = selectors.connection_problem(request.connection)
    if connection_problem:
        problems.append(
            JobError(f"{connection_problem}: no job can be launched on it.", field="connection")
        )
    method = request.method
    if method not in Job.Method.values:
        problems.append(JobError(f"“{method}” is not a fine-tuning method.", field="method"))
    model, model_problems = _base_model_problems(request, models)
    problems += model_problems
    if method == Job.Method.DPO and model is not None and not model.supports_dpo:
        problems.append(JobError(f"{model.pk} does not support DPO fine-tuning.", field="method"))
    chosen = {"training_dataset": request.training_dataset.pk}
    if request.validation_dataset is not None:
        chosen["validation_dataset"] = request.validation_dataset.pk
    stored = selectors.datasets_matching([pk for pk in chosen.values() if pk is not None])
    family = traits(request.connection.kind).family
    for field, pk in chosen.items():
        problem = _dataset_problem(stored.get(pk), field, method, model, family)
        if problem is not None:
            problems.append(problem)
    problems += _hyperparameter_problems(request, model)
    problems += _output_problems(request)
    return problems, stored


def launch_problems(
    *, request: LaunchRequest, catalog: dict[str, BaseModel] | None = None
) -> list[JobError]:
    """Every launch rule ``request`` breaks (a read: nothing is written)."""
    models = catalog if catalog is not None else selectors.catalog()
    return _launch_problems(request, models)[0]


def job_launch(
    *,
    request: LaunchRequest,
    user: AbstractBaseUser | None,
    catalog: dict[str, BaseModel] | None = None,
) -> Job:
    """Record the job and queue its launch task, or raise ``LaunchRejected`` (a ``JobError``)
    with every rule the request breaks: the connection must be usable; the base model a live
    catalog model or a model fine-tuned on this connection, supporting the method; each
    dataset still valid, of the method's format and suited to the model; hyperparameters,
    suffix, seed and W&B integration within what the provider takes. Rejected, nothing is
    written or queued. ``catalog`` is the base-model catalog when the caller has just read it
    (``selectors.catalog()``, as the launch page does); it is read here otherwise."""
    models = catalog if catalog is not None else selectors.catalog()
    problems, stored = _launch_problems(request, models)
    guarding = guardrails.rules_problem(request.connection, request.guardrails or ())
    if guarding:
        problems.append(JobError(guarding, field="guardrails"))
    if problems:
        raise LaunchRejected(problems)
    validation = request.validation_dataset
    with transaction.atomic():
        job = Job.objects.create(
            connection=request.connection,
            name=request.name,
            notes=request.notes,
            tags=request.tags or [],
            created_by=user if user is not None and user.is_authenticated else None,
            base_model=request.base_model,
            method=request.method,
            requested_hyperparameters=request.hyperparameters or {},
            suffix=request.suffix,
            seed=request.seed,
            integrations=request.integrations or [],
            training_dataset=stored[request.training_dataset.pk],
            validation_dataset=stored[validation.pk] if validation is not None else None,
            cloned_from=request.cloned_from,
            **leases.queued_fields(),
        )
        guardrails.guardrails_attach(job=job, rules=request.guardrails)
        audit_record(
            actor=user, action="job_launched", obj=job, detail={"base_model": request.base_model}
        )
        queue.enqueue("jobs.tasks.job_launch_task", str(job.pk))
    return job


def provider_file_ensure(*, connection: ProviderConnection, dataset: Dataset) -> str:
    """The provider's id of the dataset's file on ``connection``: recorded, found (an earlier
    attempt stored it without recording it) or uploaded now, once per content."""
    existing = ProviderFile.objects.filter(
        connection=connection, sha256=dataset.sha256, purpose="fine-tune"
    ).first()
    if existing:
        return existing.provider_file_id
    provider = provider_for_connection(connection)
    # An earlier attempt of this launch (stopped by a time limit, or its worker killed) may
    # have stored the file without recording it: its content-marked name finds it among the
    # newest files (one page), so a retried launch uploads nothing twice.
    found = provider.find_file(
        filename=content_filename(dataset.download_name, dataset.sha256),
        size=dataset.size,
        max_pages=1,
    )
    with dataset.file.open("rb") as stream:
        # The content's hash names the upload, so that a lost answer is looked up, not
        # uploaded twice (jobs/providers/uploads.py).
        info = found or provider.upload_file(
            filename=dataset.download_name,
            stream=stream,
            size=dataset.size,
            sha256=dataset.sha256,
        )
    info = provider.wait_for_file(info.id)
    if info.status == "error":
        raise BadRequestError(f"The provider could not process {dataset.name}.", status=400)
    try:
        ProviderFile.objects.create(
            connection=connection,
            sha256=dataset.sha256,
            purpose="fine-tune",
            provider_file_id=info.id,
            bytes=dataset.size,
        )
    except IntegrityError:
        # Another launch uploaded the same content meanwhile: use the recorded file.
        return ProviderFile.objects.get(
            connection=connection, sha256=dataset.sha256, purpose="fine-tune"
        ).provider_file_id
    return info.id


def _find_created(job: Job) -> JobInfo | None:
    """The provider job this launch created earlier (a retried or redelivered task), matched
    on its own ``tuneboard_job_id``, never on whatever a metadata-filtered list returns."""
    provider = provider_for_connection(job.connection)
    return provider.find_job(metadata_key=METADATA_KEY, value=str(job.pk))


def _launch_unfinished(job_id: Any) -> Any:
    return Job.objects.filter(
        pk=job_id,
        status__in=[Job.Status.PENDING, Job.Status.LAUNCHING],
        provider_job_id__isnull=True,
    )


def job_launch_run(*, job_id: Any) -> Job:
    """Upload the datasets and create the provider job, exactly once whatever happens.

    A retried or duplicated task finds the job already created (our id is in its metadata)
    instead of paying for a second one; one running at the same time as another (a task
    delivered twice) finds the launch lock taken and leaves the launch to it. The launch
    lock is what keeps launches apart; the lease on the row tells the reaper and the health
    check who works on it, so a launch whose worker died is sent again."""
    with AdvisoryLock(LAUNCH_LOCK, job_id) as held:
        if not held:
            return Job.objects.get(pk=job_id)
        # Holding the lock, this session is the only launcher: any other holder is gone.
        # A launch cannot outlive its task's hard time limit, so the lease lasts that long.
        limit = float(settings.PROVIDER_TASK_TIME_LIMIT)
        _launch_unfinished(job_id).update(**leases.held_fields(seconds=limit))
        try:
            return _launch(job_id)
        finally:
            # Launched, or failed for good: no lease. Still to do (a retry follows, or the
            # reaper sends it again): queued.
            Job.objects.filter(pk=job_id).update(**leases.done_fields())
            _launch_unfinished(job_id).update(**leases.queued_fields())


def _launch(job_id: Any) -> Job:
    claimed = Job.objects.filter(
        pk=job_id,
        status__in=[Job.Status.PENDING, Job.Status.LAUNCHING],
        provider_job_id__isnull=True,
    ).update(status=Job.Status.LAUNCHING)
    job = Job.objects.select_related("connection", "training_dataset", "validation_dataset").get(
        pk=job_id
    )
    if not claimed:
        return job
    provider = provider_for_connection(job.connection)
    try:
        info = _find_created(job)
        if info is None:
            training = provider_file_ensure(connection=job.connection, dataset=job.training_dataset)
            validation = (
                provider_file_ensure(connection=job.connection, dataset=job.validation_dataset)
                if job.validation_dataset
                else None
            )
            # After a lost answer the client looks the job up by this marker before it
            # creates again (OpenAICompatibleProvider.create_job).
            info = provider.create_job(
                JobSpec(
                    model=job.base_model,
                    training_file=training,
                    validation_file=validation,
                    method=job.method,
                    hyperparameters=job.requested_hyperparameters,
                    suffix=job.suffix or None,
                    seed=job.seed,
                    metadata={METADATA_KEY: str(job.pk)},
                    integrations=job.integrations or None,
                ),
                marker=METADATA_KEY,
            )
    except (TransientProviderError, SoftTimeLimitExceeded) as exc:
        if isinstance(exc, SoftTimeLimitExceeded):
            # The provider hung past the task's soft limit: an attempt like a timeout. The
            # retry looks the job and the files up before creating anything again.
            exc = TransientProviderError(
                "The provider did not answer within the task's time limit "
                f"(PROVIDER_TASK_SOFT_TIME_LIMIT={settings.PROVIDER_TASK_SOFT_TIME_LIMIT} s)."
            )
        attempts = job.poll_failures + 1
        if attempts >= MAX_LAUNCH_ATTEMPTS:
            Job.objects.filter(pk=job.pk).update(
                status=Job.Status.LAUNCH_FAILED,
                launch_error=str(exc)[:1000],
                poll_failures=attempts,
            )
            return job
        Job.objects.filter(pk=job.pk).update(poll_failures=attempts, launch_error=str(exc)[:1000])
        raise exc
    except ProviderError as exc:
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.LAUNCH_FAILED, launch_error=str(exc)[:1000]
        )
        return job
    _adopt(job, info)
    job.refresh_from_db()
    return job


def _adopt(job: Job, info: JobInfo) -> None:
    """Record the provider job as this launch's; if another row records it already (an
    import that got there first), the launch ends as failed and says where the job is."""
    try:
        with transaction.atomic():
            Job.objects.filter(pk=job.pk).update(
                provider_job_id=info.id,
                status=info.status,
                provider_status=(info.provider_status or "")[:64],
                model=info.model or job.base_model,
                training_file_id=info.training_file or "",
                validation_file_id=info.validation_file or "",
                seed=info.seed if info.seed is not None else job.seed,
                provider_created_at=timezone.now(),
                next_poll_at=timezone.now(),
                poll_failures=0,
                launch_error="",
            )
    except IntegrityError:
        other = (
            Job.objects.filter(connection=job.connection, provider_job_id=info.id)
            .exclude(pk=job.pk)
            .first()
        )
        where = f"Tuneboard job {other.pk}" if other is not None else "another Tuneboard job"
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.LAUNCH_FAILED,
            launch_error=f"The provider job {info.id} made by this launch is recorded as {where}.",
        )


# --- Controls ---------------------------------------------------------------------------------
#
# A page asks (``job_control_request``: checks, records who asked, queues a task) and a worker
# does it (``job_control_run``): no web request waits on the provider. The run page follows the
# control through its live JSON until it is done or failed.

CONTROL_TASK = "jobs.tasks.job_control_task"
# What each action is called in the audit log (the names the log has always used).
CONTROL_AUDIT_ACTIONS = {
    JobControl.Action.CANCEL: "job_cancel",
    JobControl.Action.PAUSE: "job_pause",
    JobControl.Action.RESUME: "job_resume",
    JobControl.Action.SYNC: "job_sync",
    JobControl.Action.DELETE_MODEL: "model_delete_requested",
}
_PAST = {
    JobControl.Action.CANCEL: "cancelled",
    JobControl.Action.PAUSE: "paused",
    JobControl.Action.RESUME: "resumed",
    JobControl.Action.SYNC: "synced",
}
_PROVIDER_CALLS = {
    JobControl.Action.CANCEL: "cancel_job",
    JobControl.Action.PAUSE: "pause_job",
    JobControl.Action.RESUME: "resume_job",
}


def _control_lease() -> timedelta:
    """How long a control may run before another task may take it over: no task lives longer
    than its hard time limit, so its owner is dead by then."""
    return timedelta(seconds=settings.PROVIDER_TASK_TIME_LIMIT)


def _control_problem(job: Job, action: str) -> str:
    if action == JobControl.Action.DELETE_MODEL:
        if not job.fine_tuned_model:
            return "This job has no fine-tuned model."
        problem = selectors.connection_problem(job.connection)
        return f"{problem}: the model cannot be deleted from here." if problem else ""
    if not job.provider_job_id:
        return "This job has not reached the provider yet."
    problem = selectors.connection_problem(job.connection)
    return f"{problem}: the job cannot be {_PAST[JobControl.Action(action)]}." if problem else ""


def job_control_request(*, job: Job, user: AbstractBaseUser | None, action: str) -> JobControl:
    """Ask for a provider action on the job: recorded with who asked, done by a task. The same
    action asked again while the first is still under way is that first request (a double
    click pays the provider once). Raises ``JobError`` when the action cannot apply."""
    if action not in JobControl.Action.values:
        raise JobError(f"“{action}” is not a job control.")
    problem = _control_problem(job, action)
    if problem:
        raise JobError(problem)
    with transaction.atomic():
        # Serialises requests for one job, so two clicks cannot both find nothing pending.
        Job.objects.select_for_update().filter(pk=job.pk).values("pk").first()
        pending = (
            JobControl.objects.filter(
                job=job,
                action=action,
                state__in=JobControl.PENDING,
                requested_at__gte=timezone.now() - _control_lease(),
            )
            .order_by("-requested_at")
            .first()
        )
        if pending is not None:
            return pending
        control = JobControl.objects.create(
            job=job,
            action=action,
            requested_by=user if user is not None and user.is_authenticated else None,
        )
        audit_record(
            actor=user,
            action=CONTROL_AUDIT_ACTIONS[JobControl.Action(action)],
            obj=job,
            detail={"control": control.pk},
        )
        queue.enqueue(CONTROL_TASK, control.pk)
    return control


def job_control_run(*, control_id: int) -> JobControl | None:
    """Do a requested control, once: a task delivered twice, or again after its worker died,
    finds it done (or running within its lease) and does nothing. Every outcome, an error
    included, is recorded on the control for the run page."""
    started = timezone.now()
    claimed = (
        JobControl.objects.filter(pk=control_id)
        .filter(
            Q(state=JobControl.State.QUEUED)
            | Q(state=JobControl.State.RUNNING, started_at__lt=started - _control_lease())
        )
        .update(state=JobControl.State.RUNNING, started_at=started)
    )
    if not claimed:
        return None
    control = JobControl.objects.select_related("job__connection", "requested_by").get(
        pk=control_id
    )
    state = JobControl.State.DONE
    try:
        outcome = _control_perform(control)
    except JobError as exc:
        state, outcome = JobControl.State.FAILED, exc.message
    except SoftTimeLimitExceeded:
        # Said, not raised: the user sees it on the run page and may ask again.
        state, outcome = (
            JobControl.State.FAILED,
            "The provider did not answer within the task's time limit "
            f"(PROVIDER_TASK_SOFT_TIME_LIMIT={settings.PROVIDER_TASK_SOFT_TIME_LIMIT} s); "
            "the next sync shows where the job stands.",
        )
    except Exception as exc:
        _control_finish(control, started, JobControl.State.FAILED, f"Unexpected error: {exc}")
        raise
    return _control_finish(control, started, state, outcome)


def _control_finish(control: JobControl, started: Any, state: str, outcome: str) -> JobControl:
    # Only the claim that started it may finish it (a takeover after the lease owns it now).
    JobControl.objects.filter(
        pk=control.pk, state=JobControl.State.RUNNING, started_at=started
    ).update(state=state, outcome=outcome[:2000], finished_at=timezone.now())
    control.refresh_from_db()
    return control


def _control_perform(control: JobControl) -> str:
    """The provider call of one control and what to tell the user; ``JobError`` when refused."""
    job, action = control.job, JobControl.Action(control.action)
    problem = _control_problem(job, action)  # the job or its connection may have changed
    if problem:
        raise JobError(problem)
    if action == JobControl.Action.SYNC:
        return _sync_now(job)
    if action == JobControl.Action.DELETE_MODEL:
        return _delete_model(job, control.requested_by)
    provider = provider_for_connection(job.connection)
    try:
        info = getattr(provider, _PROVIDER_CALLS[action])(job.provider_job_id)
    except ProviderError as exc:
        verb = control.get_action_display().lower()
        raise JobError(f"The provider refused to {verb} this job: {exc}") from exc
    # The answer carries the new status; store it even if a running sync holds the job lock.
    Job.objects.filter(pk=job.pk).update(status=info.status, next_poll_at=timezone.now())
    job_sync(job_id=job.pk)
    job.refresh_from_db()
    done = _PAST[action].capitalize()
    return f"{done} at the provider; the job is now {job.get_status_display().lower()}."


def _sync_now(job: Job) -> str:
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    outcome = job_sync(job_id=job.pk)
    if outcome.error:
        raise JobError(f"The sync failed: {outcome.error}")
    if not outcome.ran:
        return "A sync was already running for this job; it is up to date now or shortly."
    count = outcome.new_events
    return f"Synced with the provider: {count} new event{'s' if count != 1 else ''}."


def _delete_model(job: Job, user: AbstractBaseUser | None) -> str:
    provider = provider_for_connection(job.connection)
    try:
        provider.delete_model(job.fine_tuned_model)
    except NotFoundError as exc:
        # Already gone at the provider is the outcome the user asked for; but only the
        # provider's "no such model" says so, not any 404 (an odd id can reach another route).
        if (exc.code or "").replace("_", "").lower() != "modelnotfound":
            raise JobError(f"The provider refused to delete the model: {exc}") from exc
    except ProviderError as exc:
        raise JobError(f"The provider refused to delete the model: {exc}") from exc
    Job.objects.filter(pk=job.pk).update(model_deleted_at=timezone.now())
    audit_record(
        actor=user, action="model_deleted", obj=job, detail={"model": job.fine_tuned_model}
    )
    return f"Deleted {job.fine_tuned_model} at the provider."


def job_set_archived(*, job: Job, user: AbstractBaseUser | None, archived: bool) -> Job:
    Job.objects.filter(pk=job.pk).update(archived=archived)
    audit_record(actor=user, action="job_archived" if archived else "job_unarchived", obj=job)
    job.archived = archived
    return job


def job_annotate(
    *,
    job: Job,
    user: AbstractBaseUser | None,
    name: str | None = None,
    notes: str | None = None,
    tags: list[str] | None = None,
) -> Job:
    fields = []
    if name is not None:
        job.name = name[:200]
        fields.append("name")
    if notes is not None:
        job.notes = notes
        fields.append("notes")
    if tags is not None:
        job.tags = sorted({t.strip()[:40] for t in tags if t.strip()})
        fields.append("tags")
    if fields:
        job.save(update_fields=fields)
        audit_record(actor=user, action="job_annotated", obj=job, detail={"fields": fields})
    return job


def checkpoint_mark_deleted(*, model_name: str, connection_id: int) -> int:
    """The provider answered 404 for this checkpoint model: it was deleted there (pruned or
    its model deleted), so it is shown as such and no longer offered."""
    return Checkpoint.objects.filter(
        model_name=model_name, job__connection_id=connection_id, deleted_at__isnull=True
    ).update(deleted_at=timezone.now())


# At most this many models are looked up per call (an evaluation has at most eight columns),
# a few at a time: the lookups are one short attempt each (interactive timeouts, no retry).
CHECK_MAX_MODELS = 8
CHECK_CONCURRENCY = 4


def checkpoints_check_served(
    *, connection: ProviderConnection, model_names: Sequence[str]
) -> set[str]:
    """Ask the provider whether these checkpoint models are still served (``GET /models/{id}``)
    before anything is sent to them: a finished job is no longer synced, so a checkpoint
    deleted (or pruned) since is only seen this way. Those answered 404 are marked deleted and
    returned. Any other failure (timeout, 5xx, 403) proves nothing and leaves the model to the
    calls that use it. No transaction is open during the lookups."""
    names = list(dict.fromkeys(n for n in model_names if n))[:CHECK_MAX_MODELS]
    # Azure serves checkpoints through deployments, not by their model id: a 404 for the id
    # there does not mean the checkpoint is gone.
    if not names or connection.kind == ProviderConnection.Kind.AZURE_OPENAI:
        return set()
    provider = provider_for_connection(connection, interactive=True)

    def gone(name: str) -> bool:
        try:
            provider.retrieve_model(name)
        except NotFoundError:
            return True
        except ProviderError as exc:
            log.info("checkpoint %s on connection %s not checked: %s", name, connection.pk, exc)
        return False

    with ThreadPoolExecutor(max_workers=min(CHECK_CONCURRENCY, len(names))) as pool:
        answers = list(pool.map(gone, names))
    deleted = {name for name, is_gone in zip(names, answers, strict=True) if is_gone}
    for name in deleted:
        checkpoint_mark_deleted(model_name=name, connection_id=connection.pk)
    return deleted


def job_checkpoints_check(*, job: Job) -> set[str]:
    """Before a finished job's checkpoints are offered ("Evaluate checkpoints"): it is no longer
    synced, so ask the provider about its newest checkpoints not known to be gone (a running
    job's sync notices them gone from its checkpoint list)."""
    if not job.is_terminal or not job.connection.usable:
        return set()
    names = job.checkpoints.filter(deleted_at__isnull=True).order_by("-step")
    return checkpoints_check_served(
        connection=job.connection,
        model_names=list(names.values_list("model_name", flat=True)[:CHECK_MAX_MODELS]),
    )

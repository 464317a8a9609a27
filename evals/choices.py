"""The models an evaluation or the playground can call: base models, fine-tuned models and
checkpoints, each through the connection that can serve it, named by a stable key.

Keys: ``base:<connection id>:<model>``, ``ft:<job id>``, ``ckpt:<checkpoint id>``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from core.params import whole_number
from datasets.models import BaseModel
from jobs.models import Checkpoint, Job, ProviderConnection
from jobs.selectors import connections_usable

MAX_RUNS_OFFERED = 200


@dataclass(frozen=True)
class ModelChoice:
    key: str
    label: str
    kind: str  # evals.models.EvalModel.Kind
    connection_id: int
    connection_name: str
    model_name: str
    job_id: uuid.UUID | None = None
    checkpoint_id: int | None = None
    step: int | None = None

    @property
    def group(self) -> str:
        return (
            f"{self.connection_name}: "
            + {
                "base": "base models",
                "fine_tuned": "fine-tuned models",
                "checkpoint": "checkpoints",
            }[self.kind]
        )


def _run_name(job: Job) -> str:
    return job.name or job.provider_job_id or str(job.pk)[:8]


def base_choice(connection: ProviderConnection, model: str) -> ModelChoice:
    return ModelChoice(
        key=f"base:{connection.pk}:{model}",
        label=model,
        kind="base",
        connection_id=connection.pk,
        connection_name=connection.name,
        model_name=model,
    )


def final_choice(job: Job) -> ModelChoice:
    return ModelChoice(
        key=f"ft:{job.pk}",
        label=f"{_run_name(job)} · final",
        kind="fine_tuned",
        connection_id=job.connection_id,
        connection_name=job.connection.name,
        model_name=job.fine_tuned_model,
        job_id=job.pk,
        step=job.total_steps,
    )


def checkpoint_choice(checkpoint: Checkpoint) -> ModelChoice:
    job = checkpoint.job
    return ModelChoice(
        key=f"ckpt:{checkpoint.pk}",
        label=f"{_run_name(job)} · step {checkpoint.step}",
        kind="checkpoint",
        connection_id=job.connection_id,
        connection_name=job.connection.name,
        model_name=checkpoint.model_name,
        job_id=job.pk,
        checkpoint_id=checkpoint.pk,
        step=checkpoint.step,
    )


def _servable_jobs() -> list[Job]:
    return list(
        Job.objects.filter(
            connection__in=connections_usable(),
            model_deleted_at__isnull=True,
        )
        .exclude(fine_tuned_model="")
        .select_related("connection")
        .order_by("-created_at")[:MAX_RUNS_OFFERED]
    )


def model_choices() -> list[ModelChoice]:
    """Every model that can be called now, grouped by connection: base models (the catalog's
    and those runs were trained from), then fine-tuned models, then their checkpoints."""
    today = timezone.localdate()
    catalog = [
        m.pk
        for m in BaseModel.objects.order_by("pk")
        if m.shutdown_on is None or m.shutdown_on > today
    ]
    jobs = _servable_jobs()
    checkpoints: dict[uuid.UUID, list[Checkpoint]] = {}
    for checkpoint in (
        Checkpoint.objects.filter(job__in=jobs, deleted_at__isnull=True)
        .select_related("job__connection")
        .order_by("step")
    ):
        checkpoints.setdefault(checkpoint.job_id, []).append(checkpoint)
    out: list[ModelChoice] = []
    for connection in connections_usable():
        trained_from = {j.model or j.base_model for j in jobs if j.connection_id == connection.pk}
        for model in sorted(set(catalog) | trained_from - {""}):
            out.append(base_choice(connection, model))
        mine = [j for j in jobs if j.connection_id == connection.pk]
        out.extend(final_choice(j) for j in mine)
        for job in mine:
            out.extend(checkpoint_choice(c) for c in checkpoints.get(job.pk, []))
    return out


def _offered_base(connection: ProviderConnection, model: str) -> bool:
    """Only the base models the form offers: the catalog's, or one a run was trained from."""
    if not model:
        return False
    if BaseModel.objects.filter(pk=model).exists():
        return True
    return (
        Job.objects.filter(connection=connection)
        .filter(Q(model=model) | Q(base_model=model))
        .exists()
    )


def choice_for_key(key: str) -> ModelChoice | None:
    """The choice a key names, if that model can still be called."""
    kind, _, rest = key.partition(":")
    usable = connections_usable()
    if kind == "base":
        pk, _, model = rest.partition(":")
        connection_id = whole_number(pk)
        connection = usable.filter(pk=connection_id).first() if connection_id else None
        if connection is None or not _offered_base(connection, model):
            return None
        return base_choice(connection, model)
    if kind == "ft":
        try:
            job_id = uuid.UUID(rest)
        except ValueError:
            return None
        job = (
            Job.objects.filter(pk=job_id, connection__in=usable, model_deleted_at__isnull=True)
            .exclude(fine_tuned_model="")
            .select_related("connection")
            .first()
        )
        return final_choice(job) if job else None
    if kind == "ckpt" and (checkpoint_id := whole_number(rest)) is not None:
        checkpoint = (
            Checkpoint.objects.filter(
                pk=checkpoint_id, job__connection__in=usable, deleted_at__isnull=True
            )
            .select_related("job__connection")
            .first()
        )
        return checkpoint_choice(checkpoint) if checkpoint else None
    return None


def run_choices(job: Job) -> list[ModelChoice]:
    """What "Evaluate checkpoints" starts from: the run's base model, every checkpoint the
    provider still serves (oldest first) and the final model — at most eight, keeping the latest checkpoints."""
    if not job.connection.usable:
        return []
    base = base_choice(job.connection, job.model or job.base_model)
    checkpoints = [
        checkpoint_choice(c)
        for c in job.checkpoints.filter(deleted_at__isnull=True)
        .select_related("job__connection")
        .order_by("step")
        if c.model_name and c.model_name != job.fine_tuned_model
    ]
    final = [final_choice(job)] if job.fine_tuned_model and job.model_deleted_at is None else []
    room = 8 - 1 - len(final)
    return [base, *checkpoints[-room:], *final]

"""Runs: read any run; create and report self-hosted ones."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from django.db.models import Prefetch
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from dashboard import curves
from dashboard.api.auth import require_write
from dashboard.api.schemas import (
    INT32_MAX,
    CheckpointIn,
    CheckpointOut,
    Directive,
    Error,
    EventOut,
    EventsIn,
    EventsOut,
    MetricsIn,
    MetricsOut,
    MetricsPage,
    PointOut,
    RunIn,
    RunOut,
    RunPage,
    StatusIn,
)
from dashboard.selectors_runs import RunFilters, filtered_jobs
from jobs import selfhosted
from jobs.models import METRIC_COLUMNS, Checkpoint, Guardrail, Job, JobEvent, MetricPoint
from jobs.providers import traits

router = Router(tags=["runs"])
READ = {401: Error, 404: Error}
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9000, 12, 31)
WRITE = {400: Error, 401: Error, 403: Error, 404: Error, 409: Error}


def run_out(job: Job) -> dict[str, Any]:
    error = job.error if isinstance(job.error, dict) else {}
    return {
        "id": str(job.pk),
        "url": reverse("jobs:detail", args=[job.pk]),
        "external_id": job.provider_job_id or "",
        "name": job.display_name,
        "status": job.status,
        "connection": job.connection.name,
        "provider": traits(job.connection.kind).label,
        "base_model": job.base_model,
        "method": job.method,
        "hyperparameters": curves.resolved_hyperparameters(job),
        "tags": [str(t) for t in job.tags] if isinstance(job.tags, list) else [],
        "training_dataset": job.training_dataset_id,
        "validation_dataset": job.validation_dataset_id,
        "total_steps": job.total_steps,
        "last_step": job.last_step,
        "final_train_loss": job.final_train_loss,
        "best_full_valid_loss": job.best_full_valid_loss,
        "best_full_valid_step": job.best_full_valid_step,
        "trained_tokens": job.trained_tokens,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "estimated_finish": job.estimated_finish,
        "error": str(error.get("message") or ""),
        "stop_requested": job.stop_requested_at is not None,
        "guardrails": [
            {
                "kind": g.kind,
                "params": g.params,
                "action": g.action,
                "enabled": g.enabled,
                "fired": None
                if not hasattr(g, "firing")
                else {
                    "step": g.firing.step,
                    "message": g.firing.message,
                    "at": g.firing.fired_at.isoformat(),
                    "outcome": g.firing.outcome,
                },
            }
            for g in sorted(job.guardrails.all(), key=lambda g: g.pk)
        ],
    }


WITH_GUARDRAILS = Prefetch("guardrails", queryset=Guardrail.objects.select_related("firing"))


def _job(run_id: UUID) -> Job:
    return get_object_or_404(
        Job.objects.select_related("connection").prefetch_related(WITH_GUARDRAILS), pk=run_id
    )


class RunQuery(Schema):
    q: str = Field("", max_length=200, description="Text in the name, notes, ids or models.")
    status: str = Field("", max_length=64)
    connection: int | None = Field(None, ge=1, le=2**63 - 1)
    base_model: str = Field("", max_length=300)
    dataset: int | None = Field(None, ge=1, le=2**63 - 1)
    tag: str = Field("", max_length=50)
    creator: int | None = Field(None, ge=1, le=2**63 - 1, description="The creator's user id.")
    created_from: date | None = Field(
        None, ge=FIRST_DAY, le=LAST_DAY, description="Created on or after this day."
    )
    created_to: date | None = Field(
        None, ge=FIRST_DAY, le=LAST_DAY, description="Created on or before this day."
    )
    archived: str = Field("", pattern="^(|include|only)$")
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10**9)


@router.get("/runs", response={200: RunPage, **READ}, summary="List runs (newest first)")
def runs_list(request: HttpRequest, query: Query[RunQuery]) -> dict[str, Any]:
    filters = RunFilters(
        q=query.q.replace("\x00", ""),
        status=query.status,
        connection=query.connection,
        base_model=query.base_model,
        dataset=query.dataset,
        tag=query.tag,
        creator=query.creator,
        created_from=query.created_from,
        created_to=query.created_to,
        archived=query.archived,
    )
    jobs = (
        filtered_jobs(filters)
        .select_related("connection")
        .prefetch_related(WITH_GUARDRAILS)
        .order_by("-created_at", "-id")
    )
    page = jobs[query.offset : query.offset + query.limit]
    return {"count": jobs.count(), "results": [run_out(job) for job in page]}


@router.post("/runs", response={200: RunOut, 201: RunOut, **WRITE}, summary="Create a run")
def runs_create(request: HttpRequest, body: RunIn) -> Status[dict[str, Any]]:
    caller = require_write(request)
    spec = selfhosted.RunSpec(
        external_id=body.external_id.strip(),
        name=body.name,
        notes=body.notes,
        base_model=body.base_model,
        method=body.method,
        hyperparameters=body.hyperparameters,
        training_dataset=body.training_dataset,
        validation_dataset=body.validation_dataset,
        tags=tuple(body.tags),
        total_steps=body.total_steps,
        epochs=body.epochs,
        connection=body.connection.strip(),
        guardrails=None
        if body.guardrails is None
        else tuple(g.model_dump() for g in body.guardrails),
    )
    job, created = selfhosted.selfhosted_run_create(spec=spec, actor=caller.user)
    return Status(201 if created else 200, run_out(_job(job.pk)))


@router.get("/runs/{run_id}", response={200: RunOut, **READ}, summary="One run")
def runs_detail(request: HttpRequest, run_id: UUID) -> dict[str, Any]:
    return run_out(_job(run_id))


class MetricsQuery(Schema):
    series: list[str] = Field(
        default_factory=list, description="Series to return (repeat the parameter); all if none."
    )
    after_step: int = Field(-1, ge=-1, le=INT32_MAX)
    limit: int = Field(1000, ge=1, le=10_000)


@router.get(
    "/runs/{run_id}/metrics", response={200: MetricsPage, **READ}, summary="A run's metrics"
)
def runs_metrics(request: HttpRequest, run_id: UUID, query: Query[MetricsQuery]) -> dict[str, Any]:
    job = _job(run_id)
    rows = list(
        MetricPoint.objects.filter(job=job, step__gt=query.after_step)
        .order_by("step")
        .values("step", *METRIC_COLUMNS, "extra")[: query.limit]
    )
    wanted = set(query.series)
    points = []
    for row in rows:
        values = {c: row[c] for c in METRIC_COLUMNS if row[c] is not None}
        extra = row["extra"] if isinstance(row["extra"], dict) else {}
        values.update({k: v for k, v in extra.items() if isinstance(v, int | float)})
        if wanted:
            values = {k: v for k, v in values.items() if k in wanted}
        points.append(PointOut(step=row["step"], values=values))
    more = len(rows) == query.limit
    return {"points": points, "next_after_step": rows[-1]["step"] if more else None}


def _directive(job: Job) -> Directive:
    """Whether the training script should stop (a guardrail fired, or someone asked)."""
    stop = Job.objects.filter(pk=job.pk, stop_requested_at__isnull=False).exists()
    return Directive(stop=stop)


@router.post(
    "/runs/{run_id}/metrics",
    response={200: MetricsOut, **WRITE},
    summary="Append a batch of metric points (idempotent by run, series and step)",
)
def runs_metrics_append(request: HttpRequest, run_id: UUID, body: MetricsIn) -> dict[str, Any]:
    require_write(request)
    job = _job(run_id)
    done = selfhosted.run_metrics_append(
        job=job, points=[(p.step, dict(p.values)) for p in body.points]
    )
    return {"points": done.points, "dropped": done.dropped, "control": _directive(job)}


def checkpoint_out(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "step": checkpoint.step,
        "uri": checkpoint.model_name,
        "metrics": checkpoint.metrics if isinstance(checkpoint.metrics, dict) else {},
        "created_at": checkpoint.created_at,
        "deleted": checkpoint.deleted_at is not None,
    }


@router.get(
    "/runs/{run_id}/checkpoints",
    response={200: list[CheckpointOut], **READ},
    summary="A run's checkpoints",
)
def runs_checkpoints(request: HttpRequest, run_id: UUID) -> list[dict[str, Any]]:
    job = _job(run_id)
    return [checkpoint_out(c) for c in Checkpoint.objects.filter(job=job).order_by("step")]


@router.post(
    "/runs/{run_id}/checkpoints",
    response={200: CheckpointOut, 201: CheckpointOut, **WRITE},
    summary="Report a saved checkpoint (its location; no weights are uploaded)",
)
def runs_checkpoint_report(
    request: HttpRequest, run_id: UUID, body: CheckpointIn
) -> Status[dict[str, Any]]:
    require_write(request)
    checkpoint, created = selfhosted.run_checkpoint_report(
        job=_job(run_id), step=body.step, uri=body.uri, values=dict(body.metrics)
    )
    return Status(201 if created else 200, checkpoint_out(checkpoint))


class EventsQuery(Schema):
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=10**9)


@router.get(
    "/runs/{run_id}/events", response={200: list[EventOut], **READ}, summary="Events, newest first"
)
def runs_events(request: HttpRequest, run_id: UUID, query: Query[EventsQuery]) -> list[Any]:
    job = _job(run_id)
    events = JobEvent.objects.filter(job=job).order_by("-created_at", "-id")
    return [
        {
            "id": e.provider_event_id,
            "created_at": e.created_at,
            "level": e.level,
            "type": e.type,
            "message": e.message,
            "data": e.data if isinstance(e.data, dict) else {},
        }
        for e in events[query.offset : query.offset + query.limit]
    ]


@router.post("/runs/{run_id}/events", response={200: EventsOut, **WRITE}, summary="Append events")
def runs_events_append(request: HttpRequest, run_id: UUID, body: EventsIn) -> dict[str, Any]:
    require_write(request)
    job = _job(run_id)
    created = selfhosted.run_events_append(
        job=job,
        events=[
            selfhosted.EventReport(
                message=e.message, level=e.level, id=e.id, created_at=e.created_at, data=e.data
            )
            for e in body.events
        ],
    )
    return {"created": created, "control": _directive(job)}


@router.post(
    "/runs/{run_id}/status", response={200: RunOut, **WRITE}, summary="Report the run's status"
)
def runs_status(request: HttpRequest, run_id: UUID, body: StatusIn) -> dict[str, Any]:
    require_write(request)
    job = selfhosted.run_status_report(
        job=_job(run_id), status=body.status, message=body.message, total_steps=body.total_steps
    )
    return run_out(_job(job.pk))

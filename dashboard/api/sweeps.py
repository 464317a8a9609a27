"""Sweeps: read them, plan and start one, cancel one — the sweep page's rules, as JSON.

A sweep is planned and started through the page's own form (``jobs.sweep_forms.SweepForm``),
so the API refuses exactly what the page refuses, with the same messages; its fields are
named as in the request body ("parameters.n_epochs" for the page's epochs field)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field, StringConstraints

from dashboard.api.auth import require_write
from dashboard.api.schemas import INT32_MAX, DatasetId, Error, GuardrailIn
from jobs import selectors
from jobs.models import Sweep, SweepRun
from jobs.providers import traits
from jobs.services import JobError, LaunchRejected
from jobs.sweep_forms import PARAMETER_PREFIX, SweepForm, sweep_connections, sweep_parameters
from jobs.sweep_plans import MAX_CONCURRENCY, Plan, SweepRequest, sweep_plan
from jobs.sweep_space import MAX_RUNS, MAX_SEED, RANGE_SEPARATOR
from jobs.sweeps import sweep_cancel, sweep_create

router = Router(tags=["sweeps"])
READ = {401: Error, 404: Error}
WRITE = {400: Error, 401: Error, 403: Error, 404: Error, 409: Error}

Choice = str | int | float
Name = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class RangeIn(Schema):
    """Random search only: a number drawn from ``low`` to ``high`` (over a factor of ten or
    more, log-uniformly)."""

    low: float
    high: float


class SweepIn(Schema):
    name: str = Field("", max_length=150)
    connection: str = Field(max_length=100, description="A hosted connection's name.")
    training_dataset: DatasetId
    validation_dataset: DatasetId | None = None
    method: Literal["supervised", "dpo"] = "supervised"
    base_models: list[Name] = Field(min_length=1, max_length=MAX_RUNS)
    seeds: list[Seed] = Field(
        default_factory=list, max_length=MAX_RUNS, description="Empty: the provider's."
    )
    parameters: dict[
        Annotated[str, StringConstraints(max_length=64)],
        Annotated[list[Choice], Field(max_length=MAX_RUNS)] | RangeIn,
    ] = Field(
        default_factory=dict,
        description="The connection's parameters (GET /sweeps/parameters) → the values to "
        "try; a range in random mode. A parameter left out keeps its default.",
    )
    mode: Literal["grid", "random"] = "grid"
    samples: int | None = Field(None, ge=1, le=MAX_RUNS, description="Random mode: runs drawn.")
    sample_seed: int = Field(0, ge=0, le=INT32_MAX)
    budget_usd: Decimal = Field(gt=0, max_digits=12, decimal_places=2)
    concurrency: int | None = Field(
        None, ge=1, le=MAX_CONCURRENCY, description="Runs at a time; none: the provider's."
    )
    guardrails: list[GuardrailIn] | None = Field(
        None, max_length=5, description="Rules every run gets; none given: the connection's."
    )


class PlannedRunOut(Schema):
    index: int
    base_model: str
    hyperparameters: dict[str, Any]
    seed: int | None
    n_epochs: int | None
    billed_tokens: int | None
    cost_usd: float | None
    problems: list[str]


class PlanOut(Schema):
    startable: bool
    total_usd: float | None
    budget_usd: float
    concurrency: int
    runs: list[PlannedRunOut]
    errors: list[dict[str, str]] = Field(description="What refuses the sweep as a whole.")


class SweepRunOut(Schema):
    index: int
    state: str = Field(description="planned, launched or skipped.")
    skip_reason: str
    base_model: str
    hyperparameters: dict[str, Any]
    seed: int | None
    planned_cost_usd: float
    spend_usd: float = Field(description="Its cost once final, else the planned cost.")
    run: str | None = Field(description="The run's id once launched.")
    status: str | None
    best_full_valid_loss: float | None
    best_full_valid_step: int | None


class SweepOut(Schema):
    id: int
    url: str
    name: str
    status: str
    status_message: str
    connection: str
    method: str
    mode: str
    training_dataset: int
    validation_dataset: int | None
    space: dict[str, Any]
    samples: int | None
    sample_seed: int
    budget_usd: float
    planned_cost_usd: float
    spent_usd: float = Field(description="The launched runs' spend.")
    concurrency: int
    guardrails: list[dict[str, Any]] | None
    created_by: str | None
    created_at: datetime
    finished_at: datetime | None
    best_run: str | None = Field(description="The run with the lowest full-validation loss.")
    runs: list[SweepRunOut]


class SweepPage(Schema):
    count: int
    results: list[SweepOut]


class ParameterOut(Schema):
    name: str
    label: str
    kind: Literal["int", "float", "choice"]
    help: str
    low: float | None
    high: float | None
    choices: list[str]
    default: int | float | str | None = Field(description="None: the provider chooses.")


class ConnectionParametersOut(Schema):
    connection: str
    provider: str
    method: str
    active_jobs: int = Field(description="The default runs at a time.")
    parameters: list[ParameterOut]


class ParametersQuery(Schema):
    method: Literal["supervised", "dpo"] = "supervised"


class SweepQuery(Schema):
    status: str = Field("", max_length=20)
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10**9)


# --- reading -------------------------------------------------------------------------------


def _sweeps() -> QuerySet[Sweep]:
    runs = SweepRun.objects.select_related("job").order_by("index")
    return Sweep.objects.select_related("connection", "created_by").prefetch_related(
        Prefetch("runs", queryset=runs)
    )


def _run_out(run: SweepRun) -> dict[str, Any]:
    job = run.job
    return {
        "index": run.index,
        "state": run.state,
        "skip_reason": run.skip_reason,
        "base_model": run.base_model,
        "hyperparameters": run.hyperparameters,
        "seed": run.seed,
        "planned_cost_usd": float(run.planned_cost_usd),
        "spend_usd": float(run.spend),
        "run": str(job.pk) if job else None,
        "status": job.status if job else None,
        "best_full_valid_loss": job.best_full_valid_loss if job else None,
        "best_full_valid_step": job.best_full_valid_step if job else None,
    }


def sweep_out(sweep: Sweep) -> dict[str, Any]:
    runs = list(sweep.runs.all())
    launched = [run for run in runs if run.job is not None]
    scored = [r.job for r in launched if r.job and r.job.best_full_valid_loss is not None]
    best = min(scored, key=lambda job: job.best_full_valid_loss or 0.0) if scored else None
    return {
        "id": sweep.pk,
        "url": reverse("sweep_detail", kwargs={"pk": sweep.pk}),
        "name": sweep.name,
        "status": sweep.status,
        "status_message": sweep.status_message,
        "connection": sweep.connection.name,
        "method": sweep.method,
        "mode": sweep.mode,
        "training_dataset": sweep.training_dataset_id,
        "validation_dataset": sweep.validation_dataset_id,
        "space": sweep.space,
        "samples": sweep.samples,
        "sample_seed": sweep.sample_seed,
        "budget_usd": float(sweep.budget_usd),
        "planned_cost_usd": float(sweep.planned_cost_usd),
        "spent_usd": float(sum((run.spend for run in launched), Decimal(0))),
        "concurrency": sweep.concurrency,
        "guardrails": sweep.guardrails,
        "created_by": sweep.created_by.get_username() if sweep.created_by else None,
        "created_at": sweep.created_at,
        "finished_at": sweep.finished_at,
        "best_run": str(best.pk) if best else None,
        "runs": [_run_out(run) for run in runs],
    }


@router.get("/sweeps", response={200: SweepPage, **READ}, summary="List sweeps (newest first)")
def sweeps_list(request: HttpRequest, query: Query[SweepQuery]) -> dict[str, Any]:
    sweeps = _sweeps().order_by("-created_at", "-id")
    if query.status:
        sweeps = sweeps.filter(status=query.status)
    page = sweeps[query.offset : query.offset + query.limit]
    return {"count": sweeps.count(), "results": [sweep_out(s) for s in page]}


@router.get("/sweeps/{int:sweep_id}", response={200: SweepOut, **READ}, summary="One sweep")
def sweeps_detail(request: HttpRequest, sweep_id: int) -> dict[str, Any]:
    return sweep_out(get_object_or_404(_sweeps(), pk=sweep_id))


@router.get(
    "/sweeps/parameters",
    response={200: list[ConnectionParametersOut], **READ},
    summary="What a sweep may vary, per hosted connection",
)
def sweeps_parameters(request: HttpRequest, query: Query[ParametersQuery]) -> list[Any]:
    out = []
    for connection in sweep_connections(selectors.launch_options()):
        kind = traits(connection.kind)
        declared = sweep_parameters(kind=connection.kind, method=query.method)
        out.append(
            {
                "connection": connection.name,
                "provider": kind.label,
                "method": query.method,
                "active_jobs": kind.active_jobs,
                "parameters": [
                    {
                        "name": p.name,
                        "label": p.label,
                        "kind": p.kind,
                        "help": p.help,
                        "low": p.low,
                        "high": p.high,
                        "choices": list(p.choices),
                        "default": p.default,
                    }
                    for p in declared
                ],
            }
        )
    return out


# --- planning and starting -----------------------------------------------------------------


def _body_field(form_field: str | None) -> str:
    """The request body's name for a field of the sweep form (the same, but for these)."""
    name = form_field or ""
    if name.startswith(PARAMETER_PREFIX):
        return "parameters." + name[len(PARAMETER_PREFIX) :]
    if name.startswith("guard_"):
        return "guardrails"
    return "" if name == "__all__" else name


def _text(values: list[Choice] | RangeIn) -> str:
    if isinstance(values, RangeIn):
        return f"{values.low!r}{RANGE_SEPARATOR}{values.high!r}"
    return ", ".join(str(value) for value in values)


def _refused(errors: list[dict[str, str]]) -> LaunchRejected:
    return LaunchRejected([JobError(e["message"], field=e["field"] or None) for e in errors])


def _sweep_request(body: SweepIn) -> SweepRequest:
    """The body read by the sweep page's form: refused as the page refuses it."""
    options = selectors.launch_options()
    connection = next(
        (c for c in sweep_connections(options) if c.name == body.connection.strip()), None
    )
    if connection is None:
        raise _refused([{"field": "connection", "message": "No hosted connection has this name."}])
    data: dict[str, Any] = {
        "connection": str(connection.pk),
        "name": body.name,
        "training_dataset": str(body.training_dataset),
        "validation_dataset": str(body.validation_dataset or ""),
        "method": body.method,
        "base_models": list(body.base_models),
        "mode": body.mode,
        "samples": "" if body.samples is None else str(body.samples),
        "sample_seed": str(body.sample_seed),
        "seeds": ", ".join(str(seed) for seed in body.seeds),
        "budget_usd": str(body.budget_usd),
        "concurrency": "" if body.concurrency is None else str(body.concurrency),
    }
    for name, values in body.parameters.items():
        data[PARAMETER_PREFIX + name] = _text(values)
    form = SweepForm(data, options=options)
    known = {parameter.name for parameter in form.parameters}
    unknown = sorted(set(body.parameters) - known)
    if unknown:
        message = f"{connection.name} declares no such parameter for {body.method} (it has: "
        message += ", ".join(sorted(known)) + ")."
        raise _refused([{"field": f"parameters.{name}", "message": message} for name in unknown])
    if not form.is_valid():
        raise _refused(
            [
                {"field": _body_field(field), "message": str(message)}
                for field, messages in form.errors.items()
                for message in messages
            ]
        )
    chosen = form.sweep_request()
    rules = None if body.guardrails is None else tuple(g.model_dump() for g in body.guardrails)
    return dataclasses.replace(chosen, guardrails=rules)


def _problems(plan: Plan) -> list[dict[str, str]]:
    out = [{"field": p.field or "", "message": p.message} for p in plan.problems]
    out += [
        {"field": "", "message": f"Run {row.index}: {problem}"}
        for row in plan.rows
        for problem in row.problems
    ]
    return out


@router.post(
    "/sweeps/plan",
    response={200: PlanOut, **WRITE},
    summary="Plan a sweep: every run with its estimated cost, nothing started",
)
def sweeps_plan(request: HttpRequest, body: SweepIn) -> dict[str, Any]:
    require_write(request)
    plan = sweep_plan(request=_sweep_request(body))
    total = plan.total
    return {
        "startable": plan.startable,
        "total_usd": float(total) if total is not None else None,
        "budget_usd": float(plan.request.budget_usd),
        "concurrency": plan.concurrency,
        "runs": [
            {
                "index": row.index,
                "base_model": row.run.base_model,
                "hyperparameters": row.run.hyperparameters,
                "seed": row.run.seed,
                "n_epochs": row.n_epochs,
                "billed_tokens": row.billed_tokens,
                "cost_usd": float(row.cost) if row.cost is not None else None,
                "problems": row.problems,
            }
            for row in plan.rows
        ],
        "errors": [{"field": p.field or "", "message": p.message} for p in plan.problems],
    }


@router.post(
    "/sweeps", response={201: SweepOut, **WRITE}, summary="Plan and start a sweep (budgeted)"
)
def sweeps_create(request: HttpRequest, body: SweepIn) -> Status[dict[str, Any]]:
    caller = require_write(request)
    sweep_request = _sweep_request(body)
    plan = sweep_plan(request=sweep_request)
    try:
        sweep = sweep_create(request=sweep_request, user=caller.user, plan=plan)
    except LaunchRejected as exc:
        raise _refused(_problems(plan) or [{"field": "", "message": exc.message}]) from exc
    return Status(201, sweep_out(get_object_or_404(_sweeps(), pk=sweep.pk)))


@router.post(
    "/sweeps/{int:sweep_id}/cancel",
    response={200: SweepOut, **WRITE},
    summary="Cancel a sweep: launch nothing more, cancel every run under way",
)
def sweeps_cancel(request: HttpRequest, sweep_id: int) -> dict[str, Any]:
    caller = require_write(request)
    sweep = get_object_or_404(Sweep, pk=sweep_id)
    if not sweep_cancel(sweep=sweep, user=caller.user):
        raise HttpError(409, f"The sweep has ended ({sweep.get_status_display().lower()}).")
    return sweep_out(get_object_or_404(_sweeps(), pk=sweep_id))

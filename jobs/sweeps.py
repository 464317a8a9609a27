"""Writes for sweeps: make one from its plan, launch its runs a few at a time within its hard
budget, cancel it.

Launching is a claim: ``sweep_advance`` holds the sweep's row lock and, in one transaction,
records each job it launches (``jobs.services.job_launch``, whose task is sent on commit) and
links it to its planned run. A worker killed anywhere in it rolls everything back and the
redelivered task (or beat) starts over; one killed after the commit leaves queued launches
that the reaper sends again, and each launch creates its provider job exactly once. No
provider is called while the lock is held."""

from __future__ import annotations

from decimal import ROUND_UP, Decimal

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from core import queue
from core.services import audit_record
from datasets.models import Dataset
from jobs import notifications, selectors
from jobs.models import JobControl, Sweep, SweepRun
from jobs.services import JobError, LaunchRejected, job_control_request, job_launch
from jobs.sweep_plans import Plan, SweepRequest, launch_request, sweep_plan
from jobs.sweep_queue import ADVANCE_TASK
from jobs.sweep_space import PlannedRun, space_json

CENT = Decimal("0.0001")
JOB_HEAVY_FIELDS = ("requested_hyperparameters", "hyperparameters", "integrations", "error",
                    "result_files", "notes", "tags")  # fmt: skip


def _money(value: Decimal) -> Decimal:
    # Stored to 1/100 of a cent, rounded up: a planned cost is never under-counted.
    return value.quantize(CENT, rounding=ROUND_UP)


def sweep_create(
    *, request: SweepRequest, user: User | AnonymousUser | None, plan: Plan | None = None
) -> Sweep:
    """Record the sweep and its planned runs and start launching them, or raise
    ``LaunchRejected`` with everything that refuses it (a run the launch rules refuse, a
    cost that cannot be estimated, a plan over the budget). Refused, nothing is written."""
    plan = plan or sweep_plan(request=request)
    problems = list(plan.problems)
    for row in plan.rows:
        problems += [JobError(f"Run {row.index}: {p}") for p in row.problems]
    if not plan.rows and not problems:
        problems.append(JobError("The sweep plans no run."))
    if problems:
        raise LaunchRejected(problems)
    with transaction.atomic():
        sweep = Sweep.objects.create(
            name=request.name or f"Sweep of {request.training_dataset.name}",
            connection=request.connection,
            created_by=user if isinstance(user, User) else None,
            method=request.method,
            training_dataset=request.training_dataset,
            validation_dataset=request.validation_dataset,
            mode=request.mode,
            space=space_json(request.space),
            samples=request.samples,
            sample_seed=request.sample_seed,
            budget_usd=request.budget_usd,
            planned_cost_usd=_money(plan.total or Decimal(0)),
            concurrency=plan.concurrency,
            guardrails=list(request.guardrails) if request.guardrails is not None else None,
        )
        SweepRun.objects.bulk_create(
            SweepRun(
                sweep=sweep,
                index=row.index,
                base_model=row.run.base_model,
                hyperparameters=row.run.hyperparameters,
                seed=row.run.seed,
                billed_tokens=row.billed_tokens,
                planned_cost_usd=_money(row.cost or Decimal(0)),
            )
            for row in plan.rows
        )
        audit_record(
            actor=user,
            action="sweep_started",
            obj=sweep,
            detail={"runs": len(plan.rows), "budget_usd": str(request.budget_usd)},
        )
        queue.enqueue(ADVANCE_TASK, sweep.pk)
    return sweep


def _request_of(sweep: Sweep) -> SweepRequest:
    return SweepRequest(
        name=sweep.name,
        connection=sweep.connection,
        # A launch names its datasets by id; the launch rules read what they need of them.
        training_dataset=Dataset(pk=sweep.training_dataset_id),
        validation_dataset=(
            Dataset(pk=sweep.validation_dataset_id) if sweep.validation_dataset_id else None
        ),
        space={},
        budget_usd=sweep.budget_usd,
        method=sweep.method,
        guardrails=tuple(sweep.guardrails) if sweep.guardrails is not None else None,
    )


def _is_active(run: SweepRun) -> bool:
    return run.job is not None and not run.job.is_terminal


def _money_text(value: Decimal) -> str:
    return f"${value:,.2f}"


def _over_budget(sweep: Sweep, run: SweepRun, committed: Decimal, launched: int) -> str:
    return (
        f"Run {run.index} ({_money_text(run.planned_cost_usd)} planned) would bring the "
        f"sweep's spend to {_money_text(committed + run.planned_cost_usd)}, over its "
        f"{_money_text(sweep.budget_usd)} budget (spent and committed so far: "
        f"{_money_text(committed)} for {launched} launched run{'s' if launched != 1 else ''})."
    )


def _cancel_active(sweep: Sweep, active: list[SweepRun]) -> None:
    """Ask the provider to cancel each run still under way, once per run; a run not at the
    provider yet is cancelled when a later advance finds it there."""
    asked = set(
        JobControl.objects.filter(
            job__in=[r.job for r in active], action=JobControl.Action.CANCEL
        ).values_list("job_id", flat=True)
    )
    for run in active:
        job = run.job
        if job is None or job.pk in asked or not job.provider_job_id:
            continue
        try:
            job_control_request(job=job, user=sweep.created_by, action=JobControl.Action.CANCEL)
        except JobError:
            continue  # the connection went away: nothing more can be asked of it


def _launch_next(sweep: Sweep, run: SweepRun, *, active: int, committed: Decimal) -> bool:
    """Launch ``run`` (True), or record why it cannot be (False)."""
    planned = PlannedRun(
        base_model=run.base_model, seed=run.seed, hyperparameters=run.hyperparameters
    )
    request = launch_request(_request_of(sweep), planned, name=f"{sweep.name} #{run.index}")
    try:
        job = job_launch(request=request, user=sweep.created_by)
    except LaunchRejected as exc:
        run.state = SweepRun.State.SKIPPED
        run.skip_reason = f"Refused at launch: {exc}"[:2000]
        run.save(update_fields=["state", "skip_reason"])
        return False
    run.job = job
    run.state = SweepRun.State.LAUNCHED
    run.launched_at = timezone.now()
    run.active_at_launch = active + 1
    run.committed_at_launch = committed + run.planned_cost_usd
    run.save(
        update_fields=["job", "state", "launched_at", "active_at_launch", "committed_at_launch"]
    )
    return True


def _skip_rest(runs: list[SweepRun], reason: str) -> None:
    SweepRun.objects.filter(pk__in=[r.pk for r in runs]).update(
        state=SweepRun.State.SKIPPED, skip_reason=reason
    )


def sweep_advance(*, sweep_id: int) -> Sweep | None:
    """Launch the sweep's next runs while fewer than its concurrency are under way and the
    budget allows them; finish, stop or cancel it when nothing is left to do. Safe to run
    twice or at once: the sweep's row lock serialises advances."""
    with transaction.atomic():
        sweep = (
            Sweep.objects.select_for_update(of=("self",))
            .select_related("connection", "created_by")
            .filter(pk=sweep_id, status__in=Sweep.ACTIVE)
            .first()
        )
        if sweep is None:
            return None
        # Of a run's job only what the budget and the slots need (not its stored JSON).
        runs = list(
            sweep.runs.select_related("job")
            .defer(*(f"job__{name}" for name in JOB_HEAVY_FIELDS))
            .order_by("index")
        )
        active = [r for r in runs if r.state == SweepRun.State.LAUNCHED and _is_active(r)]
        if sweep.status == Sweep.Status.CANCELLING:
            _cancel_active(sweep, active)
            problem = selectors.connection_problem(sweep.connection)
            if not active or problem:
                # A connection that went away answers for no run again: nothing to wait for.
                note = f" {problem}: its runs could not all be cancelled." if active else ""
                _end(sweep, Sweep.Status.CANCELLED, sweep.status_message + note)
            return sweep
        launched = [r for r in runs if r.state == SweepRun.State.LAUNCHED]
        committed = sum((r.spend for r in launched), Decimal(0))
        waiting = [r for r in runs if r.state == SweepRun.State.PLANNED]
        message = ""
        while waiting and len(active) < sweep.concurrency:
            run = waiting[0]
            if committed + run.planned_cost_usd > sweep.budget_usd:
                message = _over_budget(sweep, run, committed, len(launched))
                if not active:
                    # Nothing under way can come in cheaper than planned: the budget is final.
                    _skip_rest(waiting, "The sweep's budget does not allow it.")
                    _end(sweep, Sweep.Status.STOPPED, f"Stopped: {message}")
                    return sweep
                message = f"Waiting for a running run to end: {message}"
                break
            waiting.pop(0)
            if _launch_next(sweep, run, active=len(active), committed=committed):
                committed += run.planned_cost_usd
                launched.append(run)
                active.append(run)
        if not waiting and not active:
            skipped = sum(1 for r in runs if r.state == SweepRun.State.SKIPPED)
            note = f"{skipped} run(s) could not be launched." if skipped else ""
            _end(sweep, Sweep.Status.FINISHED, note)
        elif message != sweep.status_message:
            sweep.status_message = message
            sweep.save(update_fields=["status_message"])
    return sweep


def _end(sweep: Sweep, status: str, message: str) -> None:
    sweep.status = status
    sweep.status_message = message
    sweep.finished_at = timezone.now()
    sweep.save(update_fields=["status", "status_message", "finished_at"])
    audit_record(actor=None, action=f"sweep_{status}", obj=sweep, detail={"message": message})
    notifications.notifications_for_sweep(sweep=sweep)


def sweep_cancel(*, sweep: Sweep, user: User | AnonymousUser | None) -> bool:
    """Launch nothing more and cancel every run under way (False: the sweep had ended)."""
    name = getattr(user, "username", "") or "someone"
    with transaction.atomic():
        changed = Sweep.objects.filter(pk=sweep.pk, status=Sweep.Status.RUNNING).update(
            status=Sweep.Status.CANCELLING, status_message=f"Cancelled by {name}."
        )
        if not changed:
            return False
        _skip_rest(
            list(sweep.runs.filter(state=SweepRun.State.PLANNED)),
            f"The sweep was cancelled by {name}.",
        )
        audit_record(actor=user, action="sweep_cancelled", obj=sweep, detail={})
        queue.enqueue(ADVANCE_TASK, sweep.pk)
    return True

"""Guardrails on running jobs: attached at launch from the connection's defaults, editable while
the job runs, evaluated after every sync and every batch a self-hosted run reports.

A firing is stored once (``GuardrailFiring`` is one-to-one with its guardrail), in the same
transaction as its event, its audit entry and its notifications, so a sync that runs again, or
two that overlap, fire nothing twice. The action follows: a self-hosted run is told to stop in
the API's next reply; pause and cancel go to the provider through a task
(``jobs.guardrail_actions``), like the run page's controls."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from core import queue
from core.services import audit_record
from datasets.models import BaseModel
from datasets.validation import rules as cost_rules
from jobs import guardrail_rules, notifications, selectors
from jobs.guardrail_rules import Observation
from jobs.models import Guardrail, GuardrailFiring, Job, JobEvent, MetricPoint, ProviderConnection
from jobs.providers import traits

ACT_TASK = "jobs.tasks.guardrail_act_task"
# Points read per evaluation: enough for any rule's window, bounded for runs of any length.
RECENT_POINTS = 400


class GuardrailError(Exception):
    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def clean_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule as stored ({kind, params, action}), checked; ``GuardrailError`` if it is not one."""
    kind = str(rule.get("kind", ""))
    action = str(rule.get("action", "notify"))
    if action not in guardrail_rules.ACTIONS:
        raise GuardrailError(f"“{action}” is not a guardrail action.", field="action")
    params = rule.get("params") or {}
    if not isinstance(params, dict):
        raise GuardrailError("A guardrail's parameters are a mapping.", field="params")
    try:
        clean = guardrail_rules.parameters(kind, params)
    except ValueError as exc:
        raise GuardrailError(str(exc), field="params") from exc
    return {"kind": kind, "params": clean, "action": action}


def action_problem(connection: ProviderConnection, action: str) -> str:
    """Why ``action`` cannot be done to jobs on ``connection`` ("" when it can)."""
    declared = traits(connection.kind)
    if action == Guardrail.Action.PAUSE and not declared.pauses:
        return f"{declared.label} jobs cannot be paused: choose cancel or notify."
    return ""


def guardrails_attach(
    *, job: Job, rules: Iterable[dict[str, Any]] | None = None
) -> list[Guardrail]:
    """The job's guardrails at launch: ``rules``, or its connection's defaults."""
    strict = rules is not None
    chosen = list(rules if rules is not None else job.connection.guardrail_defaults or [])
    made = []
    for rule in chosen:
        try:
            clean = clean_rule(rule)
            problem = action_problem(job.connection, clean["action"])
            if problem:
                raise GuardrailError(problem, field="action")
        except GuardrailError:
            if strict:
                raise
            continue  # a default that no longer applies (checked when it was saved)
        guardrail, _ = Guardrail.objects.update_or_create(
            job=job,
            kind=clean["kind"],
            defaults={"params": clean["params"], "action": clean["action"]},
        )
        made.append(guardrail)
    return made


def rules_problem(connection: ProviderConnection, rules: Iterable[dict[str, Any]]) -> str:
    """Why these rules cannot guard jobs on ``connection`` ("" when they can)."""
    kinds = set()
    for rule in rules:
        try:
            clean = clean_rule(rule)
        except GuardrailError as exc:
            return exc.message
        if clean["kind"] in kinds:
            return f"“{clean['kind']}” is given twice."
        kinds.add(clean["kind"])
        problem = action_problem(connection, clean["action"])
        if problem:
            return problem
    return ""


def guardrail_save(
    *, job: Job, kind: str, params: dict[str, Any], action: str, enabled: bool, actor: Any
) -> Guardrail:
    """Add or change one of a job's guardrails, while it runs too. One that already fired
    stays fired (its firing is history)."""
    clean = clean_rule({"kind": kind, "params": params, "action": action})
    problem = action_problem(job.connection, clean["action"])
    if problem:
        raise GuardrailError(problem, field="action")
    with transaction.atomic():
        guardrail, created = Guardrail.objects.update_or_create(
            job=job,
            kind=clean["kind"],
            defaults={"params": clean["params"], "action": clean["action"], "enabled": enabled},
        )
        audit_record(
            actor=actor,
            action="guardrail_added" if created else "guardrail_changed",
            obj=job,
            detail={"guardrail": guardrail.pk, **clean, "enabled": enabled},
        )
    return guardrail


# --- evaluation --------------------------------------------------------------------------------


def _recent(job: Job, column: str) -> list[tuple[int, float]]:
    rows = (
        MetricPoint.objects.filter(job=job, **{f"{column}__isnull": False})
        .order_by("-step")
        .values_list("step", column)[:RECENT_POINTS]
    )
    return [(int(step), float(value)) for step, value in reversed(rows)]


def _first_with_points(job: Job, columns: Sequence[str], enough: int) -> list[tuple[int, float]]:
    found: list[tuple[int, float]] = []
    for column in columns:
        found = _recent(job, column)
        if len(found) >= enough:
            return found
    return found


def _spend(job: Job) -> float | None:
    """Trained tokens × the model's training price. While a provider reports the trained
    tokens only at the end (OpenAI), the tokens trained so far are the planned ones × the
    share of the steps done."""
    model = selectors.catalog_model_for(job.model or job.base_model, selectors.catalog())
    price = model.training_price_per_1m if model is not None else None
    if model is None or price is None:
        return None
    tokens = job.trained_tokens or _tokens_so_far(job, model)
    if not tokens:
        return None
    cost = cost_rules.training_cost(tokens, price)
    return float(cost) if isinstance(cost, Decimal) else None


def _tokens_so_far(job: Job, model: BaseModel) -> int | None:
    epochs = (job.hyperparameters or {}).get("n_epochs")
    if not job.last_step or not job.total_steps or not isinstance(epochs, int):
        return None
    facts = selectors.training_facts(job.training_dataset_id, {model.training_context})
    per_epoch = facts.tokens_by_context.get(model.training_context) if facts else None
    if not per_epoch:
        return None
    planned = cost_rules.billed_tokens(tokens_per_epoch=per_epoch, n_epochs=epochs)
    return int(planned * min(1.0, job.last_step / job.total_steps))


def observation(job: Job, *, non_finite_steps: Sequence[int] = (), now: datetime) -> Observation:
    return Observation(
        train_loss=_recent(job, "train_loss"),
        # Full-validation loss once the run reports it (the whole validation set, not one
        # noisy batch); else the validation loss.
        valid_loss=_first_with_points(job, ("full_valid_loss", "valid_loss"), 1),
        accuracy=_first_with_points(
            job, ("full_valid_accuracy", "valid_accuracy", "train_accuracy"), 2
        ),
        non_finite_steps=tuple(non_finite_steps),
        spend_usd=_spend(job),
        running_seconds=(now - job.started_at).total_seconds() if job.started_at else None,
        last_step=job.last_step,
    )


def guardrails_evaluate(
    *, job_id: Any, non_finite_steps: Sequence[int] = ()
) -> list[GuardrailFiring]:
    """Evaluate the job's armed guardrails (enabled, not fired yet) on what is stored now."""
    armed = list(
        Guardrail.objects.filter(job_id=job_id, enabled=True, firing__isnull=True).order_by("pk")
    )
    if not armed:
        return []
    job = Job.objects.select_related("connection").get(pk=job_id)
    if job.is_terminal:
        return []
    now = timezone.now()
    seen = observation(job, non_finite_steps=non_finite_steps, now=now)
    fired = []
    for guardrail in armed:
        result = guardrail_rules.evaluate(guardrail.kind, guardrail.params, seen)
        if result is not None:
            firing = _fire(job, guardrail, result)
            if firing is not None:
                fired.append(firing)
    return fired


def _fire(job: Job, guardrail: Guardrail, result: guardrail_rules.Firing) -> GuardrailFiring | None:
    hosted = traits(job.connection.kind).hosted
    with transaction.atomic():
        firing, created = GuardrailFiring.objects.get_or_create(
            guardrail=guardrail,
            defaults={
                "job": job, "kind": guardrail.kind, "action": guardrail.action,
                "step": result.step, "message": result.message[:2000],
                "details": _plain(result.details),
            },
        )  # fmt: skip
        if not created:
            return None
        label = guardrail_rules.LABELS[guardrail.kind]
        verb = {"notify": "notifying", "pause": "pausing the job", "cancel": "cancelling the job"}
        JobEvent.objects.get_or_create(
            job=job,
            provider_event_id=f"guardrail-{guardrail.pk}",
            defaults={
                "created_at": timezone.now(),
                "level": "warn",
                "type": "guardrail",
                "message": f"Guardrail “{label}” fired, {verb[guardrail.action]}: {result.message}",
                "data": {"guardrail": guardrail.pk, "kind": guardrail.kind, "step": result.step},
            },
        )
        audit_record(
            actor=None,
            action="guardrail_fired",
            obj=job,
            detail={"guardrail": guardrail.pk, "kind": guardrail.kind, "step": result.step,
                    "action": guardrail.action},
        )  # fmt: skip
        notifications.notifications_for_guardrail(job=job, kind=guardrail.kind)
        if guardrail.action != Guardrail.Action.NOTIFY:
            if hosted:
                queue.enqueue(ACT_TASK, firing.pk)
            else:
                # A self-hosted run stops itself: its script hears it in the next API reply.
                Job.objects.filter(pk=job.pk, stop_requested_at__isnull=True).update(
                    stop_requested_at=timezone.now()
                )
                GuardrailFiring.objects.filter(pk=firing.pk).update(
                    outcome="The training script is told to stop at its next report."
                )
    return firing


def _plain(details: dict[str, Any]) -> dict[str, Any]:
    return {
        str(k): (v if isinstance(v, int | float | str | bool | list) or v is None else str(v))
        for k, v in details.items()
    }


def firings_for(job: Job) -> list[GuardrailFiring]:
    return list(GuardrailFiring.objects.filter(job=job).order_by("fired_at", "pk"))

"""A fired guardrail's pause or cancel, asked of the provider like the run page's controls
(``jobs.services.job_control_request``): one ``JobControl``, done by its own task, shown on
the run page (asked by nobody: the guardrail)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from jobs.models import GuardrailFiring
from jobs.services import JobError, job_control_request


def guardrail_act(*, firing_id: Any) -> str:
    """Ask for the firing's action, once. Nothing here waits on the provider (the control's
    task does), so one transaction covers the claim and the request: a worker killed midway
    leaves neither, and the redelivered task asks again."""
    with transaction.atomic():
        firing = (
            GuardrailFiring.objects.select_for_update()
            .select_related("job__connection")
            .get(pk=firing_id)
        )
        if firing.outcome:
            return firing.outcome
        try:
            control = job_control_request(job=firing.job, user=None, action=firing.action)
            firing.outcome = f"{control.get_action_display()} asked of the provider."
        except JobError as exc:
            firing.outcome = f"Could not {firing.action} the job: {exc.message}"
        firing.save(update_fields=["outcome"])
    return firing.outcome

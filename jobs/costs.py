"""What a job cost, one rule for every page (job page, runs list, compare, share links) and
for the runs list's sort (``Job.cost_usd``, kept by a database trigger that mirrors it).

A finished, failed or cancelled job is billed for the tokens it trained, and a job the
provider stopped before training any (failed file validation, cancelled while queued) cost
nothing: its planned cost is never shown as if it had been paid. A job still under way has
no cost yet (its page shows the planned one, labelled as planned)."""

from __future__ import annotations

from decimal import Decimal

from datasets.validation import rules

# Statuses whose cost is final. ``lost`` is not among them: the provider no longer answers
# for the job, so what it trained is unknown rather than nothing.
COST_FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "launch_failed"})
ZERO = Decimal(0)


def billed_tokens(*, status: str, trained_tokens: int | None) -> int | None:
    if trained_tokens is None and status in COST_FINAL_STATUSES:
        return 0
    return trained_tokens


def job_cost(
    *, status: str, trained_tokens: int | None, price_per_1m: Decimal | None
) -> Decimal | None:
    """Trained tokens × the training price; $0 when nothing was trained (whatever the price),
    None when unknown (under way with no count yet, or no price for the model)."""
    tokens = billed_tokens(status=status, trained_tokens=trained_tokens)
    if tokens is None:
        return None
    if tokens == 0:
        return ZERO
    return rules.training_cost(tokens, price_per_1m)

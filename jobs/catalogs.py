"""Provider-listed model catalogs and provider price quotes (services).

Adapters whose provider lists the models it fine-tunes (``traits.refreshes_catalog``) have
their list and each model's limits copied into ``datasets.BaseModel`` under their catalog
family, so the launch page offers them with their ranges and launch rules check them without
asking the provider. Adapters that quote prices (``traits.quotes_price``) get a
``PriceQuote`` per launch inputs: a task uploads the training file (the launch reuses it) and
asks. No database transaction is open across a provider call.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import leases, queue
from core.services import audit_record
from datasets.models import BaseModel, Dataset
from jobs.connections import provider_for_connection
from jobs.models import PriceQuote, ProviderConnection
from jobs.providers import JobSpec, ProviderError, TransientProviderError, traits
from jobs.services import JobError, provider_file_ensure

log = logging.getLogger(__name__)

CATALOG_TASK = "jobs.tasks.catalog_refresh_task"
QUOTE_TASK = "jobs.tasks.price_quote_task"
# A provider listing more models than this is cut (a misbehaving API must not flood the table).
MAX_LISTED_MODELS = 500
# Token counts of providers whose tokenizers we lack are made with this encoding.
ESTIMATE_ENCODING = BaseModel.Encoding.O200K
DEFAULT_CONTEXT = 8192
QUOTE_FRESH_FOR = timedelta(hours=24)
MAX_QUOTE_ATTEMPTS = 4


# --- Catalogs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogRefresh:
    listed: int
    unlisted: int  # rows of the family no longer listed (marked shut down today)
    skipped: list[str]  # names another family's catalog already holds


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _row(name: str, family: str, limits: dict[str, Any]) -> BaseModel:
    context = _whole(limits.get("max_seq_length_sft")) or DEFAULT_CONTEXT
    trainings = [limits.get("lora_training"), limits.get("full_training")]
    dpo = any(isinstance(t, dict) and _whole(t.get("max_batch_size_dpo")) for t in trainings)
    return BaseModel(
        id=name,
        provider_kind=family,
        encoding=ESTIMATE_ENCODING,
        training_context=context,
        inference_context=context,
        supports_dpo=dpo,
        supports_vision=limits.get("supports_vision") is True,
        limits=limits,
        listed_at=timezone.now(),
        shutdown_on=None,
    )


def catalog_refresh(*, connection_id: int) -> CatalogRefresh:
    """Copy the models the connection's provider fine-tunes, with each one's limits, into its
    family's catalog; models it no longer lists are marked shut down today. Safe to run twice
    or at once with another (upserts). Prices learnt from quotes are kept."""
    connection = ProviderConnection.objects.get(pk=connection_id)
    declared = traits(connection.kind)
    if not declared.refreshes_catalog:
        return CatalogRefresh(listed=0, unlisted=0, skipped=[])
    provider = provider_for_connection(connection)
    names = sorted({m.id for m in provider.list_models() if m.id and len(m.id) <= 100})
    names = names[:MAX_LISTED_MODELS]
    limits = {name: provider.model_limits(name) for name in names}
    taken = set(
        BaseModel.objects.filter(pk__in=names)
        .exclude(provider_kind=declared.family)
        .values_list("pk", flat=True)
    )
    rows = [_row(n, declared.family, limits[n]) for n in names if n not in taken]
    today = timezone.localdate()
    with transaction.atomic():
        BaseModel.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=[
                "training_context", "inference_context", "supports_dpo", "supports_vision",
                "limits", "listed_at", "shutdown_on", "updated_at",
            ],
        )  # fmt: skip
        unlisted = (
            BaseModel.objects.filter(provider_kind=declared.family, shutdown_on__isnull=True)
            .exclude(pk__in=names)
            .update(shutdown_on=today)
        )
    return CatalogRefresh(listed=len(rows), unlisted=unlisted, skipped=sorted(taken))


def catalog_refresh_request(
    *, connection: ProviderConnection, user: AbstractBaseUser | None = None
) -> bool:
    """Queue a refresh of the connection's catalog; False when its adapter lists no models."""
    if not traits(connection.kind).refreshes_catalog:
        return False
    if user is not None:
        audit_record(actor=user, action="catalog_refresh_requested", obj=connection)
    queue.enqueue(CATALOG_TASK, connection.pk, robust=True)
    return True


def catalogs_refresh_all() -> int:
    """Queue a refresh for one usable connection of each kind that lists models (beat, daily):
    the catalog is per family, not per connection."""
    seen: set[str] = set()
    for connection in ProviderConnection.objects.filter(
        enabled=True, archived_at__isnull=True
    ).exclude(api_key_encrypted=""):
        if connection.kind not in seen and traits(connection.kind).refreshes_catalog:
            seen.add(connection.kind)
            queue.enqueue(CATALOG_TASK, connection.pk, robust=True)
    return len(seen)


# --- Price quotes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QuoteInputs:
    connection: ProviderConnection
    base_model: str
    method: str
    training_dataset: Dataset
    validation_dataset: Dataset | None
    hyperparameters: dict[str, Any]

    def key(self) -> str:
        what = {
            "model": self.base_model,
            "method": self.method,
            "training": self.training_dataset.sha256,
            "validation": self.validation_dataset.sha256 if self.validation_dataset else None,
            "hyperparameters": self.hyperparameters,
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def price_quote_find(inputs: QuoteInputs) -> PriceQuote | None:
    return PriceQuote.objects.filter(connection=inputs.connection, key=inputs.key()).first()


def _stale(quote: PriceQuote) -> bool:
    if quote.status == PriceQuote.Status.FAILED:
        return True
    answered = quote.answered_at
    return answered is not None and timezone.now() - answered > QUOTE_FRESH_FOR


def price_quote_request(*, inputs: QuoteInputs, user: AbstractBaseUser | None) -> PriceQuote:
    """The provider's quote for these launch inputs: the one already asked (pending, or
    answered within a day), else a new question queued. Raises ``JobError`` when the
    connection's provider quotes no prices."""
    declared = traits(inputs.connection.kind)
    if not declared.quotes_price:
        raise JobError(f"{declared.label} gives no price estimates.")
    key = inputs.key()
    fields = {
        "base_model": inputs.base_model,
        "method": inputs.method,
        "training_dataset": inputs.training_dataset,
        "validation_dataset": inputs.validation_dataset,
        "hyperparameters": inputs.hyperparameters,
    }
    with transaction.atomic():
        try:
            with transaction.atomic():
                quote, created = PriceQuote.objects.get_or_create(
                    connection=inputs.connection,
                    key=key,
                    defaults={**fields, "requested_by": user, **leases.queued_fields()},
                )
        except IntegrityError:  # asked at the same moment by another request: that one
            quote, created = PriceQuote.objects.get(connection=inputs.connection, key=key), False
        if not created and _stale(quote):
            PriceQuote.objects.filter(pk=quote.pk).update(
                status=PriceQuote.Status.PENDING, attempts=0, error="", requested_by=user,
                answered_at=None, **leases.queued_fields(),
            )  # fmt: skip
            quote.refresh_from_db()
            created = True
        if created:
            queue.enqueue(QUOTE_TASK, quote.pk)
    return quote


def price_quote_retry(*, quote: PriceQuote, user: AbstractBaseUser | None) -> PriceQuote:
    """Ask the provider again for a quote already answered (or failed)."""
    if quote.status != PriceQuote.Status.PENDING:
        PriceQuote.objects.filter(pk=quote.pk).exclude(status=PriceQuote.Status.PENDING).update(
            status=PriceQuote.Status.PENDING, attempts=0, error="", requested_by=user,
            answered_at=None, **leases.queued_fields(),
        )  # fmt: skip
        queue.enqueue(QUOTE_TASK, quote.pk)
    quote.refresh_from_db()
    return quote


def _spec(quote: PriceQuote, training: str, validation: str | None) -> JobSpec:
    return JobSpec(
        model=quote.base_model,
        training_file=training,
        validation_file=validation,
        method=quote.method,
        hyperparameters=quote.hyperparameters,
    )


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


def price_quote_fetch(*, quote_id: int) -> PriceQuote:
    """Ask the provider for the quote (uploading the training and validation files first, as
    a launch would; the launch then finds them uploaded). Transient failures are retried a
    few times, then the quote fails with the reason; a quote already answered is left alone."""
    pending = PriceQuote.objects.filter(pk=quote_id, status=PriceQuote.Status.PENDING)
    if not leases.lease_claim(pending):
        return PriceQuote.objects.get(pk=quote_id)
    quote = PriceQuote.objects.select_related(
        "connection", "training_dataset", "validation_dataset"
    ).get(pk=quote_id)
    try:
        training = provider_file_ensure(connection=quote.connection, dataset=quote.training_dataset)
        validation = (
            provider_file_ensure(connection=quote.connection, dataset=quote.validation_dataset)
            if quote.validation_dataset
            else None
        )
        provider = provider_for_connection(quote.connection)
        answer = provider.estimate_price(_spec(quote, training, validation))
    except (TransientProviderError, SoftTimeLimitExceeded) as exc:
        attempts = quote.attempts + 1
        if attempts < MAX_QUOTE_ATTEMPTS:
            pending.update(attempts=attempts, error=str(exc)[:1000], **leases.queued_fields())
            raise TransientProviderError(str(exc)) from exc
        return _quote_failed(quote, f"The provider did not answer: {exc}")
    except ProviderError as exc:
        return _quote_failed(quote, str(exc))
    return _quote_answered(quote, answer)


def _quote_failed(quote: PriceQuote, message: str) -> PriceQuote:
    PriceQuote.objects.filter(pk=quote.pk, status=PriceQuote.Status.PENDING).update(
        status=PriceQuote.Status.FAILED,
        error=message[:1000],
        answered_at=timezone.now(),
        **leases.done_fields(),
    )
    return PriceQuote.objects.get(pk=quote.pk)


def _quote_answered(quote: PriceQuote, answer: dict[str, Any]) -> PriceQuote:
    price = _decimal(answer.get("estimated_total_price"))
    train_tokens = _whole(answer.get("estimated_train_token_count"))
    eval_tokens = answer.get("estimated_eval_token_count")
    if answer.get("estimation_available") is False or price is None:
        return _quote_failed(quote, "The provider could not estimate a price for this job.")
    allowed = answer.get("allowed_to_proceed")
    with transaction.atomic():
        PriceQuote.objects.filter(pk=quote.pk, status=PriceQuote.Status.PENDING).update(
            status=PriceQuote.Status.READY,
            price_usd=price,
            train_tokens=train_tokens,
            eval_tokens=eval_tokens if _whole(eval_tokens) else None,
            allowed_to_proceed=allowed if isinstance(allowed, bool) else None,
            answer=answer,
            error="",
            answered_at=timezone.now(),
            **leases.done_fields(),
        )
        billed = (train_tokens or 0) + (_whole(eval_tokens) or 0)
        if billed:
            # The provider's price per token, learnt so that Tuneboard's own estimate (and the
            # cost of jobs on this model) use it.
            per_1m = (price * 1_000_000 / billed).quantize(Decimal("0.0001"))
            family = traits(quote.connection.kind).family
            BaseModel.objects.filter(pk=quote.base_model, provider_kind=family).update(
                training_price_per_1m=per_1m, updated_at=timezone.now()
            )
    return PriceQuote.objects.get(pk=quote.pk)

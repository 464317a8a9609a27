"""The runs list's view-model: one dict per row, its cells already formatted (the core
filters, applied here once) and its urls reversed once per page, rendered by
``templates/dashboard/_runs_rows.html`` (autoescaped).

Measured on a page of 50 rows: formatting in Python and printing plain strings renders faster
than raw values with a filter per cell in the template, and dicts faster than objects (a
template variable tries ``row[key]`` before ``getattr``, and a failed item lookup costs an
exception on every dot)."""

from __future__ import annotations

import re
import uuid
from typing import Any, TypedDict

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from core.templatetags.core_format import count, duration, exact, metric, money, status_badge
from dashboard.selectors_runs import RunRow
from dashboard.templatetags.dashboard_extras import hp_value, soft_breaks
from jobs.costs import COST_FINAL_STATUSES
from jobs.models import Job

_PLACEHOLDER = uuid.UUID(int=0)
_STATUS_LABELS = dict(Job.Status.choices)  # job.get_status_display(), without its per-call work


def _url_maker(name: str, fallback: str) -> Any:
    """``reverse(name, pk)`` for many pks (as strings) with a single reverse (``fallback`` is
    used when the URL name does not resolve, with ``{pk}`` in it)."""
    try:
        pattern = reverse(name, args=[_PLACEHOLDER])
    except NoReverseMatch:
        return lambda pk: fallback.format(pk=pk)
    placeholder = str(_PLACEHOLDER)
    return lambda pk: pattern.replace(placeholder, pk)


_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def compact_model(name: str) -> str:
    """A model id short enough for a table cell (the full id goes in its title): the release
    date off the base, the organisation and, when there is a suffix, the job id off a
    fine-tuned model (``ft:gpt-4o-mini-2024-07-18:org:suffix:id`` → ``ft:gpt-4o-mini:suffix``;
    a checkpoint keeps its ``ckpt-step-N``)."""
    if not name.startswith("ft:"):
        return _DATED.sub("", name)
    parts = name.split(":")
    if len(parts) < 5:
        return name
    base, suffix, ident, rest = parts[1], parts[3], parts[4], parts[5:]
    return ":".join(["ft", _DATED.sub("", base), suffix or ident, *rest])


class Cell(TypedDict):
    text: str  # formatted for people
    value: str  # exact value for data-value ("" when unknown)
    title: str  # "" for none


def _cell(text: str, value: str, title: str = "") -> Cell:
    return {"text": text, "value": value, "title": title}


def _cost_title(cost: Any, *, final: bool) -> str:
    if cost is None:
        return "" if final else "Not known until the job ends (billed by trained tokens)"
    return f"{cost} USD" if final else f"{cost} USD so far"


class ListRow(TypedDict):
    id: str
    url: str
    name: str
    # Texts shown in the table with a line-break opportunity after each joiner (escaped,
    # safe): long identifiers wrap between their parts, not mid-word.
    name_html: str
    notes: str
    notes_short: str
    status: str
    status_label: str
    status_class: str
    archived: bool
    base_model: str
    base_model_html: str
    provider_html: str
    dataset_html: str
    creator_html: str
    created_iso: str
    created_text: str
    tags_html: list[str]
    tags_text: str
    n_epochs: Cell
    batch_size: Cell
    lr: Cell
    tokens: Cell
    cost: Cell
    train_loss: Cell
    train_loss_latest: bool  # the run is not over: its last train loss is not its final one
    valid_loss: Cell
    valid_step: Cell
    duration: Cell
    tags_url: str
    notes_url: str


def list_rows(rows: list[RunRow]) -> list[ListRow]:
    detail = _url_maker("jobs:detail", "/jobs/{pk}/")
    tags_url = _url_maker("run_tags", "/runs/{pk}/tags/")
    notes_url = _url_maker("run_notes", "/runs/{pk}/notes/")
    result = []
    for row in rows:
        job = row.job
        pk = str(job.pk)
        created = timezone.localtime(job.created_at)
        notes = job.notes or ""
        result.append(
            ListRow(
                id=pk,
                url=detail(pk),
                name=job.display_name,
                name_html=soft_breaks(job.display_name),
                notes=notes,
                notes_short=notes if len(notes) <= 120 else notes[:119] + "…",
                status=job.status,
                status_label=_STATUS_LABELS.get(job.status, job.status),
                status_class=status_badge(job.status),
                archived=job.archived,
                base_model=job.base_model,
                base_model_html=soft_breaks(compact_model(job.base_model)),
                provider_html=soft_breaks(job.connection.name),
                dataset_html=soft_breaks(
                    job.training_dataset.name if job.training_dataset else "—"
                ),
                creator_html=soft_breaks(job.created_by.username if job.created_by else "—"),
                created_iso=created.isoformat(),
                created_text=created.strftime("%Y-%m-%d %H:%M"),
                tags_html=[soft_breaks(tag) for tag in job.tags or []],
                tags_text=", ".join(job.tags or []),
                n_epochs=_cell(hp_value(row.n_epochs), exact(row.n_epochs)),
                batch_size=_cell(hp_value(row.batch_size), exact(row.batch_size)),
                lr=_cell(
                    hp_value(row.learning_rate_multiplier), exact(row.learning_rate_multiplier)
                ),
                tokens=_cell(count(job.trained_tokens), exact(job.trained_tokens)),
                cost=_cell(
                    money(row.cost),
                    exact(row.cost),
                    _cost_title(row.cost, final=job.status in COST_FINAL_STATUSES),
                ),
                train_loss=_cell(metric(job.final_train_loss), exact(job.final_train_loss)),
                train_loss_latest=job.final_train_loss is not None
                and job.status not in Job.TERMINAL,
                valid_loss=_cell(metric(job.best_full_valid_loss), exact(job.best_full_valid_loss)),
                valid_step=_cell(count(job.best_full_valid_step), exact(job.best_full_valid_step)),
                duration=_cell(duration(row.duration_seconds), exact(row.duration_seconds)),
                tags_url=tags_url(pk),
                notes_url=notes_url(pk),
            )
        )
    return result

"""The runs list's rows, formatted and rendered once in Python: a page is fifty rows of twenty
cells, and template filters, ``{% url %}`` and variable lookups per cell cost more than all
the page's queries together. Every value is escaped (``html.escape``, quotes included)."""

from __future__ import annotations

import html as _html
import uuid
from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from core.templatetags.core_format import count, duration, exact, metric, money, status_badge
from dashboard.selectors_runs import RunRow
from dashboard.templatetags.dashboard_extras import hp_value

_PLACEHOLDER = uuid.UUID(int=0)


def _e(value: object) -> str:
    return _html.escape(str(value), quote=True)


def _url_maker(name: str, fallback: str) -> Any:
    """``reverse(name, pk)`` for many pks with a single reverse (``fallback`` is used when
    the URL name does not resolve, with ``{pk}`` in it)."""
    try:
        pattern = reverse(name, args=[_PLACEHOLDER])
    except NoReverseMatch:
        return lambda pk: fallback.format(pk=pk)
    return lambda pk: pattern.replace(str(_PLACEHOLDER), str(pk))


@dataclass
class Cell:
    text: str
    value: str  # exact value for data-value ("" when unknown)
    title: str = ""


@dataclass
class ListRow:
    id: str
    url: str
    name: str
    notes: str
    notes_short: str
    status: str
    status_label: str
    status_class: str
    archived: bool
    base_model: str
    provider: str
    dataset: str
    creator: str
    created_iso: str
    created_text: str
    tags: list[str]
    tags_text: str
    n_epochs: Cell
    batch_size: Cell
    lr: Cell
    tokens: Cell
    cost: Cell
    train_loss: Cell
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
        created = timezone.localtime(job.created_at)
        notes = job.notes or ""
        result.append(
            ListRow(
                id=str(job.pk),
                url=detail(job.pk),
                name=job.display_name,
                notes=notes,
                notes_short=notes if len(notes) <= 120 else notes[:119] + "…",
                status=job.status,
                status_label=job.get_status_display(),
                status_class=status_badge(job.status),
                archived=job.archived,
                base_model=job.base_model,
                provider=job.connection.name,
                dataset=job.training_dataset.name if job.training_dataset else "—",
                creator=job.created_by.username if job.created_by else "—",
                created_iso=created.isoformat(),
                created_text=created.strftime("%Y-%m-%d %H:%M"),
                tags=list(job.tags or []),
                tags_text=", ".join(job.tags or []),
                n_epochs=Cell(hp_value(row.n_epochs), exact(row.n_epochs)),
                batch_size=Cell(hp_value(row.batch_size), exact(row.batch_size)),
                lr=Cell(
                    hp_value(row.learning_rate_multiplier), exact(row.learning_rate_multiplier)
                ),
                tokens=Cell(count(job.trained_tokens), exact(job.trained_tokens)),
                cost=Cell(
                    money(row.cost),
                    exact(row.cost),
                    f"{row.cost} USD" if row.cost is not None else "",
                ),
                train_loss=Cell(metric(job.final_train_loss), exact(job.final_train_loss)),
                valid_loss=Cell(metric(job.best_full_valid_loss), exact(job.best_full_valid_loss)),
                valid_step=Cell(count(job.best_full_valid_step), exact(job.best_full_valid_step)),
                duration=Cell(duration(row.duration_seconds), exact(row.duration_seconds)),
                tags_url=tags_url(job.pk),
                notes_url=notes_url(job.pk),
            )
        )
    return result


_ROW = (
    '<tr data-run="{id}">'
    '<td><input type="checkbox" name="runs" value="{id}" form="tb-compare-form" id="sel-{id}" '
    'class="tb-select"><label for="sel-{id}" class="sr-only">Compare {name}</label></td>'
    '<td><span class="badge {status_class}" data-field="status">{status_label}</span>{archived}</td>'
    '<td class="tb-name"><a href="{url}" data-field="name">{name}</a>'
    '<div class="tb-notes muted" data-field="notes">{notes_short}</div>{notes_form}</td>'
    '<td class="mono tb-wrap">{base_model}</td><td>{provider}</td><td>{dataset}</td>'
    "{n_epochs}{batch_size}{lr}{tokens}{cost}{train_loss}{valid_loss}{valid_step}{duration}"
    "<td>{creator}</td>"
    '<td class="tb-time"><time datetime="{created_iso}">{created_text}</time></td>'
    '<td class="tb-tags"><span data-field="tags">{tags}</span>{tags_form}</td></tr>'
)
_NOTES_FORM = (
    '<details class="tb-inline"><summary>Edit notes<span class="sr-only"> of {name}</span>'
    '</summary><form method="post" action="{action}" data-tb-inline="notes">{csrf}{next}'
    '<label for="notes-{id}" class="sr-only">Notes</label>'
    '<textarea id="notes-{id}" name="notes" rows="3">{notes}</textarea>'
    '<button class="button" type="submit">Save notes</button></form></details>'
)
_TAGS_FORM = (
    '<details class="tb-inline"><summary>Edit tags<span class="sr-only"> of {name}</span>'
    '</summary><form method="post" action="{action}" data-tb-inline="tags">{csrf}{next}'
    '<label for="tags-{id}" class="sr-only">Tags, comma-separated</label>'
    '<input type="text" id="tags-{id}" name="tags" value="{tags}" placeholder="comma, separated">'
    '<button class="button" type="submit">Save tags</button></form></details>'
)


def _cell(cell: Cell, field: str = "") -> str:
    field_attr = f' data-field="{field}"' if field else ""
    title = f' title="{_e(cell.title)}"' if cell.title else ""
    return f'<td class="num"{field_attr} data-value="{_e(cell.value)}"{title}>{_e(cell.text)}</td>'


def rows_html(rows: list[ListRow], *, editable: bool, csrf_token: str, next_url: str) -> SafeString:
    """The table body: one ``<tr>`` per run, with the inline tags and notes forms when
    ``editable`` (members). Every value is escaped with ``html.escape`` (quotes too) before it
    is put in the markup; the only unescaped parts are this module's constant fragments."""
    csrf = f'<input type="hidden" name="csrfmiddlewaretoken" value="{_e(csrf_token)}">'
    next_input = f'<input type="hidden" name="next" value="{_e(next_url)}">'
    html = []
    for r in rows:
        name = _e(r.name)
        notes_form = tags_form = ""
        if editable:
            notes_form = _NOTES_FORM.format(
                name=name, action=_e(r.notes_url), csrf=csrf, next=next_input, id=_e(r.id),
                notes=_e(r.notes),
            )  # fmt: skip
            tags_form = _TAGS_FORM.format(
                name=name, action=_e(r.tags_url), csrf=csrf, next=next_input, id=_e(r.id),
                tags=_e(r.tags_text),
            )  # fmt: skip
        html.append(
            _ROW.format(
                id=_e(r.id),
                name=name,
                status_class=_e(r.status_class),
                status_label=_e(r.status_label),
                archived=' <span class="badge">Archived</span>' if r.archived else "",
                url=_e(r.url),
                notes_short=_e(r.notes_short),
                notes_form=notes_form,
                base_model=_e(r.base_model),
                provider=_e(r.provider),
                dataset=_e(r.dataset),
                n_epochs=_cell(r.n_epochs),
                batch_size=_cell(r.batch_size),
                lr=_cell(r.lr),
                tokens=_cell(r.tokens, "trained_tokens"),
                cost=_cell(r.cost, "cost"),
                train_loss=_cell(r.train_loss, "final_train_loss"),
                valid_loss=_cell(r.valid_loss, "best_full_valid_loss"),
                valid_step=_cell(r.valid_step, "best_full_valid_step"),
                duration=_cell(r.duration, "duration"),
                creator=_e(r.creator),
                created_iso=_e(r.created_iso),
                created_text=_e(r.created_text),
                tags="".join(f'<span class="badge tb-tag">{_e(tag)}</span> ' for tag in r.tags),
                tags_form=tags_form,
            )
        )
    return mark_safe("\n".join(html))  # noqa: S308 - every value escaped above

"""The runs list's view-model: one dict per row, its cells already formatted (the core
filters, applied here once) and its urls reversed once per page, printed by ``rows_html``
(the markup of ``templates/dashboard/_runs_rows.html``, escaped as autoescape does).

Measured on a page of 50 rows: formatting in Python once per cell is faster than a filter per
cell in the template, and joining strings ten times faster than the template engine."""

from __future__ import annotations

import html
import re
import uuid
from typing import Any, TypedDict

from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from core.templatetags.core_format import count, duration, exact, metric, money, status_badge
from dashboard.selectors_runs import RunRow
from dashboard.templatetags.dashboard_extras import hp_value, soft_breaks
from jobs.costs import COST_FINAL_STATUSES
from jobs.models import Job

_PLACEHOLDER = uuid.UUID(int=0)
_e = html.escape
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
    learning_rate: Cell
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
                provider_html=soft_breaks(row.provider_name),
                dataset_html=soft_breaks(row.dataset_name if row.dataset_name is not None else "—"),
                creator_html=soft_breaks(row.creator_name if row.creator_name is not None else "—"),
                created_iso=created.isoformat(),
                created_text=created.strftime("%Y-%m-%d %H:%M"),
                tags_html=[soft_breaks(tag) for tag in job.tags or []],
                tags_text=", ".join(job.tags or []),
                n_epochs=_cell(hp_value(row.n_epochs), exact(row.n_epochs)),
                batch_size=_cell(hp_value(row.batch_size), exact(row.batch_size)),
                lr=_cell(
                    hp_value(row.learning_rate_multiplier), exact(row.learning_rate_multiplier)
                ),
                learning_rate=_cell(hp_value(row.learning_rate), exact(row.learning_rate)),
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


# --- The table body, rendered here ---------------------------------------------------------
#
# ``templates/dashboard/_runs_rows.html`` is the readable form of this markup; the page prints
# ``rows_html`` instead because the template engine spends ~0.1 ms per row on its ~40
# variables and tags (half the page's render time at 50 rows), and string joins a tenth of
# that. A test holds the two byte for byte equal on hostile rows, members' and viewers'.
# Values are escaped exactly as autoescape does (``html.escape``: & < > " '); the ``*_html``
# texts are already escaped by ``soft_breaks``.


def _num_td(col: str, cell: Cell, field: str = "", extra: str = "") -> str:
    field_attr = f' data-field="{field}"' if field else ""
    return (
        f'<td class="num" data-col="{col}"{field_attr} data-value="{_e(cell["value"])}"'
        f"{extra}>{_e(cell['text'])}"
    )


def _inline_form(r: ListRow, kind: str, csrf_input: str, next_input: str) -> str:
    name = _e(r["name"])
    if kind == "notes":
        return (
            f'<details class="tb-inline"><summary>Edit notes<span class="sr-only"> of {name}'
            f'</span></summary><form method="post" action="{_e(r["notes_url"])}" '
            f'data-tb-inline="notes">{csrf_input}{next_input}<label for="notes-{r["id"]}" '
            f'class="sr-only">Notes</label><textarea id="notes-{r["id"]}" name="notes" '
            f'rows="3">{_e(r["notes"])}</textarea><button class="button" type="submit">'
            "Save notes</button></form></details>"
        )
    return (
        f'<details class="tb-inline"><summary>Edit tags<span class="sr-only"> of {name}'
        f'</span></summary><form method="post" action="{_e(r["tags_url"])}" '
        f'data-tb-inline="tags">{csrf_input}{next_input}<label for="tags-{r["id"]}" '
        f'class="sr-only">Tags, comma-separated</label><input type="text" id="tags-{r["id"]}" '
        f'name="tags" value="{_e(r["tags_text"])}" placeholder="comma, separated"><button '
        'class="button" type="submit">Save tags</button></form></details>'
    )


def rows_html(rows: list[ListRow], *, editable: bool, csrf_input: str, next_url: str) -> str:
    """The runs table's body (what ``_runs_rows.html`` renders), as safe HTML. ``csrf_input``
    is the hidden CSRF field (members' inline forms); ``next_url`` the page to come back to."""
    next_input = f'<input type="hidden" name="next" value="{_e(next_url)}">'
    out: list[str] = []
    for r in rows:
        rid = _e(r["id"])
        archived = ' <span class="badge">Archived</span>' if r["archived"] else ""
        notes_form = _inline_form(r, "notes", csrf_input, next_input) if editable else ""
        tags_form = _inline_form(r, "tags", csrf_input, next_input) if editable else ""
        cost = r["cost"]
        cost_title = f' title="{_e(cost["title"])}"' if cost["title"] else ""
        latest = r["train_loss_latest"]
        loss_title = ' title="Latest train loss: the run has not finished"' if latest else ""
        latest_badge = '<span class="tb-latest">latest</span>' if latest else ""
        tags = "".join(f'<span class="badge tb-tag">{tag}</span> ' for tag in r["tags_html"])
        out.append(
            f'<tr data-run="{rid}">\n'
            f'<td><input type="checkbox" name="runs" value="{rid}" form="tb-compare-form" '
            f'id="sel-{rid}" class="tb-select"><label for="sel-{rid}" class="sr-only">Compare '
            f"{_e(r['name'])}</label></td>\n"
            f'<td data-col="status"><span class="badge {_e(r["status_class"])}" '
            f'data-field="status">{_e(r["status_label"])}</span>{archived}</td>\n'
            f'<td class="tb-name"><a href="{_e(r["url"])}" class="tb-text" data-field="name">'
            f'{r["name_html"]}</a><div class="tb-notes muted" data-field="notes">'
            f"{_e(r['notes_short'])}</div>{notes_form}</td>\n"
            f'<td class="mono tb-model" data-col="base_model" title="{_e(r["base_model"])}">'
            f'<span class="tb-text">{r["base_model_html"]}</span></td><td data-col="provider">'
            f'<span class="tb-text">{r["provider_html"]}</span></td><td data-col="dataset">'
            f'<span class="tb-text">{r["dataset_html"]}</span></td>\n'
            f"{_num_td('n_epochs', r['n_epochs'])}</td>\n"
            f"{_num_td('batch_size', r['batch_size'])}</td>\n"
            f"{_num_td('lr', r['lr'])}</td>\n"
            f"{_num_td('learning_rate', r['learning_rate'])}</td>\n"
            f"{_num_td('tokens', r['tokens'], 'trained_tokens')}</td>\n"
            f"{_num_td('cost', cost, 'cost', cost_title)}</td>\n"
            f"{_num_td('train_loss', r['train_loss'], 'final_train_loss', loss_title)}"
            f"{latest_badge}</td>\n"
            f"{_num_td('valid_loss', r['valid_loss'], 'best_full_valid_loss')}</td>\n"
            f"{_num_td('valid_step', r['valid_step'], 'best_full_valid_step')}</td>\n"
            f"{_num_td('duration', r['duration'], 'duration')}</td>\n"
            f'<td data-col="creator"><span class="tb-text">{r["creator_html"]}</span></td>\n'
            f'<td class="tb-time" data-col="created"><time datetime="{_e(r["created_iso"])}">'
            f"{_e(r['created_text'])}</time></td>\n"
            f'<td class="tb-tags" data-col="tags"><span data-field="tags">{tags}</span>'
            f"{tags_form}</td></tr>\n"
        )
    return mark_safe("".join(out))  # noqa: S308 - every value above is escaped or already safe

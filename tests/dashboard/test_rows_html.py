"""The runs table's body is printed by ``presentation.rows_html`` (string joins, for speed);
``templates/dashboard/_runs_rows.html`` is its readable form. The two must give the same
bytes for any row — hostile texts, every optional part on and off, members' inline forms and
viewers' plain rows — so the markup can be read, reviewed and changed in the template and
checked here."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.presentation import Cell, ListRow, rows_html
from dashboard.templatetags.dashboard_extras import soft_breaks

HOSTILE = st.text(alphabet=st.sampled_from([*list("ab <>&\"'/=:-_.\n{}%"), "é", "\u202e"]),
                  max_size=30)  # fmt: skip


@st.composite
def cells(draw: st.DrawFn) -> Cell:
    return {"text": draw(HOSTILE), "value": draw(HOSTILE), "title": draw(st.just("") | HOSTILE)}


@st.composite
def list_rows(draw: st.DrawFn) -> ListRow:
    name, notes = draw(HOSTILE), draw(HOSTILE)
    tags = draw(st.lists(HOSTILE, max_size=3))
    return {
        "id": draw(st.uuids()).hex, "url": "/jobs/" + draw(HOSTILE), "name": name,
        "name_html": soft_breaks(name), "notes": notes, "notes_short": notes[:10],
        "status": "running", "status_label": draw(HOSTILE), "status_class": draw(HOSTILE),
        "archived": draw(st.booleans()), "base_model": draw(HOSTILE),
        "base_model_html": soft_breaks(draw(HOSTILE)), "provider_html": soft_breaks(draw(HOSTILE)),
        "dataset_html": soft_breaks(draw(HOSTILE)), "creator_html": soft_breaks(draw(HOSTILE)),
        "created_iso": draw(HOSTILE), "created_text": draw(HOSTILE),
        "tags_html": [soft_breaks(tag) for tag in tags], "tags_text": ", ".join(tags),
        "n_epochs": draw(cells()), "batch_size": draw(cells()), "lr": draw(cells()),
        "learning_rate": draw(cells()),
        "tokens": draw(cells()), "cost": draw(cells()), "train_loss": draw(cells()),
        "train_loss_latest": draw(st.booleans()), "valid_loss": draw(cells()),
        "valid_step": draw(cells()), "duration": draw(cells()),
        "tags_url": "/runs/x/tags/" + draw(HOSTILE), "notes_url": "/runs/x/notes/" + draw(HOSTILE),
    }  # fmt: skip


CSRF = '<input type="hidden" name="csrfmiddlewaretoken" value="tok3n">'


def from_template(rows: list[ListRow], *, editable: bool, next_url: str) -> str:
    context: dict[str, Any] = {"rows": rows, "editable": editable, "next_url": next_url,
                               "csrf_token": "tok3n"}  # fmt: skip
    return render_to_string("dashboard/_runs_rows.html", context)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(list_rows(), max_size=4), editable=st.booleans(), next_url=HOSTILE)
def test_rows_html_prints_exactly_what_the_template_renders(
    rows: list[ListRow], editable: bool, next_url: str
) -> None:
    expected = from_template(rows, editable=editable, next_url=next_url)
    printed = rows_html(rows, editable=editable, csrf_input=CSRF, next_url=next_url)
    assert printed.strip() == expected.strip()


def test_a_hostile_name_is_escaped_everywhere() -> None:
    name = '<script>alert("x")</script>'
    cell: Cell = {"text": "1", "value": "1", "title": ""}
    row: dict[str, Any] = {
        "id": "1", "url": "/jobs/1/", "name": name, "name_html": soft_breaks(name),
        "notes": name, "notes_short": name, "status": "running", "status_label": "Running",
        "status_class": "ok", "archived": False, "base_model": name,
        "base_model_html": soft_breaks(name), "provider_html": "p", "dataset_html": "d",
        "creator_html": "c", "created_iso": "", "created_text": "", "tags_html": [],
        "tags_text": name, "n_epochs": cell, "batch_size": cell, "lr": cell, "learning_rate": cell, "tokens": cell,
        "cost": cell, "train_loss": cell, "train_loss_latest": False, "valid_loss": cell,
        "valid_step": cell, "duration": cell, "tags_url": "/t/", "notes_url": "/n/",
    }  # fmt: skip
    printed = rows_html([row], editable=True, csrf_input=CSRF, next_url="/?q=<b>")  # type: ignore[list-item]
    assert "<script>" not in printed and "<b>" not in printed
    # The label, link text, notes, both summaries, the textarea, the model's title and text,
    # and the tags field.
    assert printed.count("&lt;script&gt;") == 9

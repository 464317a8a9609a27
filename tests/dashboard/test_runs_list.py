"""The runs list on the home page: numbers equal the database, filters, search, sort,
pagination, constant queries, inline tags and notes, escaping."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.db import connection as db_connection
from django.template import engines
from django.template.loaders.cached import Loader as CachedLoader
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import AuditEntry
from datasets.models import BaseModel
from jobs.models import Job
from tests.dashboard.conftest import XSS
from tests.permissions import client_for, make_user

pytestmark = pytest.mark.django_db

QUERIES_PER_PAGE = 9


class Rows(HTMLParser):
    """Table rows of the runs list: {run id: {data-field: (data-value, text)}}."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, tuple[str | None, str]]] = {}
        self.order: list[str] = []
        self._run: str | None = None
        self._field: str | None = None
        self._value: str | None = None
        self._text: list[str] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-run"):
            self._run = a["data-run"]
            self.rows[self._run] = {}
            self.order.append(self._run)
        if self._run and a.get("data-field") and self._field is None:
            self._field, self._value, self._text, self._depth = (
                a["data-field"],
                a.get("data-value"),
                [],
                0,
            )
        elif self._field is not None and tag not in RowElements.VOID:
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self._field is not None:
            if self._depth == 0:
                self.rows[self._run][self._field] = (self._value, "".join(self._text).strip())  # type: ignore[index]
                self._field = None
            else:
                self._depth -= 1
        if tag == "tr":
            self._run = None

    def handle_data(self, data: str) -> None:
        if self._field is not None:
            self._text.append(data)


def parse(content: bytes) -> Rows:
    parser = Rows()
    parser.feed(content.decode())
    return parser


class RowElements(HTMLParser):
    """Every element of one run's ``<tr>``: (tag, attributes, text inside), entities decoded."""

    VOID = {"input", "br", "img", "hr", "wbr"}

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.elements: list[tuple[str, dict[str, str | None], list[str]]] = []
        self._open: list[int] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._inside = dict(attrs).get("data-run") == self.run_id
        if self._inside:
            self.elements.append((tag, dict(attrs), []))
            if tag not in self.VOID:
                self._open.append(len(self.elements) - 1)

    def handle_endtag(self, tag: str) -> None:
        if self._inside and self._open:
            self._open.pop()
        if tag == "tr":
            self._inside = False

    def handle_data(self, data: str) -> None:
        for index in self._open if self._inside else ():
            self.elements[index][2].append(data)

    def find(self, tag: str, **attrs: str) -> list[tuple[dict[str, str | None], str]]:
        """(attributes, text) of the row's ``tag`` elements having ``attrs`` (``_`` for ``-``)."""
        wanted = {key.replace("_", "-"): value for key, value in attrs.items()}
        return [
            (a, "".join(text))
            for name, a, text in self.elements
            if name == tag and all(a.get(key) == value for key, value in wanted.items())
        ]


def row_of(content: bytes, run_id: object) -> RowElements:
    parser = RowElements(str(run_id))
    parser.feed(content.decode())
    assert parser.elements, f"no row for run {run_id}"
    return parser


def number(value: str | None) -> float | None:
    return None if value in (None, "") else float(value)


def test_numbers_on_the_list_equal_the_database(make_job, make_dataset_row) -> None:
    dataset = make_dataset_row("support-chats")
    jobs = [make_job(steps=30, seed=i, training_dataset=dataset) for i in range(3)]
    running = make_job(status="running", finished_at=None, trained_tokens=None)
    price = BaseModel.objects.get(pk="gpt-4o-mini-2024-07-18").to_spec().training_price_per_1m
    page = client_for("viewer").get("/")
    assert page.status_code == 200
    rows = parse(page.content).rows
    for job in jobs:
        job.refresh_from_db()
        row = rows[str(job.pk)]
        assert row["name"][1] == job.name
        assert number(row["final_train_loss"][0]) == job.final_train_loss
        assert number(row["best_full_valid_loss"][0]) == job.best_full_valid_loss
        assert number(row["best_full_valid_step"][0]) == job.best_full_valid_step
        assert int(row["trained_tokens"][0]) == job.trained_tokens
        assert Decimal(row["cost"][0]) == price * job.trained_tokens / Decimal(1_000_000)
        assert number(row["duration"][0]) == job.duration_seconds
        assert row["status"][1] == "Succeeded"
    assert rows[str(running.pk)]["cost"] == ("", "—")
    text = page.content.decode()
    assert "support-chats" in text and "Acme OpenAI" in text and "gpt-4o-mini-2024-07-18" in text
    # Hyperparameters: resolved first, else requested, else "auto".
    auto = make_job(hyperparameters={}, requested_hyperparameters={"batch_size": 4})
    cells = re.search(
        rf'data-run="{auto.pk}".*?</tr>', client_for("viewer").get("/").content.decode(), re.S
    )
    assert cells and 'data-value="4"' in cells.group(0) and ">auto<" in cells.group(0)


@pytest.mark.parametrize(
    ("status", "latest"),
    [("running", True), ("queued", True), ("paused", True), ("succeeded", False),
     ("failed", False), ("cancelled", False)],
)  # fmt: skip
def test_train_loss_of_an_unfinished_run_reads_latest(make_job, status: str, latest: bool) -> None:
    job = make_job(status=status, final_train_loss=0.4321, finished_at=None)
    no_loss = make_job(status="running", final_train_loss=None, finished_at=None)
    page = client_for("viewer").get("/")
    text = page.content.decode()
    # The heading is neutral; the caption says what the column holds.
    assert ">Train loss<" in text and "Final train loss" not in text
    assert "marked latest while it runs" in text
    rows = parse(page.content).rows
    assert rows[str(job.pk)]["final_train_loss"] == (
        "0.4321",
        "0.4321latest" if latest else "0.4321",
    )
    cell = row_of(page.content, job.pk).find("td", data_col="train_loss")
    assert cell[0][0].get("title") == (
        "Latest train loss: the run has not finished" if latest else None
    )
    # Nothing reported yet: nothing to call latest.
    assert rows[str(no_loss.pk)]["final_train_loss"] == ("", "—")


def test_cost_uses_the_catalog_alias_and_fine_tuned_base(make_job) -> None:
    alias = make_job(base_model="gpt-4o-mini", trained_tokens=2_000_000)
    tuned = make_job(
        base_model="ft:gpt-4o-mini-2024-07-18:acme-org:v1:abc", model="", trained_tokens=1_000_000
    )
    unknown = make_job(base_model="mystery-model", trained_tokens=1_000_000)
    price = BaseModel.objects.get(pk="gpt-4o-mini-2024-07-18").training_price_per_1m
    rows = parse(client_for("viewer").get("/").content).rows
    assert Decimal(rows[str(alias.pk)]["cost"][0]) == price * 2
    assert Decimal(rows[str(tuned.pk)]["cost"][0]) == price
    assert rows[str(unknown.pk)]["cost"][0] == ""
    # Sorting by cost agrees with the displayed values (unknown last).
    order = parse(client_for("viewer").get("/?sort=cost&dir=desc").content).order
    assert order[:3] == [str(alias.pk), str(tuned.pk), str(unknown.pk)]


def test_filters_and_search(make_job, make_dataset_row) -> None:
    other = make_dataset_row("other")
    a = make_job(name="alpha", tags=["keep", "x"], notes="tried a lower lr")
    b = make_job(
        name="beta", status="failed", training_dataset=other, base_model="gpt-4.1-mini-2025-04-14"
    )
    c = make_job(name="gamma", archived=True)
    d = make_job(
        name="delta", provider_job_id="ftjob-needle42", created_by=make_user("member", "creator")
    )
    old = make_job(name="old")
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    viewer = client_for("viewer")

    def ids(query: str) -> set[str]:
        response = viewer.get("/" + query)
        assert response.status_code == 200
        return set(parse(response.content).rows)

    everything = {str(j.pk) for j in (a, b, d, old)}
    assert ids("") == everything  # archived hidden by default
    assert ids("?archived=include") == everything | {str(c.pk)}
    assert ids("?archived=only") == {str(c.pk)}
    assert ids("?status=failed") == {str(b.pk)}
    assert ids(f"?dataset={other.pk}") == {str(b.pk)}
    assert ids("?base_model=gpt-4.1-mini-2025-04-14") == {str(b.pk)}
    assert ids(f"?provider={a.connection_id}") == everything
    assert ids("?provider=999999") == set()
    assert ids("?tag=keep") == {str(a.pk)}
    assert ids(f"?creator={d.created_by_id}") == {str(d.pk)}
    assert ids("?q=lower+LR") == {str(a.pk)}  # notes, case-insensitive
    assert ids("?q=needle42") == {str(d.pk)}  # provider job id
    assert ids("?q=4.1-mini") == {str(b.pk)}  # base model
    assert ids(f"?q={a.fine_tuned_model[-8:]}") == {str(a.pk)}  # fine-tuned model id
    today = timezone.localdate()
    assert ids(
        f"?created_from={today - timedelta(days=41):%Y-%m-%d}&created_to={today - timedelta(days=39):%Y-%m-%d}"
    ) == {str(old.pk)}
    assert str(old.pk) not in ids(f"?created_from={today:%Y-%m-%d}")
    # Invalid values are ignored (and said so), the rest still applies.
    response = viewer.get("/?status=bogus&tag=keep")
    assert set(parse(response.content).rows) == {str(a.pk)}
    assert b"Ignored invalid filter values" in response.content


def test_sorting_by_numeric_columns_is_stable(make_job) -> None:
    jobs = [make_job(steps=30, seed=s) for s in (3, 1, 2)]
    tie = [make_job(trained_tokens=5, steps=0) for _ in range(3)]
    viewer = client_for("viewer")
    for key, field in (("train_loss", "final_train_loss"), ("valid_loss", "best_full_valid_loss"),
                       ("tokens", "trained_tokens")):  # fmt: skip
        for direction in ("asc", "desc"):
            order = parse(viewer.get(f"/?sort={key}&dir={direction}").content).order
            values = [getattr(Job.objects.get(pk=pk), field) for pk in order]
            present = [v for v in values if v is not None]
            assert present == sorted(present, reverse=direction == "desc")
            assert values[len(present) :] == [None] * (len(values) - len(present))  # nulls last
    # Ties keep a stable secondary order: newest first, then id.
    order = parse(viewer.get("/?sort=tokens&dir=asc").content).order
    tied = [pk for pk in order if pk in {str(j.pk) for j in tie}]
    expected = [str(j.pk) for j in sorted(tie, key=lambda j: (j.created_at, j.pk), reverse=True)]
    assert tied == expected
    assert len(jobs) == 3
    for key in ("n_epochs", "batch_size", "lr", "cost", "valid_step", "duration", "created"):
        assert viewer.get(f"/?sort={key}&dir=asc").status_code == 200
    page = viewer.get("/?sort=tokens&dir=asc").content.decode()
    assert 'aria-sort="ascending"' in page


def test_pagination(make_job) -> None:
    connection = make_job().connection
    Job.objects.bulk_create(
        [Job(connection=connection, name=f"bulk {i}", base_model="m", status="succeeded")
         for i in range(60)]
    )  # fmt: skip
    viewer = client_for("viewer")
    first = viewer.get("/")
    second = viewer.get("/?page=2")
    assert len(parse(first.content).rows) == 50
    assert len(parse(second.content).rows) == 11
    assert not set(parse(first.content).rows) & set(parse(second.content).rows)
    assert b"page 1 of 2" in first.content and b'rel="next"' in first.content
    assert len(parse(viewer.get("/?page=99").content).rows) == 11  # past the end: last page


def test_list_runs_a_constant_number_of_queries(make_job, make_dataset_row) -> None:
    viewer = client_for("viewer")
    dataset = make_dataset_row()
    for i in range(5):
        make_job(tags=[f"t{i}"], training_dataset=dataset, created_by=make_user("member", f"u{i}"))
    viewer.get("/")  # warm the session
    with CaptureQueriesContext(db_connection) as few:
        assert viewer.get("/?sort=cost").status_code == 200
    for i in range(55):
        make_job(
            tags=[f"t{i}"],
            training_dataset=make_dataset_row(),
            created_by=make_user("member", f"v{i}"),
        )
    with CaptureQueriesContext(db_connection) as many:
        response = viewer.get("/?sort=cost")
    assert len(parse(response.content).rows) == 50
    # Session, user, the role's permissions (two), catalog prices, count, the page's ids, its
    # rows, the user's column choice; the filter options come from their one-minute cache
    # (warmed by the first visit). README's bench line quotes this number.
    assert len(few.captured_queries) == len(many.captured_queries) == QUERIES_PER_PAGE
    with CaptureQueriesContext(db_connection) as filtered:
        viewer.get("/?q=run&tag=t1&status=succeeded&sort=lr&dir=asc&page=1")
    assert len(filtered.captured_queries) == len(few.captured_queries)
    # Nothing aggregates metric rows.
    assert not any("jobs_metricpoint" in q["sql"] for q in many.captured_queries)


def test_inline_tags_and_notes(make_job) -> None:
    job = make_job(name="editable", tags=["old"])
    member = client_for("member")
    page = member.get("/")
    assert f"/runs/{job.pk}/tags/".encode() in page.content
    response = member.post(f"/runs/{job.pk}/tags/", {"tags": "b, a, b", "next": "/?tag=old"})
    assert response.status_code == 302 and response["Location"] == "/?tag=old"
    job.refresh_from_db()
    assert job.tags == ["a", "b"]
    response = member.post(
        f"/runs/{job.pk}/notes/", {"notes": "retry with 2 epochs"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200 and response.json()["notes"] == "retry with 2 epochs"
    job.refresh_from_db()
    assert job.notes == "retry with 2 epochs"
    assert AuditEntry.objects.filter(action="job_annotated", object_id=str(job.pk)).count() == 2
    # An off-site "next" is not followed.
    response = member.post(f"/runs/{job.pk}/tags/", {"tags": "c", "next": "https://evil.example/"})
    assert response["Location"] == "/"
    # Too long a tag is refused without a write.
    response = member.post(
        f"/runs/{job.pk}/tags/", {"tags": "x" * 41}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    job.refresh_from_db()
    assert job.tags == ["c"]


def test_viewers_see_no_edit_controls_and_cannot_post(make_job) -> None:
    job = make_job(tags=["keep"])
    viewer = client_for("viewer")
    page = viewer.get("/")
    assert b"Edit tags" not in page.content and b"Edit notes" not in page.content
    assert viewer.post(f"/runs/{job.pk}/tags/", {"tags": "x"}).status_code == 403
    assert viewer.post(f"/runs/{job.pk}/notes/", {"notes": "x"}).status_code == 403
    job.refresh_from_db()
    assert job.tags == ["keep"] and job.notes == ""


def test_user_content_is_escaped_on_the_list(make_job) -> None:
    job = make_job(name=XSS, notes=XSS, tags=[XSS])
    make_job(tags=["safe"])
    page = client_for("member").get("/").content.decode()
    assert XSS not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert str(job.pk) in page


def test_rows_have_csrf_forms_for_members_only_and_the_page_the_cached_loader(make_job) -> None:
    job = make_job(name="editable", notes="first", tags=["t"])
    loaders = engines["django"].engine.template_loaders
    assert [type(loader) for loader in loaders] == [CachedLoader]
    member = Client(enforce_csrf_checks=True)
    member.force_login(make_user("member", "csrf-member"))
    response = member.get("/?sort=cost")
    # The rows are printed by presentation.rows_html (held equal to _runs_rows.html by
    # tests/dashboard/test_rows_html.py), not rendered from the template per request.
    assert "dashboard/_runs_rows.html" not in [t.name for t in response.templates]
    row = row_of(response.content, job.pk)
    for field in ("notes", "tags"):
        ((form, _),) = row.find("form", data_tb_inline=field)
        assert form["method"] == "post" and form["action"] == f"/runs/{job.pk}/{field}/"
    tokens = [a["value"] for a, _ in row.find("input", type="hidden", name="csrfmiddlewaretoken")]
    nexts = [a["value"] for a, _ in row.find("input", type="hidden", name="next")]
    assert len(tokens) == 2 and all(tokens) and nexts == ["/?sort=cost", "/?sort=cost"]
    assert [text for _, text in row.find("textarea", name="notes")] == ["first"]
    assert [a["value"] for a, _ in row.find("input", type="text", name="tags")] == ["t"]
    # The rendered token is one the CSRF check accepts; without it the post is refused.
    refused = member.post(f"/runs/{job.pk}/notes/", {"notes": "second", "next": nexts[0]})
    assert refused.status_code == 403
    saved = member.post(
        f"/runs/{job.pk}/notes/",
        {"notes": "second", "next": nexts[0], "csrfmiddlewaretoken": tokens[0]},
    )
    assert saved.status_code == 302 and saved["Location"] == "/?sort=cost"
    job.refresh_from_db()
    assert job.notes == "second"
    # Viewers get the same row without any form, token or edit control.
    viewer_row = row_of(client_for("viewer").get("/?sort=cost").content, job.pk)
    tags = {tag for tag, _, _ in viewer_row.elements}
    assert not tags & {"form", "details", "summary", "textarea", "button"}
    assert not viewer_row.find("input", name="csrfmiddlewaretoken")
    assert viewer_row.find("a", data_field="name")[0][1] == "editable"
    assert viewer_row.find("input", type="checkbox", name="runs", value=str(job.pk))


NASTY = """<script>alert('x')</script> "quoted" & 'single' &amp; done"""


def test_user_content_is_escaped_in_every_attribute_and_text_of_the_row(make_job) -> None:
    name, notes = f"name {NASTY}", f"notes {NASTY}"
    job = make_job(name=name, notes=notes, tags=[NASTY, "a&b"])
    query = "/?sort=cost&x='&y=\"<z>"
    response = client_for("member").get(query)
    html = response.content.decode()
    assert "<script>alert" not in html
    raw = re.search(rf'<tr data-run="{job.pk}">.*?</tr>', html, re.S)
    assert raw
    for escaped in ("&lt;script&gt;", "&quot;quoted&quot;", "&#x27;single&#x27;", "&amp;amp;"):
        assert escaped in raw.group(0)
    row = row_of(response.content, job.pk)
    # Each position decodes back to the stored text: nothing was dropped, doubled or broke out.
    labels = [text for _, text in row.find("label", **{"for": f"sel-{job.pk}"})]
    assert labels == [f"Compare {name}"]
    assert [text for _, text in row.find("a", data_field="name")] == [name]
    assert [text for _, text in row.find("div", data_field="notes")] == [notes]
    assert [text for _, text in row.find("span", **{"class": "sr-only"})] == [f" of {name}"] * 2
    assert [text for _, text in row.find("textarea", name="notes")] == [notes]
    assert [text for _, text in row.find("span", **{"class": "badge tb-tag"})] == [NASTY, "a&b"]
    assert [a["value"] for a, _ in row.find("input", name="tags")] == [f"{NASTY}, a&b"]
    nexts = {a["value"] for a, _ in row.find("input", name="next")}
    assert nexts == {response.wsgi_request.get_full_path()} and "'&y=" in nexts.pop()
    # No quote opened an attribute of its own.
    allowed = {"data-run", "type", "name", "value", "form", "id", "class", "for", "data-field",
               "href", "data-value", "title", "datetime", "method", "action", "data-tb-inline",
               "rows", "placeholder", "data-col"}  # fmt: skip
    assert {key for _, attrs, _ in row.elements for key in attrs} <= allowed


def test_compare_selected_form_targets_the_compare_page(make_job) -> None:
    make_job()
    page = client_for("viewer").get("/").content.decode()
    assert 'id="tb-compare-form" method="get" action="/compare/"' in page
    assert 'form="tb-compare-form"' in page
    assert "js/runs_list.js" in page


def test_every_sort_filter_and_page_runs_the_same_number_of_queries(make_job) -> None:
    from dashboard.selectors_runs import SORTS

    for i in range(60):
        make_job(name=f"run {i}", tags=["t1"] if i % 2 else [], trained_tokens=1000 * (i % 7),
                 archived=i % 9 == 0)  # fmt: skip
    viewer = client_for("viewer")
    viewer.get("/")  # warm the session

    def count(query: str) -> int:
        with CaptureQueriesContext(db_connection) as queries:
            assert viewer.get("/" + query).status_code == 200
        return len(queries.captured_queries)

    base = count("")
    queries = [f"?sort={key}&dir={d}" for key in SORTS for d in ("asc", "desc")]
    queries += ["?page=2", "?page=999", "?tag=t1", "?q=run&tag=t1&status=succeeded&sort=lr",
                "?archived=only", "?archived=include&sort=cost&page=2"]  # fmt: skip
    assert {query: count(query) for query in queries} == dict.fromkeys(queries, base)

"""The jobs pages: the permission matrix for every URL, the job page, its live JSON, the
controls that need no provider, and escaping of user content."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from core.models import AuditEntry
from datasets.models import BaseModel, Dataset
from jobs.models import Checkpoint, Job, JobEvent, ProviderConnection
from jobs.services import connection_save
from tests.conftest import BASE_DIR
from tests.permissions import LOGIN, assert_matrix, client_for, make_user
from tests.sandbox.data import chat_examples

pytestmark = pytest.mark.django_db

SECRET = "sk-test-PLAINTEXT-never-shown-9z8y"
XSS = "<img src=x onerror=alert(1)>"
READ = {"anonymous": LOGIN, "norole": 403, "viewer": 200, "member": 200, "staff": 200}
ACT_PAGE = {"anonymous": LOGIN, "norole": 403, "viewer": 403, "member": 200, "staff": 200}
STAFF_PAGE = {"anonymous": LOGIN, "norole": 403, "viewer": 403, "member": 403, "staff": 200}
DENIED = {"anonymous": LOGIN, "norole": 403, "viewer": 403}
# Nothing listens on port 9 (discard): provider calls fail at once instead of hanging.
DEAD_URL = "http://127.0.0.1:9/v1"


@pytest.fixture(autouse=True)
def _catalog(request: pytest.FixtureRequest) -> None:
    """Transactional tests flush the seeded base-model catalog; put it back when gone."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = marker.kwargs.get("transaction", False)
    request.getfixturevalue("transactional_db" if transactional else "db")
    if not BaseModel.objects.exists():
        importlib.import_module("datasets.migrations.0002_seed_base_models").seed(django_apps, None)


@pytest.fixture
def fast_failures(settings: Any) -> None:
    settings.PROVIDER_MAX_RETRIES = 0
    settings.PROVIDER_CONNECT_TIMEOUT = 2
    settings.PROVIDER_READ_TIMEOUT = 2


@pytest.fixture
def connection() -> ProviderConnection:
    return connection_save(name="Offline", kind="sandbox", base_url=DEAD_URL, api_key=SECRET)


@pytest.fixture
def dataset(make_dataset: Callable[..., Dataset]) -> Dataset:
    dataset = make_dataset(chat_examples(20))
    assert dataset.status == Dataset.Status.VALID
    return dataset


def make_job(connection: ProviderConnection, dataset: Dataset | None, **fields: Any) -> Job:
    defaults: dict[str, Any] = {
        "connection": connection,
        "training_dataset": dataset,
        "base_model": "gpt-4o-mini-2024-07-18",
        "model": "gpt-4o-mini-2024-07-18",
        "status": "running",
        "provider_job_id": f"ftjob-{Job.objects.count() + 1}",
        "requested_hyperparameters": {"n_epochs": 3},
        "hyperparameters": {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8},
        "total_steps": 60,
        "last_step": 12,
        "started_at": timezone.now() - timedelta(minutes=2),
    }
    defaults.update(fields)
    return Job.objects.create(**defaults)


def add_events(job: Job, n: int, *, level: str = "info", start: int = 0) -> list[JobEvent]:
    base = timezone.now() - timedelta(hours=1)
    return [
        JobEvent.objects.create(
            job=job,
            provider_event_id=f"ftevent-{job.pk}-{start + i}",
            created_at=base + timedelta(seconds=start + i),
            level=level,
            message=f"Step {start + i + 1}/60: training loss=0.5",
        )
        for i in range(n)
    ]


@pytest.fixture
def job(connection: ProviderConnection, dataset: Dataset) -> Job:
    return make_job(connection, dataset)


# --- the permission matrix ---------------------------------------------------------------------


def test_read_urls(job: Job) -> None:
    for url in (
        f"/jobs/{job.pk}/",
        f"/jobs/{job.pk}/?level=warn",
        f"/jobs/{job.pk}/live.json",
        f"/jobs/{job.pk}/sections.html",
    ):
        assert_matrix(url, READ)
    # The old list name still works: it sends readers to the runs list.
    assert_matrix("/jobs/", {**READ, "viewer": 302, "member": 302, "staff": 302})


def test_member_pages(job: Job, connection: ProviderConnection) -> None:
    for url in ("/jobs/new/", f"/jobs/new/?clone={job.pk}", f"/jobs/{job.pk}/edit/"):
        assert_matrix(url, ACT_PAGE)
    make_job(connection, None, status="succeeded", fine_tuned_model="ft:gpt-4o-mini:x:y:1")
    done = Job.objects.get(status="succeeded")
    assert_matrix(f"/jobs/{done.pk}/delete-model/", ACT_PAGE)


def test_member_posts(
    job: Job, connection: ProviderConnection, dataset: Dataset, fast_failures: None
) -> None:
    redirect = {**DENIED, "member": 302, "staff": 302}
    # Provider controls: the provider is unreachable, so the service refuses with a message.
    for action in ("cancel", "pause", "resume", "sync"):
        # Cancel and pause act only when confirmed (tests/jobs/test_confirmations.py).
        confirm = {"confirm": "yes"} if action in ("cancel", "pause") else None
        assert_matrix(f"/jobs/{job.pk}/{action}/", redirect, method="post", data=confirm)
    assert_matrix(f"/jobs/{job.pk}/archive/", redirect, method="post")
    assert Job.objects.get(pk=job.pk).archived
    assert_matrix(f"/jobs/{job.pk}/unarchive/", redirect, method="post")
    assert not Job.objects.get(pk=job.pk).archived
    assert_matrix(f"/jobs/{job.pk}/edit/", redirect, method="post", data={"name": "renamed"})
    assert Job.objects.get(pk=job.pk).name == "renamed"
    # Without the confirmation box the confirmation page comes back (200).
    assert_matrix(
        f"/jobs/{job.pk}/delete-model/", {**DENIED, "member": 200, "staff": 200}, method="post"
    )
    before = Job.objects.count()
    launch = {
        "connection": connection.pk,
        "base_model": "gpt-4o-mini-2024-07-18",
        "training_dataset": dataset.pk,
        "method": "supervised",
    }
    assert_matrix("/jobs/new/", redirect, method="post", data=launch)
    assert Job.objects.count() == before + 2  # member and staff launched; nobody else did


def test_connection_urls(connection: ProviderConnection, fast_failures: None) -> None:
    for url in (
        "/jobs/connections/",
        "/jobs/connections/new/",
        f"/jobs/connections/{connection.pk}/",
    ):
        assert_matrix(url, STAFF_PAGE)
    staff_only_redirect = {**STAFF_PAGE, "staff": 302}
    assert_matrix(f"/jobs/connections/{connection.pk}/test/", staff_only_redirect, method="post")
    edit = {"name": "Offline", "kind": "sandbox", "base_url": DEAD_URL, "enabled": "on"}
    assert_matrix(
        f"/jobs/connections/{connection.pk}/", staff_only_redirect, method="post", data=edit
    )
    new = {**edit, "name": "Another", "api_key": "sk-another-key-0000"}
    assert_matrix("/jobs/connections/new/", staff_only_redirect, method="post", data=new)
    assert ProviderConnection.objects.filter(name="Another").count() == 1


def test_methods_are_enforced(job: Job, connection: ProviderConnection) -> None:
    for action in ("resume", "sync", "archive", "unarchive"):
        assert_matrix(f"/jobs/{job.pk}/{action}/", {"member": 405}, method="get")
    for action in ("cancel", "pause"):  # GET is their confirmation page
        assert_matrix(f"/jobs/{job.pk}/{action}/", {"member": 405}, method="put")
    assert_matrix(f"/jobs/connections/{connection.pk}/test/", {"staff": 405}, method="get")
    for url in (
        f"/jobs/{job.pk}/",
        f"/jobs/{job.pk}/live.json",
        f"/jobs/{job.pk}/sections.html",
        "/jobs/connections/",
    ):
        assert_matrix(url, {"member": 405, "staff": 405}, method="post")
    assert_matrix("/jobs/new/", {"member": 405}, method="put")


def test_unknown_ids_are_404(job: Job) -> None:
    missing = "00000000-0000-0000-0000-000000000001"
    for url in (
        f"/jobs/{missing}/",
        f"/jobs/{missing}/live.json",
        f"/jobs/{missing}/sections.html",
        f"/jobs/{missing}/edit/",
    ):
        assert_matrix(url, {"member": 404})
    assert_matrix(f"/jobs/{missing}/cancel/", {"member": 404}, method="post")
    assert_matrix("/jobs/connections/999999/", {"staff": 404})


def test_csrf_is_required_for_controls(job: Job) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("member", username="csrf-member"))
    assert client.post(f"/jobs/{job.pk}/archive/").status_code == 403
    assert not Job.objects.get(pk=job.pk).archived


# --- the job page ------------------------------------------------------------------------------


def test_job_page_shows_the_run(connection: ProviderConnection, dataset: Dataset) -> None:
    validation = Dataset.objects.create(
        name="held-out", file="x.jsonl", size=1, sha256="a" * 64, line_count=1, status="valid"
    )
    job = make_job(
        connection,
        dataset,
        validation_dataset=validation,
        status="succeeded",
        fine_tuned_model="ft:gpt-4o-mini-2024-07-18:sandbox:demo:abc123",
        trained_tokens=2_000_000,
        training_file_id="file-train1",
        validation_file_id="file-valid1",
        suffix="demo",
        seed=42,
        finished_at=timezone.now(),
        last_step=60,
        error={"code": "invalid_n_examples", "message": "Too few examples", "param": None},
        last_sync_error="HTTP 503 from provider",
        launch_error="first attempt timed out",
        integrations=[{"type": "wandb", "wandb": {"project": "tuning", "entity": "team"}}],
    )
    add_events(job, 3)
    JobEvent.objects.create(
        job=job,
        provider_event_id="v",
        level="info",
        message="Files validated, moving job to queued state",
        created_at=timezone.now() - timedelta(hours=2),
    )
    for step in (20, 40, 60):
        Checkpoint.objects.create(
            job=job,
            provider_checkpoint_id=f"ckpt-{step}",
            step=step,
            created_at=timezone.now(),
            model_name=f"{job.fine_tuned_model}:ckpt-step-{step}",
            metrics={"train_loss": 0.5 - step / 1000, "full_valid_loss": 0.61},
        )
    page = client_for("viewer").get(f"/jobs/{job.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    for expected in (
        "<main",
        "<title>",
        "Succeeded",
        job.fine_tuned_model,
        "ftjob-",
        "file-train1",
        "file-valid1",
        f"/datasets/{dataset.pk}/",
        f"/datasets/{validation.pk}/",
        "held-out",
        "ckpt-step-40",
        "0.4600",
        "full_valid_loss",
        "train_loss",
        "invalid_n_examples",
        "Too few examples",
        "HTTP 503 from provider",
        "first attempt timed out",
        "Step 3/60",
        'id="charts"',
        'data-copy="ft-model"',
        "tuning",
        "2,000,000",
        "$6.00",  # 2M trained tokens × $3 per 1M for gpt-4o-mini
        "Files validated",
    ):
        assert expected in html, expected
    # The charts slot holds the dashboard's charts include.
    assert re.search(r'<section id="charts"[^>]*>', html) and "js/run_charts.js" in html
    # Viewers see no controls at all.
    for action in ("cancel", "pause", "resume", "sync", "archive", "delete-model", "edit"):
        assert f"/jobs/{job.pk}/{action}/" not in html
    assert "Clone as new job" not in html


def test_cost_is_unknown_without_a_price(connection: ProviderConnection, dataset: Dataset) -> None:
    job = make_job(
        connection,
        dataset,
        base_model="gpt-4-0613",
        model="gpt-4-0613",
        status="succeeded",
        trained_tokens=1000,
        finished_at=timezone.now(),
    )
    html = client_for("viewer").get(f"/jobs/{job.pk}/").content.decode()
    assert "unknown" in html and "no training price for gpt-4-0613" in html


def test_estimated_cost_before_training(job: Job, dataset: Dataset) -> None:
    from datasets.validation import Report

    Job.objects.filter(pk=job.pk).update(trained_tokens=None)
    tokens = Report.from_dict(dataset.report).tokens.total.capped_total(65536)
    expected = tokens * 3 * 3  # 3 epochs requested; $3 per 1M tokens
    html = client_for("viewer").get(f"/jobs/{job.pk}/").content.decode()
    assert f"{tokens * 3:,} billed tokens over 3 epochs" in html
    assert ("≈ &lt; $0.01" if expected < 10_000 else "≈ $") in html


def test_controls_follow_the_status(connection: ProviderConnection, dataset: Dataset) -> None:
    member = client_for("member")

    def actions(job: Job) -> set[str]:
        html = member.get(f"/jobs/{job.pk}/").content.decode()
        return set(re.findall(rf"/jobs/{job.pk}/([a-z-]+)/", html)) - {"edit", "guardrails"}

    running = make_job(connection, dataset, status="running")
    assert actions(running) == {"cancel", "pause", "sync", "archive"}
    paused = make_job(connection, dataset, status="paused")
    assert actions(paused) == {"cancel", "resume", "sync", "archive"}
    done = make_job(
        connection, dataset, status="succeeded", fine_tuned_model="ft:gpt-4o-mini-2024-07-18:o:s:1"
    )
    assert actions(done) == {"sync", "delete-model", "archive"}
    archived = make_job(connection, dataset, status="failed", archived=True)
    assert actions(archived) == {"sync", "unarchive"}
    pending = make_job(connection, dataset, status="pending", provider_job_id=None)
    assert actions(pending) == {"archive"}
    # A disabled or archived connection hides every provider control, and says why.
    ProviderConnection.objects.filter(pk=connection.pk).update(enabled=False)
    html = member.get(f"/jobs/{running.pk}/").content.decode()
    assert actions(running) == {"archive"}
    assert "is disabled" in html and "provider controls" in html
    ProviderConnection.objects.filter(pk=connection.pk).update(
        enabled=True, archived_at=timezone.now()
    )
    assert actions(done) == {"archive"}
    assert "is archived" in member.get(f"/jobs/{done.pk}/").content.decode()


def test_job_page_queries_do_not_grow(
    connection: ProviderConnection, dataset: Dataset, django_assert_max_num_queries: Any
) -> None:
    job = make_job(
        connection, dataset, status="succeeded", fine_tuned_model="ft:gpt-4o-mini-2024-07-18:o:s:1"
    )
    add_events(job, 300)
    for step in range(1, 11):
        Checkpoint.objects.create(
            job=job,
            provider_checkpoint_id=f"c{step}",
            step=step,
            created_at=timezone.now(),
            model_name=f"m{step}",
            metrics={"train_loss": 0.1, "valid_loss": 0.2},
        )
    AuditEntry.objects.create(action="job_sync", object_type="job", object_id=str(job.pk))
    member = client_for("member")
    member.get(f"/jobs/{job.pk}/")  # warm the session and permission caches
    # The page's own reads plus the dashboard charts include (figures, diagnosis, share links).
    with django_assert_max_num_queries(30):
        page = member.get(f"/jobs/{job.pk}/")
    assert page.status_code == 200
    assert page.content.decode().count("training loss=0.5") == 200  # the newest 200 events
    # A poll that sends the sections too (the page's key is old) renders them like the page.
    with django_assert_max_num_queries(16):
        first = member.get(f"/jobs/{job.pk}/live.json?after=0")
    assert first.status_code == 200 and "sections_html" in first.json()
    key = first.json()["sections_key"]
    with django_assert_max_num_queries(6):
        again = member.get(f"/jobs/{job.pk}/live.json", {"after": 0, "sections": key})
    assert again.status_code == 200 and "sections_html" not in again.json()
    # With the charts' share (new points and the diagnosis).
    with django_assert_max_num_queries(10):
        charts = member.get(f"/jobs/{job.pk}/live.json", {"sections": key, "after_step": 0})
    assert "diagnosis_html" in charts.json()["charts"]


def test_event_level_filter(job: Job) -> None:
    add_events(job, 2)
    JobEvent.objects.create(
        job=job, provider_event_id="e-err", level="error", message="Boom", created_at=timezone.now()
    )
    html = client_for("viewer").get(f"/jobs/{job.pk}/?level=error").content.decode()
    assert "Boom" in html and "training loss=" not in html
    # An unknown level shows everything rather than failing.
    html = client_for("viewer").get(f"/jobs/{job.pk}/?level=%3Cb%3E").content.decode()
    assert "Boom" in html and "training loss=" in html


# --- live JSON ---------------------------------------------------------------------------------


def test_live_json_returns_only_events_after_the_cursor(job: Job) -> None:
    events = add_events(job, 5)
    viewer = client_for("viewer")
    data = viewer.get(f"/jobs/{job.pk}/live.json", {"after": events[2].pk}).json()
    assert [e["id"] for e in data["events"]] == [events[3].pk, events[4].pk]
    assert data["last_event_id"] == events[4].pk
    assert data["status"] == "running" and data["terminal"] is False
    assert data["progress"] == {"last_step": 12, "total_steps": 60, "percent": 20.0}
    nothing = viewer.get(f"/jobs/{job.pk}/live.json", {"after": events[4].pk}).json()
    assert nothing["events"] == [] and nothing["last_event_id"] == events[4].pk
    everything = viewer.get(f"/jobs/{job.pk}/live.json").json()
    assert len(everything["events"]) == 5


def test_live_json_level_filter_still_moves_the_cursor(job: Job) -> None:
    infos = add_events(job, 2)
    errors = add_events(job, 1, level="error", start=2)
    data = (
        client_for("viewer").get(f"/jobs/{job.pk}/live.json", {"after": 0, "level": "error"}).json()
    )
    assert [e["id"] for e in data["events"]] == [errors[0].pk]
    assert data["last_event_id"] == max(e.pk for e in infos + errors)


def test_live_json_pages_long_backlogs(job: Job) -> None:
    add_events(job, 205)
    viewer = client_for("viewer")
    first = viewer.get(f"/jobs/{job.pk}/live.json").json()
    assert len(first["events"]) == 200 and first["has_more"] is True
    rest = viewer.get(f"/jobs/{job.pk}/live.json", {"after": first["last_event_id"]}).json()
    assert len(rest["events"]) == 5 and rest["has_more"] is False


@pytest.mark.parametrize("after", ["abc", "-1", "1.5"])
def test_live_json_rejects_bad_cursors(job: Job, after: str) -> None:
    response = client_for("viewer").get(f"/jobs/{job.pk}/live.json", {"after": after})
    assert response.status_code == 400 and "error" in response.json()


def test_live_json_rejects_unknown_levels(job: Job) -> None:
    response = client_for("viewer").get(f"/jobs/{job.pk}/live.json", {"level": "debug"})
    assert response.status_code == 400


# --- escaping ----------------------------------------------------------------------------------


def test_user_content_is_escaped(connection: ProviderConnection, dataset: Dataset) -> None:
    job = make_job(
        connection,
        dataset,
        name=XSS,
        notes="<script>alert(2)</script>\nsecond line",
        tags=["<b>bold</b>"],
        suffix="s",
        status="failed",
        error={"code": "<i>x</i>", "message": "<svg onload=alert(3)>", "param": None},
        last_sync_error="<iframe src=javascript:alert(4)>",
    )
    JobEvent.objects.create(
        job=job,
        provider_event_id="x",
        level="info",
        message="<img src=y onerror=alert(5)>",
        created_at=timezone.now(),
    )
    html = client_for("member").get(f"/jobs/{job.pk}/").content.decode()
    for raw in (
        XSS,
        "<script>alert(2)",
        "<b>bold</b>",
        "<svg onload",
        "<iframe",
        "<img src=y",
        "<i>x</i>",
    ):
        assert raw not in html, raw
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;<br>second line" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    for page in (
        f"/jobs/{job.pk}/edit/",
        f"/jobs/{job.pk}/delete-model/",
        f"/jobs/new/?clone={job.pk}",
    ):
        html = client_for("member").get(page).content.decode()
        assert XSS not in html and "<script>alert(2)" not in html, page
    # The live JSON carries the text as data; the page's script only ever sets textContent.
    live = client_for("member").get(f"/jobs/{job.pk}/live.json")
    assert live["Content-Type"] == "application/json"
    assert live.json()["name"] == XSS
    assert live.json()["events"][0]["message"] == "<img src=y onerror=alert(5)>"


def test_page_scripts_never_inject_html() -> None:
    for name in ("job_detail.js", "job_new.js"):
        script = (BASE_DIR / "static" / "js" / name).read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in script, (name, sink)
    detail = (BASE_DIR / "static" / "js" / "job_detail.js").read_text()
    assert "textContent = data.name" in detail
    assert (
        "textContent = String(event.message" in detail
        or 'cell(String(event.message || ""), "jb-wrap")' in detail
    )
    # The only markup it parses is the server-rendered sections fragment, never event text.
    assert detail.count("parseFromString") == 1 and "data.sections_html" in detail
    # Polling backs off while hidden and stops for finished jobs.
    assert "document.hidden" in detail and 'data-terminal") === "true"' in detail


def test_terminal_job_pages_do_not_poll(connection: ProviderConnection, dataset: Dataset) -> None:
    done = make_job(connection, dataset, status="cancelled", finished_at=timezone.now())
    html = client_for("viewer").get(f"/jobs/{done.pk}/").content.decode()
    assert 'data-terminal="true"' in html
    running = make_job(connection, dataset)
    html = client_for("viewer").get(f"/jobs/{running.pk}/").content.decode()
    assert (
        'data-terminal="false"' in html and f'data-live-url="/jobs/{running.pk}/live.json"' in html
    )


SECTIONS = [
    "status",
    "problems",
    "timeline",
    "provider",
    "models",
    "controls",
    "checkpoints",
    "evaluations",
]
CSRF_VALUE = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]*"')


def job_section(html: str, name: str) -> str:
    """The markup of the element marked ``data-job-section=name`` (nested same tags counted)."""
    start = re.search(rf'<(\w+)[^>]*data-job-section="{name}"', html)
    assert start, name
    depth = 0
    for tag in re.finditer(rf"<(/?){start.group(1)}\b[^>]*>", html[start.start() :]):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            return CSRF_VALUE.sub(r'\1"', html[start.start() : start.start() + tag.end()])
    raise AssertionError(f"{name} is not closed")


def test_sections_fragment_is_what_the_page_shows(
    connection: ProviderConnection, dataset: Dataset, django_assert_max_num_queries: Any
) -> None:
    job = make_job(
        connection, dataset, name=XSS, status="succeeded", last_sync_error=XSS,
        fine_tuned_model="ft:gpt-4o-mini-2024-07-18:o:s:1", finished_at=timezone.now(),
    )  # fmt: skip
    Checkpoint.objects.create(
        job=job, provider_checkpoint_id="c60", step=60, created_at=timezone.now(),
        model_name=f"{job.fine_tuned_model}:ckpt-step-60", metrics={"train_loss": 0.25},
    )  # fmt: skip
    for role in ("viewer", "member"):
        client = client_for(role)
        page = client.get(f"/jobs/{job.pk}/").content.decode()
        with django_assert_max_num_queries(12):
            response = client.get(f"/jobs/{job.pk}/sections.html")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")
        assert "no-cache" in response["Cache-Control"]
        fragment = response.content.decode()
        names = [n for n in SECTIONS if role == "member" or n != "controls"]
        # Only the sections, each exactly as the page renders it.
        assert re.findall(r'data-job-section="([a-z]+)"', fragment) == names
        assert re.findall(r'data-job-section="([a-z]+)"', page) == names
        for name in names:
            assert job_section(fragment, name) == job_section(page, name), (role, name)
        assert "<main" not in fragment and "<script" not in fragment
        assert XSS not in fragment and "&lt;img src=x onerror=alert(1)&gt;" in fragment
        assert "ckpt-step-60" in fragment and 'class="badge badge-ok"' in fragment
        controls = [f"/jobs/{job.pk}/{action}/" for action in ("sync", "delete-model", "archive")]
        if role == "member":
            assert all(url in fragment for url in controls)
            assert 'name="csrfmiddlewaretoken"' in fragment
        else:
            assert not any(url in fragment for url in controls)
            assert "Controls" not in fragment


# --- local controls ----------------------------------------------------------------------------


def test_archive_unarchive_and_edit_are_audited(job: Job) -> None:
    member = client_for("member")
    user = member.session["_auth_user_id"]
    response = member.post(f"/jobs/{job.pk}/archive/", follow=True)
    assert "Archived the job." in response.content.decode()
    assert Job.objects.get(pk=job.pk).archived
    member.post(f"/jobs/{job.pk}/unarchive/")
    assert not Job.objects.get(pk=job.pk).archived
    response = member.post(
        f"/jobs/{job.pk}/edit/", {"name": "Better name", "notes": "Good run", "tags": "a, b, a"}
    )
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    job.refresh_from_db()
    assert (job.name, job.notes, job.tags) == ("Better name", "Good run", ["a", "b"])
    actions = list(
        AuditEntry.objects.filter(object_id=str(job.pk))
        .order_by("at")
        .values_list("action", "actor")
    )
    assert actions == [
        ("job_archived", int(user)),
        ("job_unarchived", int(user)),
        ("job_annotated", int(user)),
    ]
    # The page lists who did what.
    html = member.get(f"/jobs/{job.pk}/").content.decode()
    assert "job_archived" in html and "member-user" in html


def test_edit_errors_are_shown(job: Job) -> None:
    response = client_for("member").post(
        f"/jobs/{job.pk}/edit/", {"name": "x" * 201, "tags": "t" * 41}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "at most 200 characters" in html and "Tags are at most 40 characters" in html
    assert Job.objects.get(pk=job.pk).name == ""


def test_delete_model_needs_confirmation(
    connection: ProviderConnection, dataset: Dataset, fast_failures: None
) -> None:
    job = make_job(
        connection, dataset, status="succeeded", fine_tuned_model="ft:gpt-4o-mini-2024-07-18:o:s:1"
    )
    member = client_for("member")
    page = member.get(f"/jobs/{job.pk}/delete-model/")
    assert page.status_code == 200 and "ft:gpt-4o-mini-2024-07-18:o:s:1" in page.content.decode()
    unconfirmed = member.post(f"/jobs/{job.pk}/delete-model/")
    assert (
        unconfirmed.status_code == 200
        and "Tick the box to confirm." in unconfirmed.content.decode()
    )
    # Confirmed: asked for, done by a worker (the provider is not called from the page).
    asked = member.post(f"/jobs/{job.pk}/delete-model/", {"confirm": "on"}, follow=True)
    assert (
        "Deletion of ft:gpt-4o-mini-2024-07-18:o:s:1 requested" in asked.content.decode()
        and "Deleting the fine-tuned model…" in asked.content.decode()
    )
    assert not AuditEntry.objects.filter(action="model_deleted").exists()
    assert AuditEntry.objects.filter(action="model_delete_requested").count() == 1


def test_delete_model_without_a_model_explains(job: Job) -> None:
    page = client_for("member").get(f"/jobs/{job.pk}/delete-model/")
    assert "This job has no fine-tuned model." in page.content.decode()
    response = client_for("member").post(
        f"/jobs/{job.pk}/delete-model/", {"confirm": "on"}, follow=True
    )
    assert "This job has no fine-tuned model." in response.content.decode()


def test_provider_controls_show_service_errors(job: Job, fast_failures: None) -> None:
    member = client_for("member")
    # The provider is unreachable, but the page does not call it: the cancel is asked for
    # (and audited) at once; a worker records the provider's refusal on it later.
    response = member.post(f"/jobs/{job.pk}/cancel/", {"confirm": "yes"}, follow=True)
    assert "Cancel requested; this page shows the outcome." in response.content.decode()
    pending = make_job(job.connection, None, status="pending", provider_job_id=None)
    response = member.post(f"/jobs/{pending.pk}/sync/", follow=True)
    assert "has not reached the provider yet" in response.content.decode()
    ProviderConnection.objects.filter(pk=job.connection_id).update(enabled=False)
    response = member.post(f"/jobs/{job.pk}/sync/", follow=True)
    assert "is disabled: the job cannot be synced." in response.content.decode()
    assert list(AuditEntry.objects.filter(object_type="job").values_list("action", flat=True)) == [
        "job_cancel"
    ]


def test_json_for_scripts_goes_through_json_script(
    dataset: Dataset, connection: ProviderConnection
) -> None:
    Dataset.objects.filter(pk=dataset.pk).update(name="</script><script>alert(1)</script>")
    html = client_for("member").get("/jobs/new/").content.decode()
    match = re.search(
        r'<script id="launch-data" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, "launch data missing"
    data = json.loads(match.group(1))
    assert data["datasets"][str(dataset.pk)]["name"] == "</script><script>alert(1)</script>"
    assert "<script>alert(1)" not in html

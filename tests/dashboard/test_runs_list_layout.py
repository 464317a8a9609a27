"""The runs list's layout choices on the server side: the column chooser remembered per user
(without JavaScript, a plain form), compact model names with the full id on hover, the first
steps on an empty list for each role, "Compare selected" with too few runs ticked, and the
favicon."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from dashboard.columns import CHOOSABLE, DEFAULT_HIDDEN
from dashboard.models import RunListPreference
from dashboard.presentation import compact_model
from dashboard.templatetags.dashboard_extras import soft_breaks
from jobs.services import connection_save
from tests.permissions import LOGIN, SHARE, assert_matrix, client_for

pytestmark = pytest.mark.django_db

COLUMNS_URL = "/runs/columns/"


def hidden_in_page(content: bytes) -> set[str]:
    """The columns the table hides, from its classes (``tb-hide-<key>``)."""
    match = re.search(rb'<table class="([^"]*tb-runs[^"]*)"', content)
    assert match, "no runs table"
    return {
        c.removeprefix("tb-hide-")
        for c in match.group(1).decode().split()
        if c.startswith("tb-hide-")
    }


def chooser_state(content: bytes) -> dict[str, bool]:
    """Column chooser checkboxes: {column: checked}."""
    boxes = re.findall(rb'<input type="checkbox" name="show" value="([a-z_]+)"( checked)?', content)
    return {key.decode(): bool(checked) for key, checked in boxes}


def test_the_column_choice_is_remembered_per_user_without_javascript(make_job) -> None:
    make_job()
    viewer, member = client_for("viewer"), client_for("member")
    first = viewer.get("/")
    assert hidden_in_page(first.content) == set(DEFAULT_HIDDEN)
    assert chooser_state(first.content) == {key: key not in DEFAULT_HIDDEN for key, _ in CHOOSABLE}

    shown = [key for key, _ in CHOOSABLE if key not in ("provider", "creator", "lr")]
    response = viewer.post(COLUMNS_URL, {"show": shown, "next": "/?sort=cost&dir=asc"})
    assert response.status_code == 302 and response["Location"] == "/?sort=cost&dir=asc"

    again = viewer.get("/?sort=cost&dir=asc")
    assert hidden_in_page(again.content) == {"provider", "creator", "lr"}
    assert chooser_state(again.content) == {key: key in shown for key, _ in CHOOSABLE}
    # Another user's list is untouched.
    assert hidden_in_page(member.get("/").content) == set(DEFAULT_HIDDEN)
    viewer_user = get_user_model().objects.get(username="viewer-user")
    assert RunListPreference.objects.get(user=viewer_user).hidden_columns == [
        "creator",
        "lr",
        "provider",
    ]
    assert RunListPreference.objects.count() == 1

    # Saving again replaces the choice (one row per user); everything shown hides nothing.
    viewer.post(COLUMNS_URL, {"show": [key for key, _ in CHOOSABLE]})
    assert hidden_in_page(viewer.get("/").content) == set()
    assert RunListPreference.objects.count() == 1


def test_bad_column_input_is_ignored_not_an_error(make_job) -> None:
    make_job()
    viewer = client_for("viewer")
    response = viewer.post(
        COLUMNS_URL,
        {
            "show": ["cost", "nonsense", "<script>", "cost", "x" * 5000],
            "next": "https://evil.example/",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/"
    hidden = hidden_in_page(viewer.get("/").content)
    assert hidden == {key for key, _ in CHOOSABLE} - {"cost"}
    # No column ticked at all: every choosable column hidden (the run name always shows).
    viewer.post(COLUMNS_URL, {})
    assert hidden_in_page(viewer.get("/").content) == {key for key, _ in CHOOSABLE}


def test_the_column_chooser_answers_json_to_the_page_script(make_job) -> None:
    viewer = client_for("viewer")
    response = viewer.post(
        COLUMNS_URL, {"show": ["cost", "status"]}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.json() == {"hidden": sorted({key for key, _ in CHOOSABLE} - {"cost", "status"})}


def test_column_chooser_permission_matrix() -> None:
    # A personal display preference: every reader may keep one, nobody without a role.
    expected = {
        "anonymous": LOGIN,
        SHARE: LOGIN,
        "norole": 403,
        "viewer": 302,
        "member": 302,
        "staff": 302,
    }
    assert_matrix(COLUMNS_URL, expected, method="post", data={"show": ["cost"]})
    assert_matrix(COLUMNS_URL, {"anonymous": LOGIN, "viewer": 405, "member": 405}, method="get")


@pytest.mark.parametrize(
    ("model", "short"),
    [
        ("ft:gpt-4o-mini-2024-07-18:acme-org:support-bot:AbC123xy", "ft:gpt-4o-mini:support-bot"),
        ("ft:gpt-4o-mini-2024-07-18:acme-org::AbC123xy", "ft:gpt-4o-mini:AbC123xy"),
        ("ft:gpt-4o-2024-08-06:acme-org:bot:AbC123xy:ckpt-step-40", "ft:gpt-4o:bot:ckpt-step-40"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo-0125"),
        ("my-custom-model", "my-custom-model"),
        ("", ""),
    ],
)
def test_compact_model_names(model: str, short: str) -> None:
    assert compact_model(model) == short


def test_model_names_are_compact_with_the_full_id_on_hover(make_job) -> None:
    full = "ft:gpt-4o-mini-2024-07-18:acme-org:support-bot:AbC123xy"
    job = make_job(base_model=full)
    content = client_for("viewer").get("/").content.decode()
    cell = re.search(
        rf'<tr data-run="{job.pk}">.*?<td class="mono tb-model"[^>]*title="([^"]+)"[^>]*>(.*?)</td>',
        content,
        re.S,
    )
    assert cell and cell.group(1) == full
    # It may break after its colons (and hyphens), never inside a part.
    assert cell.group(2) == '<span class="tb-text">ft:<wbr>gpt-4o-mini:<wbr>support-bot</span>'


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("support_tickets_2024_q3.jsonl", "support_<wbr>tickets_<wbr>2024_<wbr>q3.<wbr>jsonl"),
        ("ft:gpt-4o-mini:bot_v2", "ft:<wbr>gpt-4o-mini:<wbr>bot_<wbr>v2"),
        ("alexandra.montgomery@acme.example", "alexandra.<wbr>montgomery@<wbr>acme.<wbr>example"),
        ("sweep.lr.1.85", "sweep.<wbr>lr.<wbr>1.85"),  # never inside a number
        ("_private__name_", "_private__<wbr>name_"),  # nor after a leading or trailing joiner
        ("Plain words, with spaces", "Plain words, with spaces"),
        ("<b>_x&amp;", "&lt;b&gt;_<wbr>x&amp;amp;"),  # escaped, piece by piece
        ("", ""),
    ],
)
def test_soft_breaks_after_joiners(text: str, html: str) -> None:
    assert soft_breaks(text) == html


def first_steps(role: str) -> dict[str, str]:
    """The first-step links of the empty runs list: {text: href}."""
    content = client_for(role).get("/").content.decode()
    section = re.search(r'<ol class="tb-first-steps".*?</ol>', content, re.S)
    if not section:
        return {}
    return {
        re.sub(r"<[^>]+>", "", text).strip(): href
        for href, text in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', section.group(0), re.S)
    }


@override_settings(SANDBOX_ENABLED=True)
def test_empty_list_offers_the_first_steps_each_role_can_take(connection) -> None:
    sandbox_connection = connection_save(
        name="Sandbox",
        kind="sandbox",
        base_url="http://127.0.0.1:9/sandbox/v1",
        api_key="sk-sandbox",
    )
    member = first_steps("member")
    assert member == {
        "Upload a dataset": "/datasets/upload/",
        "Try the sandbox": f"/jobs/new/?connection={sandbox_connection.pk}",
        "Import history": f"/jobs/connections/{connection.pk}/history/",
    }
    staff = first_steps("staff")
    assert staff == {**member, "Add a connection": "/jobs/connections/new/",
                     "Import a history bundle": "/jobs/bundles/import/"}  # fmt: skip
    # Viewers cannot launch or upload: they are pointed at what they can read.
    viewer = first_steps("viewer")
    assert viewer == {
        "Browse datasets": "/datasets/",
        "Import history": f"/jobs/connections/{connection.pk}/history/",
    }
    for role, links in (("member", member), ("staff", staff), ("viewer", viewer)):
        client = client_for(role)
        for href in links.values():
            assert client.get(href).status_code == 200, (role, href)


@override_settings(SANDBOX_ENABLED=False)
def test_without_the_sandbox_or_connections_the_first_steps_say_what_is_missing() -> None:
    assert first_steps("member") == {"Upload a dataset": "/datasets/upload/"}
    staff = first_steps("staff")
    assert staff == {"Upload a dataset": "/datasets/upload/", "Add a connection": "/jobs/connections/new/",
                     "Import a history bundle": "/jobs/bundles/import/"}  # fmt: skip
    page = client_for("member").get("/").content.decode()
    assert "An admin adds a provider connection" in page


def test_first_steps_only_on_an_empty_unfiltered_list(make_job) -> None:
    assert first_steps("member")  # nothing yet
    client = client_for("member")
    assert "tb-first-steps" not in client.get("/?q=nothing-matches").content.decode()
    make_job()
    assert first_steps("member") == {}


def test_compare_selected_with_nothing_ticked_explains_itself_without_javascript(make_job) -> None:
    a = make_job()
    client = client_for("viewer")
    # What the form sends with nothing ticked: only its marker.
    response = client.get("/compare/", {"from": "list"}, follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert response.status_code == 200
    text = response.content.decode()
    assert "No runs were selected" in text and "tick two to 20 runs" in text
    # One ticked: the compare page with that run chosen, and why nothing is compared yet.
    response = client.get("/compare/", {"from": "list", "runs": str(a.pk)}, follow=True)
    assert response.redirect_chain == [(f"/compare/?runs={a.pk}", 302)]
    text = response.content.decode()
    assert "Only one run was selected" in text and a.name in text


def test_the_list_form_marks_its_compare_requests(make_job) -> None:
    make_job()
    page = client_for("viewer").get("/").content.decode()
    assert '<input type="hidden" name="from" value="list" form="tb-compare-form">' in page


def test_favicon_is_served_to_anyone() -> None:
    for role in ("anonymous", "viewer"):
        response = client_for(role).get("/favicon.ico")
        assert response.status_code == 200, role
        assert response["Content-Type"] == "image/svg+xml"
        assert response.content.startswith(b"<svg") and b"</svg>" in response.content
    page = client_for("viewer").get("/").content.decode()
    assert re.search(r'<link rel="icon" href="[^"]*favicon[^"]*\.svg" type="image/svg\+xml">', page)

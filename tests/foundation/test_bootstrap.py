from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from core import roles

pytestmark = pytest.mark.django_db


def test_admin_from_environment(monkeypatch, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.VAR_DIR = tmp_path
    settings.TUNEBOARD_ADMIN_USER = "boss"
    settings.TUNEBOARD_ADMIN_PASSWORD = "correct horse battery"
    out = StringIO()
    call_command("tuneboard_bootstrap", stdout=out)
    user = get_user_model().objects.get()
    assert user.username == "boss" and user.is_superuser and user.is_staff
    assert user.check_password("correct horse battery")
    assert user.groups.filter(name=roles.ADMIN).exists()
    assert "password from TUNEBOARD_ADMIN_PASSWORD" in out.getvalue()
    assert not (tmp_path / "admin-password.txt").exists()


def test_generated_password_printed_once_and_saved(monkeypatch, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.VAR_DIR = tmp_path
    settings.TUNEBOARD_ADMIN_USER = None
    settings.TUNEBOARD_ADMIN_PASSWORD = None
    out = StringIO()
    call_command("tuneboard_bootstrap", stdout=out)
    saved = (tmp_path / "admin-password.txt").read_text()
    password = saved.split("password: ")[1].strip()
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert password in out.getvalue()
    assert (tmp_path / "admin-password.txt").stat().st_mode & 0o777 == 0o600

    again = StringIO()
    call_command("tuneboard_bootstrap", stdout=again)
    assert again.getvalue() == ""
    assert get_user_model().objects.count() == 1


def test_connections_created_once_and_kept_in_step(monkeypatch, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from jobs.models import ProviderConnection

    settings.VAR_DIR = tmp_path
    settings.SANDBOX_API_KEYS = ["sk-sandbox-first"]
    settings.OPENAI_API_KEY = "sk-live-abcdefgh1234"
    call_command(
        "tuneboard_bootstrap",
        "--sandbox-url",
        "http://127.0.0.1:8000/sandbox/v1",
        stdout=StringIO(),
    )
    sandbox = ProviderConnection.objects.get(name="Sandbox")
    assert (sandbox.kind, sandbox.base_url) == ("sandbox", "http://127.0.0.1:8000/sandbox/v1")
    assert sandbox.get_api_key() == "sk-sandbox-first"
    openai = ProviderConnection.objects.get(name="OpenAI")
    assert openai.kind == "openai" and openai.get_api_key() == "sk-live-abcdefgh1234"
    assert "sk-live" not in openai.api_key_encrypted and openai.api_key_hint == "1234"
    # A second run on another port updates the URL instead of adding a connection.
    call_command(
        "tuneboard_bootstrap",
        "--sandbox-url",
        "http://127.0.0.1:9000/sandbox/v1",
        stdout=StringIO(),
    )
    assert ProviderConnection.objects.count() == 2
    assert (
        ProviderConnection.objects.get(name="Sandbox").base_url
        == "http://127.0.0.1:9000/sandbox/v1"
    )

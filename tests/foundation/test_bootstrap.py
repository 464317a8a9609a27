from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from dashboard import roles

pytestmark = pytest.mark.django_db


def test_admin_from_environment(monkeypatch, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("TUNEBOARD_ADMIN_USER", "boss")
    monkeypatch.setenv("TUNEBOARD_ADMIN_PASSWORD", "correct horse battery")
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
    monkeypatch.delenv("TUNEBOARD_ADMIN_USER", raising=False)
    monkeypatch.delenv("TUNEBOARD_ADMIN_PASSWORD", raising=False)
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

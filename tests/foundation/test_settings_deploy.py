"""Settings behaviour under production-like environments, each in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from tests.conftest import BASE_DIR

PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({k: getattr(s, k) for k in ('DEBUG', 'SESSION_COOKIE_SECURE', "
    "'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', 'SECURE_SSL_REDIRECT', 'ALLOWED_HOSTS')}))"
)


def production_env(tmp_path, **extra: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "TUNEBOARD_VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "k" * 20 + "Zq8#pL2@vN5!xR7$tY1^wE4&uI9*oP3(aS6)dF0_" + "m" * 10,
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "tuneboard.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://tuneboard.example.com",
        "DATABASE_URL": "postgres://tuneboard:secret@db.internal:5432/tuneboard",
        "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
    }
    env.update(extra)
    return env


def run_python(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


def test_check_deploy_passes_with_production_env(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_debug_off_by_default_with_secure_cookies_and_hsts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_python(["-c", PROBE], production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_SSL_REDIRECT": True,
        "ALLOWED_HOSTS": ["tuneboard.example.com"],
    }


def test_debug_relaxes_transport_security(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_python(["-c", PROBE], production_env(tmp_path, DEBUG="1"))
    values = json.loads(result.stdout)
    assert values["DEBUG"] is True
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0


def test_bad_boolean_stops_start_up(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_python(["-c", PROBE], production_env(tmp_path, DEBUG="treu"))
    assert result.returncode != 0
    assert "DEBUG='treu' is not a boolean" in result.stderr


def test_bad_encryption_key_stops_start_up(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_python(["-c", PROBE], production_env(tmp_path, FIELD_ENCRYPTION_KEY="short"))
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY holds a value that is not a Fernet key" in result.stderr


def test_non_postgres_database_rejected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_python(["-c", PROBE], production_env(tmp_path, DATABASE_URL="sqlite:///x.db"))
    assert result.returncode != 0
    assert "DATABASE_URL must point to PostgreSQL" in result.stderr


SECRETS_PROBE = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.SECRET_KEY, s.FIELD_ENCRYPTION_KEYS[0])"
)


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEY"])
def test_missing_secret_stops_production_start_up(tmp_path, missing: str) -> None:  # type: ignore[no-untyped-def]
    env = production_env(tmp_path)
    del env[missing]
    result = run_python(["manage.py", "check"], env)
    assert result.returncode != 0
    assert f"{missing} is not set." in result.stderr
    assert "same value on every machine" in result.stderr
    assert "Traceback" not in result.stderr.split(f"{missing} is not set.")[1]
    # Nothing was invented on the way.
    assert not (tmp_path / "var").exists()


def test_debug_generates_development_secrets_in_var(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = production_env(tmp_path, DEBUG="true")
    del env["SECRET_KEY"], env["FIELD_ENCRYPTION_KEY"]
    first = run_python(["-c", SECRETS_PROBE], env)
    second = run_python(["-c", SECRETS_PROBE], env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "var" / "field_encryption_key").stat().st_mode & 0o777 == 0o600


def test_production_defaults_leave_the_sandbox_out(tmp_path) -> None:  # type: ignore[no-untyped-def]
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "from django.urls import resolve, Resolver404\n"
        "def routed(path):\n"
        "    try:\n        resolve(path)\n        return True\n"
        "    except Resolver404:\n        return False\n"
        "print(s.SANDBOX_ENABLED, s.SANDBOX_API_KEYS, s.WEBHOOK_ALLOWED_NETWORKS, "
        "routed('/sandbox/control/faults'), routed('/sandbox/v1/models'), routed('/healthz'))"
    )
    result = run_python(["-c", probe], production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "[]", "[]", "False", "False", "True"]
    enabled = run_python(
        ["-c", probe], production_env(tmp_path, SANDBOX_ENABLED="true", SANDBOX_API_KEYS="sk-a")
    )
    assert enabled.stdout.split() == ["True", "['sk-a']", "[]", "True", "True", "True"]


def test_enabled_sandbox_needs_its_keys_outside_development(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_python(["-c", PROBE], production_env(tmp_path, SANDBOX_ENABLED="true"))
    assert result.returncode != 0
    assert "SANDBOX_API_KEYS is not set." in result.stderr


def test_webhook_networks_parsed_strictly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.WEBHOOK_ALLOWED_NETWORKS)"
    )
    ok = run_python(
        ["-c", probe], production_env(tmp_path, WEBHOOK_ALLOWED_NETWORKS="10.1.2.3/8, ::1")
    )
    assert ok.stdout.strip() == "['10.0.0.0/8', '::1/128']", ok.stderr
    bad = run_python(["-c", probe], production_env(tmp_path, WEBHOOK_ALLOWED_NETWORKS="intranet"))
    assert bad.returncode != 0
    assert "WEBHOOK_ALLOWED_NETWORKS holds 'intranet', which is not an IP network" in bad.stderr

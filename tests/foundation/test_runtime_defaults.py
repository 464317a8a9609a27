"""What `make run` and `make test` hand their processes: development secrets kept under var/
(settings alone refuse to start without them) and the sandbox switched on."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet

from config.env import validate_fernet_keys
from runtime.supervisor import apply_defaults


def test_development_secrets_generated_once_into_var(tmp_path: Path) -> None:
    env = {"TUNEBOARD_VAR_DIR": str(tmp_path), "SANDBOX_ENABLED": ""}
    apply_defaults(env)
    assert len(env["SECRET_KEY"]) >= 50
    validate_fernet_keys("FIELD_ENCRYPTION_KEY", [env["FIELD_ENCRYPTION_KEY"]])
    assert env["SANDBOX_API_KEYS"].startswith("sk-sandbox-")
    assert env["SANDBOX_ENABLED"] == "true"
    for name in ("secret_key", "field_encryption_key", "sandbox_api_key"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    again = {"TUNEBOARD_VAR_DIR": str(tmp_path)}
    apply_defaults(again)
    for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "SANDBOX_API_KEYS"):
        assert again[name] == env[name]


def test_explicit_values_win(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    env = {
        "TUNEBOARD_VAR_DIR": str(tmp_path),
        "SECRET_KEY": "s" * 60,
        "FIELD_ENCRYPTION_KEY": key,
        "SANDBOX_API_KEYS": "sk-mine",
        "SANDBOX_ENABLED": "false",
    }
    apply_defaults(env)
    assert (env["SECRET_KEY"], env["FIELD_ENCRYPTION_KEY"]) == ("s" * 60, key)
    assert (env["SANDBOX_API_KEYS"], env["SANDBOX_ENABLED"]) == ("sk-mine", "false")
    assert not (tmp_path / "secret_key").exists()
    assert not (tmp_path / "field_encryption_key").exists()

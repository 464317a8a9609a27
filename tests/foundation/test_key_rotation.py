"""Rotating FIELD_ENCRYPTION_KEY: `manage.py rotate_encryption_key` re-encrypts every stored
secret (provider API keys, webhook secrets) with the new first key, on real rows, so that the
old key can be dropped; what no key reads is reported and left alone."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from core import crypto
from jobs.models import ProviderConnection
from jobs.services import connection_save

pytestmark = pytest.mark.django_db

OLD, NEW, LOST = (Fernet.generate_key().decode() for _ in range(3))


def connection(name: str, api_key: str, webhook_secret: str | None = None) -> ProviderConnection:
    return connection_save(
        name=name, kind="openai", base_url="https://api.openai.com/v1", api_key=api_key,
        webhook_secret=webhook_secret,
    )  # fmt: skip


def raw(pk: int) -> tuple[str, str]:
    return ProviderConnection.objects.values_list(
        "api_key_encrypted", "webhook_secret_encrypted"
    ).get(pk=pk)


def test_every_encrypted_column_is_found() -> None:
    found = {(model._meta.label, name) for model, name in crypto.encrypted_columns()}
    assert found == {
        ("jobs.ProviderConnection", "api_key_encrypted"),
        ("jobs.ProviderConnection", "webhook_secret_encrypted"),
    }


def test_rotation_reencrypts_every_secret_so_the_old_key_can_go(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    first = connection("First", "sk-first-1111", webhook_secret="whsec_first")
    second = connection("Second", "sk-second-2222")
    before = {first.pk: raw(first.pk), second.pk: raw(second.pk)}

    settings.FIELD_ENCRYPTION_KEYS = [NEW]  # the old key dropped too early: nothing reads
    with pytest.raises(crypto.DecryptionError):
        ProviderConnection.objects.get(pk=first.pk).get_api_key()

    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    out = StringIO()
    call_command("rotate_encryption_key", stdout=out)
    assert "Re-encrypted 3 stored secret(s)" in out.getvalue()
    assert "the other keys can be removed" in out.getvalue()
    assert raw(second.pk)[1] == ""  # no webhook secret: nothing to encrypt
    for pk, (api_key, webhook_secret) in before.items():
        assert raw(pk)[0] != api_key
        assert raw(pk)[1] != webhook_secret or webhook_secret == ""

    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    first = ProviderConnection.objects.get(pk=first.pk)
    assert first.get_api_key() == "sk-first-1111"
    assert first.get_webhook_secret() == "whsec_first"
    assert ProviderConnection.objects.get(pk=second.pk).get_api_key() == "sk-second-2222"

    # Running it again changes nothing.
    rotated = raw(first.pk)
    again = StringIO()
    call_command("rotate_encryption_key", stdout=again)
    assert "Re-encrypted 0 stored secret(s)" in again.getvalue() and "3 already" in again.getvalue()
    assert raw(first.pk) == rotated


def test_secrets_no_key_reads_are_reported_and_left_alone(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FIELD_ENCRYPTION_KEYS = [LOST]
    orphan = connection("Orphan", "sk-orphan-0000")
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    kept = connection("Kept", "sk-kept-0000")
    orphan_token = raw(orphan.pk)[0]

    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    out = StringIO()
    with pytest.raises(CommandError) as error:
        call_command("rotate_encryption_key", stdout=out)
    assert "1 stored secret(s) cannot be decrypted" in str(error.value)
    assert f"jobs.providerconnection #{orphan.pk} api_key_encrypted" in str(error.value)
    assert "Re-encrypted 1 stored secret(s)" in out.getvalue()
    assert raw(orphan.pk)[0] == orphan_token
    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    assert ProviderConnection.objects.get(pk=kept.pk).get_api_key() == "sk-kept-0000"

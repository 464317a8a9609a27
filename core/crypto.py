"""Encryption at rest for secrets such as provider API keys (Fernet, keys from
FIELD_ENCRYPTION_KEY; the first key encrypts, all keys decrypt, so keys can be rotated).

Columns holding such tokens are text fields named ``*_encrypted``, in any app: that is how
``secrets_reencrypt`` (``manage.py rotate_encryption_key``) finds every one of them without
the apps below core having to register anywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.db import models

ENCRYPTED_SUFFIX = "_encrypted"


class DecryptionError(Exception):
    """The stored secret cannot be read with the configured keys (wrong or rotated-out key)."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY; was the key changed?"
        ) from None


def encrypted_columns() -> list[tuple[type[models.Model], str]]:
    """Every (model, field name) that stores a token, by the ``*_encrypted`` convention."""
    return [
        (model, column.name)
        for model in apps.get_models()
        for column in model._meta.concrete_fields
        if column.name.endswith(ENCRYPTED_SUFFIX) and isinstance(column, models.TextField)
    ]


@dataclass
class Reencryption:
    reencrypted: int = 0
    current: int = 0  # already readable with the first key: left as they are
    unreadable: list[str] = field(default_factory=list)  # "app.model #pk field"


def secrets_reencrypt() -> Reencryption:
    """Re-encrypt with the first FIELD_ENCRYPTION_KEY every stored token that only an older key
    can read, so that the older keys can then be removed. Each row is updated only if its token
    is still the one that was read (a concurrent save already used the first key). Tokens no
    configured key reads are reported and left alone. Safe to run again."""
    keys = tuple(settings.FIELD_ENCRYPTION_KEYS)
    every_key, first_key = _fernet(keys), Fernet(keys[0].encode())
    outcome = Reencryption()
    for model, name in encrypted_columns():
        rows = model._base_manager.exclude(**{name: ""}).values_list("pk", name)
        for pk, token in rows.iterator():
            try:
                first_key.decrypt(token.encode())
            except InvalidToken:
                pass
            else:
                outcome.current += 1
                continue
            try:
                # MultiFernet.rotate: decrypt with any key, encrypt with the first, same timestamp.
                fresh = every_key.rotate(token.encode()).decode()
            except InvalidToken:
                outcome.unreadable.append(f"{model._meta.label_lower} #{pk} {name}")
                continue
            outcome.reencrypted += model._base_manager.filter(**{"pk": pk, name: token}).update(
                **{name: fresh}
            )
    return outcome

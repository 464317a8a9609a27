"""Strict parsing of configuration from environment variables.

A misspelt boolean must stop the process at start-up rather than silently turn a security
setting off, so every parser raises ``ImproperlyConfigured`` on values it does not recognise.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
FALSE_VALUES = frozenset({"0", "false", "no", "off"})


class EnvError(ImproperlyConfigured):
    pass


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    if value is None:
        return None
    value = value.strip()
    # An empty assignment (FOO=) in an env file means "not set", like most 12-factor tools.
    return value or None


def env_str(
    name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    value = _raw(name, environ)
    return default if value is None else value


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in TRUE_VALUES:
        return True
    if lowered in FALSE_VALUES:
        return False
    allowed = ", ".join(sorted(TRUE_VALUES | FALSE_VALUES))
    raise EnvError(f"{name}={value!r} is not a boolean; use one of: {allowed}")


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise EnvError(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise EnvError(f"{name}={number} is below the minimum {minimum}")
    if maximum is not None and number > maximum:
        raise EnvError(f"{name}={number} is above the maximum {maximum}")
    return number


def env_float(
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> float:
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise EnvError(f"{name}={value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise EnvError(f"{name}={value!r} is not a finite number")
    if minimum is not None and number < minimum:
        raise EnvError(f"{name}={number} is below the minimum {minimum}")
    return number


def env_list(
    name: str, default: list[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> list[str]:
    value = _raw(name, environ)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_path(name: str, default: Path, *, environ: Mapping[str, str] | None = None) -> Path:
    value = _raw(name, environ)
    return default if value is None else Path(value).expanduser().resolve()


def persistent_secret(path: Path, factory: Callable[[], str]) -> str:
    """Return the secret stored at ``path``, creating it (mode 600) on first use.

    Lets a single-machine install run with no configuration while keeping sessions and
    encrypted keys valid across restarts; multi-machine deployments set the variable instead.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = factory()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process won the race; use what it wrote.
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


def required_secret(
    name: str,
    *,
    development_file: Path | None,
    factory: Callable[[], str],
    environ: Mapping[str, str] | None = None,
) -> str:
    """The secret in ``name``. Unset, it is generated into ``development_file`` when one is
    given (development only), and otherwise stops start-up: a secret that each machine invents
    for itself breaks every other machine (sessions, stored API keys) without a word."""
    value = _raw(name, environ)
    if value is not None:
        return value
    if development_file is None:
        raise EnvError(
            f"{name} is not set. Set it in the environment, with the same value on every machine "
            "(see .env.example). Only `make run`, `make test` and DEBUG=true generate one for "
            "development."
        )
    return persistent_secret(development_file, factory)


def env_networks(name: str, *, environ: Mapping[str, str] | None = None) -> list[str]:
    """Comma-separated IP networks (``10.0.0.0/8``, ``::1``) in their normal form."""
    networks = []
    for item in env_list(name, environ=environ):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise EnvError(
                f"{name} holds {item!r}, which is not an IP network (e.g. 10.0.0.0/8 or ::1)"
            ) from None
    return networks


def validate_fernet_keys(name: str, keys: list[str]) -> list[str]:
    from cryptography.fernet import Fernet

    if not keys:
        raise EnvError(f"{name} must hold at least one Fernet key")
    for key in keys:
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise EnvError(
                f"{name} holds a value that is not a Fernet key (32 url-safe base64-encoded bytes); "
                'generate one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"'
            ) from None
    return keys

"""Health checks the apps above core add to /healthz and the System page.

Core cannot import them (it is the bottom layer), so each app registers its checks in its
``AppConfig.ready``. A check returns ``{"ok": bool, ...}`` with an ``error`` sentence when not
ok; /healthz is public, so the sentence names the problem, never paths or secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[], dict[str, Any]]

_checks: dict[str, Check] = {}


def register(name: str, check: Check) -> None:
    _checks[name] = check


def registered() -> dict[str, Check]:
    return dict(_checks)

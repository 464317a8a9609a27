"""Plain pytest setup for the sandbox simulation tests: no Django, no database."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast_and_plain() -> None:
    """Overrides tests/conftest.py's Django settings tweak: these tests use no Django and must
    run with ``-p no:django``, where its ``settings`` fixture does not exist."""

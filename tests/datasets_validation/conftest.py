"""Pytest setup for the validation engine tests (plain pytest: no Django, no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import COOKBOOK


@pytest.fixture
def cookbook() -> Path:
    if not COOKBOOK.is_dir():
        pytest.skip("shared/datasets/openai-cookbook is not present")
    return COOKBOOK


@pytest.fixture(autouse=True)
def _fast_and_plain() -> None:
    """Overrides tests/conftest.py's Django settings tweak: these tests use no Django, and
    must run with ``-p no:django`` where its ``settings`` fixture does not exist."""

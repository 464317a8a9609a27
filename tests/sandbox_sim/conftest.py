"""Plain pytest setup for the sandbox simulation tests: no Django, no database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_SHARED_TIKTOKEN = Path(__file__).resolve().parents[2].parent / "shared" / "tiktoken-cache"

if "TIKTOKEN_CACHE_DIR" not in os.environ and _SHARED_TIKTOKEN.is_dir():
    # Offline machines: tiktoken finds its BPE files here (see shared/tiktoken-cache/README).
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_SHARED_TIKTOKEN)


@pytest.fixture(autouse=True)
def _fast_and_plain() -> None:
    """Overrides tests/conftest.py's Django settings tweak: these tests use no Django and must
    run with ``-p no:django``, where its ``settings`` fixture does not exist."""

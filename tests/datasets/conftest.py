from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from tests.datasets.helpers import COOKBOOK
from tests.permissions import client_for


@pytest.fixture(autouse=True)
def _private_media(request: pytest.FixtureRequest, settings: object, tmp_path: Path) -> None:
    """Each test stores files in its own MEDIA_ROOT, so "nothing left behind" is checkable.
    Worker tests keep the shared one: the worker process reads files from it."""
    if request.node.get_closest_marker("worker") is None:
        settings.MEDIA_ROOT = str(tmp_path / "media")  # type: ignore[attr-defined]


@pytest.fixture
def member() -> Client:
    return client_for("member")


@pytest.fixture
def viewer() -> Client:
    return client_for("viewer")


@pytest.fixture
def staff() -> Client:
    return client_for("staff")


@pytest.fixture
def cookbook() -> Path:
    if not COOKBOOK.is_dir():
        pytest.skip("shared/datasets/openai-cookbook is not present")
    return COOKBOOK

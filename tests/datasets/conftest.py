from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.test import Client

from datasets.models import BaseModel
from tests.datasets.helpers import COOKBOOK, SHARED
from tests.permissions import client_for

if "TIKTOKEN_CACHE_DIR" not in os.environ and (SHARED / "tiktoken-cache").is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(SHARED / "tiktoken-cache")


@pytest.fixture(autouse=True)
def _private_media(request: pytest.FixtureRequest, settings: object, tmp_path: Path) -> None:
    """Each test stores files in its own MEDIA_ROOT, so "nothing left behind" is checkable.
    Worker tests keep the shared one: the worker process reads files from it."""
    if request.node.get_closest_marker("worker") is None:
        settings.MEDIA_ROOT = str(tmp_path / "media")  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _catalog(request: pytest.FixtureRequest) -> None:
    """The base-model catalog comes from a data migration, and transactional tests (ours and
    other apps') flush every table afterwards; put the seeded rows back when they are gone."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = marker.kwargs.get("transaction", False)
    request.getfixturevalue("transactional_db" if transactional else "db")
    if not BaseModel.objects.exists():
        seed = importlib.import_module("datasets.migrations.0002_seed_base_models").seed
        seed(django_apps, None)


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

"""The WSGI and ASGI entry points freeze what start-up loaded, so full garbage collections
during requests walk only what requests made."""

from __future__ import annotations

import gc
import importlib
import sys

import pytest


@pytest.mark.parametrize("module", ["config.wsgi", "config.asgi"])
def test_entry_point_freezes_the_loaded_objects(module: str) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    sys.modules.pop(module, None)
    try:
        loaded = importlib.import_module(module)
        assert callable(loaded.application)
        # Django's modules, models and URL patterns at least: far more than a few objects.
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
        sys.modules.pop(module, None)

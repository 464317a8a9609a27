"""/api/v1/: the operations authenticate their own callers (tokens), so the site's login
requirement does not apply to them; the docs page and the OpenAPI description stay behind
the login like every other page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern, URLResolver
from django.views.decorators.http import require_GET

from dashboard.api.api import api

SIGNED_IN_ONLY = frozenset({"openapi-view", "openapi-json"})


def _patterns() -> list[URLPattern | URLResolver]:
    patterns, _app, _namespace = api.urls
    for pattern in patterns:
        if not isinstance(pattern, URLPattern):
            continue
        if pattern.name in SIGNED_IN_ONLY:
            pattern.callback = require_GET(pattern.callback)
        else:
            pattern.callback = login_not_required(pattern.callback)
    return patterns


app_name = "api-v1"
urlpatterns = _patterns()

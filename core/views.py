"""The health check (public, for load balancers and monitors) and the System page."""

from __future__ import annotations

import sys

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from core import selectors, services
from core.middleware import database_is_down, database_optional, database_unavailable
from core.permissions import member_required


@database_optional
@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    health = selectors.health_status()
    status = "ok" if health.healthy else "unhealthy"
    return JsonResponse({"status": status, **health.checks}, status=200 if health.healthy else 503)


@require_GET
def system(request: HttpRequest) -> HttpResponse:
    health = selectors.health_status()
    context = {
        "health": health,
        "probes": selectors.probes_recent(),
        "stuck": selectors.work_stuck() if health.checks["database"]["ok"] else [],
    }
    return render(request, "core/system.html", context, status=200)


@require_POST
@member_required
def probe_create(request: HttpRequest) -> HttpResponse:
    probe = services.probe_request(user=request.user)
    messages.info(request, f"Test task {probe.pk} sent to the worker.")
    return redirect("system")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an uncaught error because the database went away (in a middleware, say,
    where DatabaseUnavailableMiddleware cannot catch it) is a 503 like any other page's."""
    # Django calls this while handling the exception, so it is the current one.
    if database_is_down(sys.exc_info()[1]):
        return database_unavailable(request)
    return defaults.server_error(request)


@database_optional
@login_not_required
@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page links: the same SVG, for a day."""
    from django.contrib.staticfiles import finders

    path = finders.find("favicon.svg")
    if not path:
        return HttpResponse(status=404)
    with open(path, "rb") as handle:
        response = HttpResponse(handle.read(), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    return response

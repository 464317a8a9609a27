"""The health check (public, for load balancers and monitors) and the System page."""

from __future__ import annotations

import sys

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import selectors, services
from core.forms import ApiTokenForm
from core.middleware import database_is_down, database_optional, database_unavailable
from core.permissions import can_read, member_required


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


# --- API tokens ----------------------------------------------------------------------------------


def _tokens_page(
    request: HttpRequest, form: ApiTokenForm, *, created: str = "", status: int = 200
) -> HttpResponse:
    response = render(
        request,
        "core/api_tokens.html",
        {"form": form, "tokens": selectors.api_tokens_of(request.user), "created": created},
        status=status,
    )
    # The page may hold a token's secret, shown once: never kept by a cache or the history.
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    if not can_read(request.user):
        raise PermissionDenied("Your account has no role: it cannot have API tokens.")
    if request.method == "GET":
        return _tokens_page(request, ApiTokenForm(user=request.user))
    form = ApiTokenForm(request.POST, user=request.user)
    if not form.is_valid():
        return _tokens_page(request, form, status=400)
    try:
        token, raw = services.api_token_create(
            user=request.user,
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            expires_at=form.expires_at(),
        )
    except services.ApiTokenError as exc:
        form.add_error(None, str(exc))
        return _tokens_page(request, form, status=400)
    messages.success(request, f"Token “{token.name}” created. Copy it now: it is not shown again.")
    return _tokens_page(request, ApiTokenForm(user=request.user), created=raw)


@require_POST
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = selectors.api_token_of(user=request.user, pk=pk)
    if token is None:
        raise Http404("No such token of yours.")
    services.api_token_revoke(token=token, actor=request.user)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("api_tokens")

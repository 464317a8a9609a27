import logging
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from django import db
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from core import roles

log = logging.getLogger(__name__)
_View = TypeVar("_View", bound=Callable[..., HttpResponse])


class RoleRequiredMiddleware:
    """A signed-in account without a role sees nothing (403) until an admin gives it one.

    Runs after LoginRequiredMiddleware and honours the same ``login_required = False`` marker
    that ``login_not_required`` puts on public views. The admin enforces staff status itself.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if not getattr(view_func, "login_required", True):
            return None
        if request.path.startswith("/admin/"):
            return None
        user = request.user
        if user.is_authenticated and not user.has_perm(roles.READ):
            raise PermissionDenied("Your account has no role yet; ask an admin to add you.")
        return None


# Errors that mean "no database right now" when the connection turns out to be unusable:
# Django's wrappers, and psycopg's own for code that talks to the driver directly.
DATABASE_DOWN_ERRORS: tuple[type[Exception], ...] = (
    db.OperationalError,
    db.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
DATABASE_DOWN_MESSAGE = (
    "Tuneboard cannot reach its database right now (it may be restarting). "
    "Nothing is lost; please try again in a moment."
)
RETRY_AFTER_SECONDS = 10


def database_optional(view: _View) -> _View:
    """Marks a view that copes without the database itself (``/healthz`` reports it): it runs
    while the database is away, as if nobody were signed in."""
    view.database_optional = True  # type: ignore[attr-defined]
    return view


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """The 503 a page gets while the database is away: plain text for scripts, a short page
    for people. Renders nothing that needs the database (no request context)."""
    if not request.accepts("text/html"):
        response: HttpResponse = JsonResponse(
            {"error": {"message": DATABASE_DOWN_MESSAGE, "type": "database_unavailable"}},
            status=503,
        )
    else:
        html = render_to_string(
            "503.html", {"message": DATABASE_DOWN_MESSAGE, "retry_after": RETRY_AFTER_SECONDS}
        )
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """While PostgreSQL is away (restarting after a crash, say), every page answers 503 with a
    short message instead of a 500, and pages work again by themselves once it is back.

    Before any view (and before the session or the user is loaded, which needs the database)
    the connection is checked: a connection that died is closed (Django's own health check,
    the one its first query would run) and a new one is opened, or the page gets its 503. A
    view that fails because the connection went away meanwhile gets the same 503; its broken
    connection is closed at the end of the request, so the next one opens a fresh one. (What
    fails elsewhere, in another middleware say, reaches ``core.views.server_error``, which
    answers the same 503.)
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        try:
            connection.close_if_health_check_failed()
            connection.ensure_connection()
        except DATABASE_DOWN_ERRORS:
            if getattr(view_func, "database_optional", False):
                # The session cannot be read, and this view needs nobody signed in.
                request.user = AnonymousUser()
                return None
            log.warning("database unavailable for %s", request.path)
            return database_unavailable(request)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # A query-level OperationalError (a statement timeout, a lock) on a working connection
        # is a bug or a real failure: it stays a 500.
        if database_is_down(exception):
            log.warning("database went away during %s: %s", request.path, exception)
            return database_unavailable(request)
        return None


def database_is_down(exception: BaseException | None) -> bool:
    """Whether ``exception`` came from a database connection that is gone (not from a query
    that failed on a working connection)."""
    if not isinstance(exception, DATABASE_DOWN_ERRORS):
        return False
    if connection.connection is None:
        return True
    try:
        return not connection.is_usable()
    except DATABASE_DOWN_ERRORS:
        return True

"""The one set of permission helpers every view uses (roles are in ``core.roles``).

What a user may do comes from their role alone. The staff flag only opens the Django admin's
door (where model permissions decide again); in Tuneboard's pages a staff account without the
member or admin role is a viewer, or nobody, like any other account with that role.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from core import roles

# Views that change something: members and admins; viewers get 403, anonymous users the login.
member_required = permission_required(roles.ACT, raise_exception=True)


def can_act(user: Any) -> bool:
    """Whether ``user`` (possibly anonymous or None) may change things: launch, edit, share."""
    return bool(user is not None and user.is_authenticated and user.has_perm(roles.ACT))


def can_read(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_perm(roles.READ))


def is_admin(user: Any) -> bool:
    """Tuneboard's admin pages (connections, audit log, bundle import, everyone's share links):
    a staff account that may also act (the member or admin role)."""
    return bool(can_act(user) and user.is_staff)


def admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Admin pages: anyone else gets 403 (anonymous users are sent to log in before this)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_admin(request.user):
            raise PermissionDenied("This page is for admins.")
        return view(request, *args, **kwargs)

    return wrapped

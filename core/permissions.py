"""The one set of permission helpers every view uses (roles are in ``core.roles``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import permission_required

from core import roles

# Views that change something: members and admins; viewers get 403, anonymous users the login.
member_required = permission_required(roles.ACT, raise_exception=True)


def can_act(user: Any) -> bool:
    """Whether ``user`` (possibly anonymous or None) may change things: launch, edit, share."""
    return bool(user is not None and user.is_authenticated and user.has_perm(roles.ACT))


def can_read(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_perm(roles.READ))

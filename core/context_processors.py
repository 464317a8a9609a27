from django.http import HttpRequest

from core import permissions


def role_flags(request: HttpRequest) -> dict[str, bool]:
    # Requests that never went through the authentication middleware have no ``user``.
    if not hasattr(request, "user") or not request.user.is_authenticated:
        return {"can_act": False, "is_admin": False, "is_staff": False}
    user = request.user
    return {
        "can_act": permissions.can_act(user),
        # Tuneboard's admin pages; ``is_staff`` only opens the Django admin's door.
        "is_admin": permissions.is_admin(user),
        "is_staff": user.is_staff,
    }

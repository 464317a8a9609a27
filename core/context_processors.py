from django.http import HttpRequest

from core import roles


def role_flags(request: HttpRequest) -> dict[str, bool]:
    user = getattr(request, "user", None)
    authenticated = bool(user and user.is_authenticated)
    return {
        "can_act": authenticated and user.has_perm(roles.ACT),
        "is_staff": authenticated and user.is_staff,
    }

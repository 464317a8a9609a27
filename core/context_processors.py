from django.http import HttpRequest

from core import roles


def role_flags(request: HttpRequest) -> dict[str, bool]:
    # Requests that never went through the authentication middleware have no ``user``.
    if not hasattr(request, "user") or not request.user.is_authenticated:
        return {"can_act": False, "is_staff": False}
    return {"can_act": request.user.has_perm(roles.ACT), "is_staff": request.user.is_staff}

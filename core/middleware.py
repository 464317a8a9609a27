from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from core import roles


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

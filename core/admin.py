from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from django.http import HttpRequest

from core import services
from core.models import ApiToken, AuditEntry, Heartbeat, TaskProbe


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin[Heartbeat]):
    list_display = ("name", "last_seen", "detail")
    list_filter = ("name",)
    search_fields = ("name", "detail")
    readonly_fields = ("name", "last_seen", "detail")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(TaskProbe)
class TaskProbeAdmin(admin.ModelAdmin[TaskProbe]):
    list_display = ("id", "requested_by", "requested_at", "completed_at", "worker")
    list_filter = ("requested_at", ("completed_at", admin.EmptyFieldListFilter))
    search_fields = ("worker", "requested_by__username")
    readonly_fields = ("requested_by", "requested_at", "completed_at", "worker")
    actions = ("send_again",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Send a new test task through the worker")
    def send_again(self, request: HttpRequest, queryset: QuerySet[TaskProbe]) -> None:
        probe = services.probe_request(user=request.user)
        self.message_user(request, f"Test task {probe.pk} sent.", messages.INFO)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin[AuditEntry]):
    list_display = ("at", "actor", "action", "object_type", "object_repr")
    list_filter = ("action", "object_type", "at")
    search_fields = ("object_id", "object_repr", "actor__username")
    readonly_fields = ("at", "actor", "action", "object_type", "object_id", "object_repr", "detail")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # the log is evidence: not even a superuser may rewrite it


# Django's two-box filter widget (filter_horizontal) labels its search icon with an aria-label
# on a bare <span>, which axe-core counts as a serious violation; Tuneboard's three role groups
# and few permissions read as well in a plain multiple select, which is labelled.
class AccessibleGroupAdmin(GroupAdmin):
    filter_horizontal = ()


class AccessibleUserAdmin(UserAdmin[User]):
    filter_horizontal = ()


admin.site.unregister(Group)
admin.site.register(Group, AccessibleGroupAdmin)
admin.site.unregister(User)
admin.site.register(User, AccessibleUserAdmin)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    # The hash is never shown; the token itself is not stored.
    list_display = (
        "name",
        "user",
        "prefix",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("scope", ("revoked_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("name", "prefix", "user__username")
    fields = (
        "user",
        "name",
        "prefix",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = fields
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by their owners on the API tokens page, shown to them once

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            services.api_token_revoke(token=token, actor=request.user)
        self.message_user(request, "Revoked the selected tokens.", messages.SUCCESS)

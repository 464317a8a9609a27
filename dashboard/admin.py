from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from core.admin_tools import SavesOnlyItsFields, confirm_action
from dashboard import services
from dashboard.columns import KEYS as COLUMN_KEYS
from dashboard.models import RunDiagnosis, RunListPreference, ShareLink


@admin.register(ShareLink)
class ShareLinkAdmin(SavesOnlyItsFields):
    list_display = (
        "id", "label", "kind", "created_by", "created_at", "expires_at", "revoked_at",
        "view_count", "last_viewed_at", "snapshot_at",
    )  # fmt: skip
    list_filter = (
        "kind",
        "created_at",
        ("revoked_at", admin.EmptyFieldListFilter),
        ("expires_at", admin.EmptyFieldListFilter),
        ("snapshot_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("label", "created_by__username", "job__name", "token_hash")
    readonly_fields = (
        "token_hash", "kind", "job", "job_ids", "created_by", "created_at", "expires_at",
        "revoked_at", "view_count", "last_viewed_at", "snapshot_at",
    )  # fmt: skip
    fields = ("label", *readonly_fields)
    list_select_related = ("created_by",)
    actions = ("revoke",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ShareLink]:
        return super().get_queryset(request).defer("snapshot")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a token is shown once to its creator: links are made on the run pages

    @admin.action(description="Revoke the selected share links")
    def revoke(
        self, request: HttpRequest, queryset: QuerySet[ShareLink]
    ) -> TemplateResponse | None:
        page = confirm_action(
            self, request, queryset,
            title=f"Revoke {queryset.count()} share link(s)?",
            consequences=[
                "Anyone who opens these links gets “not found” from then on.",
                "It cannot be undone: a new link has a new address, to be sent again.",
            ],
            button="Revoke the links",
        )  # fmt: skip
        if page is not None:
            return page
        revoked = 0
        for link in queryset.filter(revoked_at__isnull=True):
            services.share_link_revoke(link=link, user=request.user)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} share link(s).", messages.SUCCESS)
        return None


@admin.register(RunDiagnosis)
class RunDiagnosisAdmin(admin.ModelAdmin):
    list_display = ("job", "computed_at")
    search_fields = ("job__name", "job__id")
    fields = ("job", "fingerprint", "diagnosis", "computed_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(RunListPreference)
class RunListPreferenceAdmin(admin.ModelAdmin[RunListPreference]):
    """A person's own choice, made on the runs list: the admin only reads it or resets it."""

    list_display = ("user", "hidden_columns", "updated_at")
    list_filter = ("updated_at",)
    search_fields = ("user__username",)
    readonly_fields = ("user", "hidden_columns", "updated_at")
    list_select_related = ("user",)
    actions = ("reset_columns",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Show every column again", permissions=["view"])
    def reset_columns(self, request: HttpRequest, queryset: QuerySet[RunListPreference]) -> None:
        for preference in queryset.select_related("user"):
            services.run_list_columns_set(user=preference.user, shown=list(COLUMN_KEYS))
        self.message_user(request, f"{queryset.count()} runs-list preferences reset.")

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from sandbox import engine
from sandbox.models import (
    SandboxAccount,
    SandboxCheckpoint,
    SandboxCompletion,
    SandboxEvent,
    SandboxFault,
    SandboxFile,
    SandboxJob,
    SandboxModel,
    SandboxUpload,
    SandboxUploadPart,
    SandboxWebhookDelivery,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """The sandbox plays OpenAI: its records change only through its API. With the sandbox
    disabled (SANDBOX_ENABLED, production) its pages are hidden and refused like its URLs."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return settings.SANDBOX_ENABLED and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return settings.SANDBOX_ENABLED and super().has_view_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return settings.SANDBOX_ENABLED and super().has_delete_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(SandboxJob)
class SandboxJobAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "api",
        "model",
        "status",
        "steps_done",
        "total_steps",
        "fine_tuned_model",
        "owner",
    )
    list_filter = ("api", "status", "method_type", "model")
    search_fields = ("id", "model", "fine_tuned_model", "training_file", "owner")
    actions = ("fast_forward",)

    @admin.action(description="Fast-forward to completion")
    def fast_forward(self, request: HttpRequest, queryset: QuerySet[SandboxJob]) -> None:
        for job in queryset:
            engine.job_fast_forward(job.id)
        self.message_user(request, f"Fast-forwarded {queryset.count()} job(s).", messages.SUCCESS)


@admin.register(SandboxFile)
class SandboxFileAdmin(ReadOnlyAdmin):
    list_display = ("id", "filename", "purpose", "bytes", "created_at", "deleted", "owner")
    list_filter = ("purpose", "deleted")
    search_fields = ("id", "filename", "owner")


@admin.register(SandboxModel)
class SandboxModelAdmin(ReadOnlyAdmin):
    list_display = ("id", "job", "created", "deleted", "owner")
    list_filter = ("deleted",)
    search_fields = ("id", "owner")


@admin.register(SandboxEvent)
class SandboxEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "job", "created_at", "level", "type", "message")
    list_filter = ("level", "type")
    search_fields = ("id", "job__id", "message")
    raw_id_fields = ("job",)


@admin.register(SandboxCheckpoint)
class SandboxCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("id", "job", "step_number", "fine_tuned_model_checkpoint", "created_at")
    search_fields = ("id", "job__id", "fine_tuned_model_checkpoint")
    raw_id_fields = ("job",)


@admin.register(SandboxUpload)
class SandboxUploadAdmin(ReadOnlyAdmin):
    list_display = ("id", "filename", "purpose", "bytes", "status", "created_at", "owner")
    list_filter = ("status", "purpose")
    search_fields = ("id", "filename", "owner")


@admin.register(SandboxUploadPart)
class SandboxUploadPartAdmin(ReadOnlyAdmin):
    list_display = ("id", "upload", "size", "created_at")
    search_fields = ("id", "upload__id")
    raw_id_fields = ("upload",)


@admin.register(SandboxAccount)
class SandboxAccountAdmin(ReadOnlyAdmin):
    list_display = ("owner", "profile", "rate_limit", "webhook_url")
    list_filter = ("profile",)
    search_fields = ("owner", "webhook_url")
    exclude = ("webhook_secret",)


@admin.register(SandboxFault)
class SandboxFaultAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "owner",
        "kinds",
        "path_regex",
        "remaining",
        "rate",
        "injected",
        "created_at",
    )
    search_fields = ("owner", "path_regex")
    list_filter = ("created_at",)


@admin.register(SandboxWebhookDelivery)
class SandboxWebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "job", "url", "attempts", "last_status", "delivered_at")
    list_filter = ("type", ("delivered_at", admin.EmptyFieldListFilter))
    search_fields = ("id", "job__id", "url")
    raw_id_fields = ("job",)


@admin.register(SandboxCompletion)
class SandboxCompletionAdmin(ReadOnlyAdmin):
    list_display = ("owner", "model", "status_code", "stream", "created_at")
    list_filter = ("status_code", "stream")
    search_fields = ("model", "prompt_sha256")

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

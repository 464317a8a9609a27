from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from jobs import services
from jobs.models import Checkpoint, Job, JobEvent, MetricPoint, ProviderConnection, ProviderFile


class ConnectionAdminForm(forms.ModelForm):
    base_url = forms.URLField(max_length=300, assume_scheme="https")
    # Write-only: the stored key is never sent back to the browser.
    api_key = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current key.",
    )  # fmt: skip
    webhook_secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current secret.",
    )  # fmt: skip

    class Meta:
        model = ProviderConnection
        fields = ("name", "kind", "base_url", "organization", "project", "api_version", "enabled")


@admin.register(ProviderConnection)
class ProviderConnectionAdmin(admin.ModelAdmin):
    form = ConnectionAdminForm
    list_display = (
        "name",
        "kind",
        "base_url",
        "masked_key",
        "enabled",
        "archived_at",
        "updated_at",
    )
    list_filter = ("kind", "enabled")
    search_fields = ("name", "base_url")
    readonly_fields = ("masked_key", "archived_at", "created_at", "updated_at")

    @admin.display(description="API key")
    def masked_key(self, obj: ProviderConnection) -> str:
        return obj.masked_key

    def save_model(
        self, request: HttpRequest, obj: ProviderConnection, form: forms.Form, change: bool
    ) -> None:
        data = form.cleaned_data
        services.connection_save(
            connection=obj,
            name=data["name"], kind=data["kind"], base_url=data["base_url"],
            api_key=data["api_key"] or None, organization=data["organization"], project=data["project"],
            api_version=data["api_version"], webhook_secret=data["webhook_secret"] or None,
            enabled=data["enabled"], actor=request.user,
        )  # fmt: skip


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "display_name",
        "status",
        "base_model",
        "connection",
        "fine_tuned_model",
        "created_by",
        "created_at",
    )
    list_filter = ("status", "connection", "base_model", "method", "archived")
    search_fields = ("name", "notes", "provider_job_id", "fine_tuned_model", "base_model")
    readonly_fields = (
        "id", "provider_job_id", "fine_tuned_model", "training_file_id", "validation_file_id",
        "result_files", "last_event_id", "created_at", "provider_created_at", "started_at", "finished_at",
    )  # fmt: skip
    raw_id_fields = ("training_dataset", "validation_dataset", "cloned_from", "created_by")
    actions = ("sync_now", "cancel")

    @admin.action(description="Sync now with the provider")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset.select_related("connection"):
            services.job_sync_now(job=job, user=request.user)
        self.message_user(request, f"Synced {queryset.count()} job(s).", messages.SUCCESS)

    @admin.action(description="Cancel at the provider")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset.select_related("connection"):
            try:
                services.job_cancel(job=job, user=request.user)
            except services.JobError as exc:
                self.message_user(request, f"{job}: {exc}", messages.ERROR)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(JobEvent)
class JobEventAdmin(ReadOnlyAdmin):
    list_display = ("job", "created_at", "level", "type", "message")
    list_filter = ("level", "type")
    search_fields = ("message", "provider_event_id")
    raw_id_fields = ("job",)


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ("job", "step", "model_name", "created_at")
    search_fields = ("model_name", "provider_checkpoint_id")
    list_filter = ("created_at",)
    raw_id_fields = ("job",)


@admin.register(MetricPoint)
class MetricPointAdmin(ReadOnlyAdmin):
    list_display = ("job", "step", "train_loss", "valid_loss", "full_valid_loss")
    search_fields = ("job__name", "job__provider_job_id")
    list_filter = ("job__status",)
    raw_id_fields = ("job",)


@admin.register(ProviderFile)
class ProviderFileAdmin(ReadOnlyAdmin):
    list_display = ("provider_file_id", "connection", "sha256", "bytes", "uploaded_at")
    list_filter = ("connection",)
    search_fields = ("provider_file_id", "sha256")

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.csrf import csrf_protect

from core.admin_tools import SavesOnlyItsFields
from datasets import selectors, services, uploads
from datasets.forms import DatasetUploadForm, parse_tags
from datasets.incoming import UploadRejected
from datasets.models import BaseModel, Dataset


class DatasetChangeForm(forms.ModelForm):
    tags = forms.CharField(required=False, help_text="Comma-separated.")

    class Meta:
        model = Dataset
        fields = ("name", "description", "tags")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["tags"] = ", ".join(self.instance.tags)

    def clean_tags(self) -> list[str]:
        return parse_tags(self.cleaned_data.get("tags") or "")


@admin.register(Dataset)
class DatasetAdmin(SavesOnlyItsFields):
    form = DatasetChangeForm
    list_display = (
        "id",
        "name",
        "status",
        "format",
        "size",
        "n_examples",
        "report_model",
        "uploaded_by",
        "uploaded_at",
        "parent",
    )
    list_filter = (
        "status",
        "format",
        "uploaded_at",
        ("parent", admin.EmptyFieldListFilter),
        "report_model",
    )
    search_fields = ("name", "description", "sha256", "original_filename", "tags")
    list_select_related = ("uploaded_by", "parent", "report_model")
    date_hierarchy = "uploaded_at"
    readonly_fields = (
        "page_link",
        "sha256",
        "file_link",
        "original_filename",
        "size",
        "line_count",
        "uploaded_by",
        "uploaded_at",
        "status",
        "format",
        "n_examples",
        "progress_bytes",
        "progress_total",
        "progress_at",
        "requested_model",
        "report_model",
        "error_message",
        "validation_started_at",
        "validated_at",
        "parent",
        "derivation",
        "created_at",
        "updated_at",
        "lease_owner",
        "lease_expires_at",
        "lease_heartbeat_at",
    )
    fieldsets = (
        (None, {"fields": ("page_link", "name", "description", "tags")}),
        (
            "File",
            {"fields": ("file_link", "original_filename", "size", "line_count", "sha256")},
        ),
        (
            "Validation",
            {
                "fields": (
                    "status",
                    "format",
                    "n_examples",
                    "requested_model",
                    "report_model",
                    "progress_bytes",
                    "progress_total",
                    "progress_at",
                    "error_message",
                    "validation_started_at",
                    "validated_at",
                )
            },
        ),
        ("Lineage", {"fields": ("parent", "derivation")}),
        ("History", {"fields": ("uploaded_by", "uploaded_at", "created_at", "updated_at")}),
        ("Lease", {"fields": ("lease_owner", "lease_expires_at", "lease_heartbeat_at")}),
    )
    actions = ("validate_again", "delete_with_files")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dataset]:
        return super().get_queryset(request).defer("report", "line_index")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # Deleting must remove the stored file too, which only the service does.
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="Page")
    def page_link(self, obj: Dataset) -> str:
        if not obj.pk:
            return "—"
        return format_html(
            '<a href="{}">Open the dataset page</a>', reverse("datasets:detail", args=[obj.pk])
        )

    @admin.display(description="Stored file")
    def file_link(self, obj: Dataset) -> str:
        # MEDIA_URL is not served; the download view streams the file with a login check.
        if not obj.pk:
            return "—"
        url = reverse("datasets:download", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.file.name)

    @admin.action(description="Validate again (read the file)")
    def validate_again(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> None:
        default = selectors.base_model_default()
        count = 0
        for dataset in queryset.select_related("report_model", "requested_model"):
            model = dataset.report_model or dataset.requested_model or default
            services.dataset_validation_request(dataset=dataset, model=model, force=True)
            count += 1
        self.message_user(request, f"Validation queued for {count} dataset(s).", messages.INFO)

    @admin.action(description="Delete selected datasets and their files", permissions=["delete"])
    def delete_with_files(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> None:
        count = 0
        for dataset in queryset:
            try:
                services.dataset_delete(dataset=dataset)
            except services.DatasetInUse as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                count += 1
        self.message_user(request, f"Deleted {count} dataset(s).", messages.SUCCESS)

    def delete_model(self, request: HttpRequest, obj: Dataset) -> None:
        services.dataset_delete(dataset=obj)

    # --- adding = uploading, through the same streaming handler, form and service --------

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            too_large = uploads.body_too_large(request)
            if too_large:
                return self._upload_page(request, DatasetUploadForm(), error=too_large, status=413)
            return self._upload(request, uploads.install_upload_handler(request))
        return self._upload(request, None)

    # The handler must be installed before anything reads the body; _upload checks CSRF.
    add_view.csrf_exempt = True  # type: ignore[attr-defined]

    def _upload(
        self, request: HttpRequest, handler: uploads.DatasetUploadHandler | None
    ) -> HttpResponse:
        return csrf_protect(self._upload_checked)(request, handler)

    def _upload_checked(
        self, request: HttpRequest, handler: uploads.DatasetUploadHandler | None
    ) -> HttpResponse:
        if handler is None:
            return self._upload_page(request, DatasetUploadForm())
        form = DatasetUploadForm(request.POST, request.FILES, upload_error=handler.error)
        if form.is_valid():
            data = form.cleaned_data
            try:
                outcome = services.dataset_create_from_upload(
                    upload=data["file"],
                    name=data["name"],
                    description=data["description"],
                    tags=data["tags"],
                    uploaded_by=request.user,
                    model=data["model"],
                )
            except UploadRejected as exc:
                form.add_error("file", exc.message)
            else:
                dataset = outcome.dataset
                if outcome.created:
                    self.log_addition(request, dataset, [{"added": {}}])
                    self.message_user(request, f"Uploaded “{dataset}”.", messages.SUCCESS)
                else:
                    self.message_user(
                        request, f"This file already exists as “{dataset}”.", messages.WARNING
                    )
                url = reverse("admin:datasets_dataset_change", args=[dataset.pk])
                return HttpResponseRedirect(url)
        return self._upload_page(request, form, status=400)

    def _upload_page(
        self, request: HttpRequest, form: DatasetUploadForm, *, error: str = "", status: int = 200
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Upload a dataset",
            "form": form,
            "error": error,
            "max_bytes": uploads.max_upload_bytes(),
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(
            request, "admin/datasets/dataset/upload.html", context, status=status
        )


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "provider_kind",
        "encoding",
        "training_context",
        "inference_context",
        "training_price_per_1m",
        "input_price_per_1m",
        "output_price_per_1m",
        "supports_vision",
        "supports_dpo",
        "legacy_completion",
        "deprecated_on",
        "shutdown_on",
        "listed_at",
    )
    list_filter = (
        "provider_kind",
        "encoding",
        "supports_vision",
        "supports_dpo",
        "legacy_completion",
    )
    search_fields = ("id",)
    actions = ("refresh_reports",)

    def get_readonly_fields(
        self, request: HttpRequest, obj: BaseModel | None = None
    ) -> tuple[str, ...]:
        # The id is what reports and datasets point at; renaming would orphan them. The limits
        # are the provider's (copied by jobs.catalogs), not ours to edit.
        listed = ("limits", "listed_at", "updated_at")
        return ("id", *listed) if obj else listed

    @admin.action(description="Update stored reports made for these models")
    def refresh_reports(self, request: HttpRequest, queryset: QuerySet[BaseModel]) -> None:
        counts = services.base_model_reports_refresh(models=list(queryset))
        self.message_user(
            request,
            f"{counts['recomputed']} report(s) recomputed, {counts['queued']} validation(s) queued.",
            messages.INFO,
        )

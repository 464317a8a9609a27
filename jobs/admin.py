from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from core.admin_tools import LEASE_FIELDS, confirm_action
from core.tags import parse_tags
from jobs import catalogs, guardrails, history, notifications, services, sweeps
from jobs.forms import WebhookURLField
from jobs.models import (
    Checkpoint,
    Guardrail,
    GuardrailFiring,
    ImportedFile,
    ImportRun,
    Job,
    JobControl,
    JobEvent,
    MetricCurve,
    MetricPoint,
    Notification,
    NotificationSetting,
    PriceQuote,
    ProviderConnection,
    ProviderFile,
    Sweep,
    SweepRun,
    WebhookDelivery,
)
from jobs.providers import traits


class ConnectionAdminForm(forms.ModelForm):
    base_url = forms.URLField(max_length=300, assume_scheme="https", required=False)
    slack_webhook_url = WebhookURLField(
        required=False, max_length=500, assume_scheme="https", label="Slack webhook URL"
    )
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
        fields = (
            "name", "kind", "base_url", "organization", "project", "api_version", "enabled",
            "notify_emails", "slack_webhook_url", "guardrail_defaults",
        )  # fmt: skip
        help_texts = {
            "guardrail_defaults": 'Rules every new job starts with, e.g. [{"kind": "overfitting", '
            '"params": {"evals": 3, "rise_pct": 1}, "action": "pause"}]. Kinds: overfitting, '
            "divergence, accuracy_stuck, spend_cap, time_limit; actions: notify, pause, cancel.",
        }

    def clean_notify_emails(self) -> str:
        from jobs.forms import clean_addresses

        return clean_addresses(self.cleaned_data.get("notify_emails") or "")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind") or ProviderConnection.Kind.OPENAI
        if traits(kind).hosted and not data.get("base_url"):
            self.add_error("base_url", "Enter the provider's API root.")
        rules = data.get("guardrail_defaults") or []
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            self.add_error("guardrail_defaults", "A list of rules ({kind, params, action}).")
        else:
            problem = guardrails.rules_problem(ProviderConnection(kind=kind), rules)
            if problem:
                self.add_error("guardrail_defaults", problem)
        return data


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
    list_filter = ("kind", "enabled", ("archived_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "base_url")
    readonly_fields = ("masked_key", "archived_at", "created_at", "updated_at")
    actions = ("import_history", "refresh_models", "archive")

    @admin.action(description="Refresh the models the provider fine-tunes (and their limits)")
    def refresh_models(self, request: HttpRequest, queryset: QuerySet[ProviderConnection]) -> None:
        for connection in queryset:
            if catalogs.catalog_refresh_request(connection=connection, user=request.user):
                self.message_user(request, f"{connection}: refresh queued.", messages.INFO)
            else:
                self.message_user(
                    request, f"{connection}: its models are Tuneboard's catalog.", messages.WARNING
                )

    @admin.action(description="Import the provider's history (jobs, metrics, files)")
    def import_history(self, request: HttpRequest, queryset: QuerySet[ProviderConnection]) -> None:
        for connection in queryset:
            try:
                run = history.import_request(connection=connection, user=request.user)
            except services.JobError as exc:
                self.message_user(request, f"{connection}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{connection}: import {run.pk} queued.", messages.INFO)

    @admin.action(description="Archive (remove the API key, stop polling; keep everything)")
    def archive(
        self, request: HttpRequest, queryset: QuerySet[ProviderConnection]
    ) -> TemplateResponse | None:
        active = Job.objects.filter(connection__in=queryset).exclude(status__in=Job.TERMINAL)
        page = confirm_action(
            self, request, queryset,
            title=f"Archive {queryset.count()} connection(s)?",
            consequences=[
                "Their API keys are deleted and Tuneboard never talks to these providers again; "
                "it cannot be undone from here.",
                f"{active.count()} job(s) still active there are no longer followed: they keep "
                "running, and being billed, at the provider.",
                "Nothing stored is deleted: jobs, curves, datasets and share links stay readable.",
            ],
            button="Archive the connections",
        )  # fmt: skip
        if page is not None:
            return page
        for connection in queryset.filter(archived_at__isnull=True):
            services.connection_archive(connection=connection, actor=request.user)
        self.message_user(request, "Archived the selected connections.", messages.SUCCESS)
        return None

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
            enabled=data["enabled"], notify_emails=data["notify_emails"],
            slack_webhook_url=data["slack_webhook_url"], actor=request.user,
        )  # fmt: skip


# What a person may change on a job in the admin: the annotations the run page edits too.
# Everything else is what was launched, what the provider reports or sync bookkeeping, and
# changes only through launches, syncs and imports.
JOB_EDITABLE = ("name", "notes", "tags", "archived")
JOB_LAUNCH_FIELDS = (
    "id", "connection", "origin", "created_by", "created_at", "base_model", "method",
    "requested_hyperparameters", "suffix", "seed", "integrations", "training_dataset",
    "validation_dataset", "cloned_from",
)  # fmt: skip
JOB_SYNC_FIELDS = (
    "next_poll_at", "poll_failures", "last_synced_at", "last_sync_error", "last_event_id",
    "notified_status",
)  # fmt: skip
JOB_PROVIDER_FIELDS = tuple(
    f.name
    for f in Job._meta.concrete_fields
    if f.name not in {*JOB_EDITABLE, *LEASE_FIELDS, *JOB_LAUNCH_FIELDS, *JOB_SYNC_FIELDS}
)


class JobAdminForm(forms.ModelForm):
    tags = forms.CharField(required=False, max_length=1000, help_text="Comma-separated.")

    class Meta:
        model = Job
        fields = JOB_EDITABLE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["tags"] = ", ".join(self.instance.tags or [])

    def clean_tags(self) -> list[str]:
        return parse_tags(self.cleaned_data.get("tags") or "")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    form = JobAdminForm
    list_display = (
        "display_name",
        "status",
        "base_model",
        "connection",
        "fine_tuned_model",
        "created_by",
        "created_at",
    )
    list_filter = ("status", "connection", "origin", "base_model", "method", "archived")
    search_fields = ("name", "notes", "provider_job_id", "fine_tuned_model", "base_model")
    fieldsets = (
        (None, {"fields": JOB_EDITABLE}),
        ("Launch", {"fields": JOB_LAUNCH_FIELDS}),
        ("Reported by the provider", {"fields": JOB_PROVIDER_FIELDS}),
        ("Sync", {"fields": JOB_SYNC_FIELDS}),
        ("Lease", {"fields": LEASE_FIELDS}),
    )
    readonly_fields = (*JOB_LAUNCH_FIELDS, *JOB_PROVIDER_FIELDS, *JOB_SYNC_FIELDS, *LEASE_FIELDS)
    actions = ("sync_now", "cancel")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a job row without a launch or an import would stand for nothing

    def save_model(self, request: HttpRequest, obj: Job, form: forms.Form, change: bool) -> None:
        # Through the services, so the change is audited like the same edit on the run page.
        data = form.cleaned_data
        services.job_annotate(
            job=obj, user=request.user, name=data["name"], notes=data["notes"], tags=data["tags"]
        )
        if "archived" in form.changed_data:
            services.job_set_archived(job=obj, user=request.user, archived=data["archived"])

    @admin.action(description="Sync now with the provider")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._request(request, queryset, JobControl.Action.SYNC)

    @admin.action(description="Cancel at the provider")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Job]) -> TemplateResponse | None:
        page = confirm_action(
            self, request, queryset,
            title=f"Cancel {queryset.count()} job(s) at the provider?",
            consequences=[
                "Training stops and each job ends as Cancelled; a cancelled job cannot be resumed.",
                "What each job has trained so far is billed; no fine-tuned model is produced.",
            ],
            button="Cancel the jobs",
        )  # fmt: skip
        if page is None:
            self._request(request, queryset, JobControl.Action.CANCEL)
        return page

    def _request(self, request: HttpRequest, queryset: QuerySet[Job], action: str) -> None:
        # Tasks talk to the provider; their outcomes are listed under Job controls.
        asked = 0
        for job in queryset.select_related("connection"):
            try:
                services.job_control_request(job=job, user=request.user, action=action)
            except services.JobError as exc:
                self.message_user(request, f"{job}: {exc}", messages.ERROR)
            else:
                asked += 1
        if asked:
            self.message_user(
                request,
                f"Requested for {asked} job(s); see Job controls for the outcome.",
                messages.SUCCESS,
            )


@admin.register(Guardrail)
class GuardrailAdmin(admin.ModelAdmin):
    list_display = ("job", "kind", "action", "params", "enabled", "fired", "updated_at")
    list_filter = ("kind", "action", "enabled", ("firing", admin.EmptyFieldListFilter))
    search_fields = ("job__name", "job__provider_job_id")
    raw_id_fields = ("job",)
    readonly_fields = ("created_at", "updated_at")
    actions = ("evaluate_now",)

    @admin.display(boolean=True, description="Fired")
    def fired(self, obj: Guardrail) -> bool:
        return hasattr(obj, "firing")

    @admin.action(description="Evaluate now on the stored curves")
    def evaluate_now(self, request: HttpRequest, queryset: QuerySet[Guardrail]) -> None:
        fired = 0
        for job_id in set(queryset.values_list("job_id", flat=True)):
            fired += len(guardrails.guardrails_evaluate(job_id=job_id))
        self.message_user(request, f"{fired} guardrail(s) fired.", messages.SUCCESS)


@admin.register(GuardrailFiring)
class GuardrailFiringAdmin(admin.ModelAdmin):
    list_display = ("job", "kind", "action", "step", "fired_at", "outcome")
    list_filter = ("kind", "action")
    search_fields = ("job__name", "message")
    raw_id_fields = ("job", "guardrail")
    readonly_fields = [f.name for f in GuardrailFiring._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


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


@admin.register(MetricCurve)
class MetricCurveAdmin(ReadOnlyAdmin):
    """Derived from the metric rows (``manage.py reduce_curves`` rebuilds it)."""

    list_display = ("job", "level", "chunk", "width")
    search_fields = ("job__name", "job__provider_job_id")
    list_filter = ("level",)
    raw_id_fields = ("job",)


@admin.register(ProviderFile)
class ProviderFileAdmin(ReadOnlyAdmin):
    list_display = ("provider_file_id", "connection", "sha256", "bytes", "uploaded_at")
    list_filter = ("connection",)
    search_fields = ("provider_file_id", "sha256")


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = (
        "id", "connection", "status", "jobs_done", "jobs_total", "jobs_created",
        "files_downloaded", "files_missing", "errors", "started_by", "created_at", "finished_at",
    )  # fmt: skip
    list_filter = ("status", "connection")
    search_fields = ("connection__name", "last_error", "started_by__username")
    readonly_fields = tuple(
        f.name for f in ImportRun._meta.get_fields() if f.concrete and f.name != "job_ids"
    )
    exclude = ("job_ids",)
    actions = ("run_again",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Run the import again (or resume the active one)")
    def run_again(self, request: HttpRequest, queryset: QuerySet[ImportRun]) -> None:
        for connection in ProviderConnection.objects.filter(import_runs__in=queryset).distinct():
            try:
                run = history.import_request(connection=connection, user=request.user)
            except services.JobError as exc:
                self.message_user(request, f"{connection}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{connection}: import {run.pk} queued.", messages.INFO)


@admin.register(ImportedFile)
class ImportedFileAdmin(ReadOnlyAdmin):
    list_display = ("provider_file_id", "connection", "status", "dataset", "bytes", "created_at")
    list_filter = ("status", "connection")
    search_fields = ("provider_file_id", "filename", "sha256")
    raw_id_fields = ("dataset",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "connection", "type", "provider_job_id", "outcome")
    list_filter = ("outcome", "type", "connection")
    search_fields = ("webhook_id", "provider_job_id")
    raw_id_fields = ("job",)


class NotificationSettingAdminForm(forms.ModelForm):
    slack_webhook_url = WebhookURLField(
        required=False, max_length=500, assume_scheme="https", label="Slack webhook URL"
    )

    class Meta:
        model = NotificationSetting
        fields = ("user", "email_enabled", "slack_webhook_url")


@admin.register(NotificationSetting)
class NotificationSettingAdmin(admin.ModelAdmin):
    form = NotificationSettingAdminForm
    list_display = ("user", "email_enabled", "has_slack", "updated_at")
    list_filter = ("email_enabled",)
    search_fields = ("user__username", "user__email")
    readonly_fields = ("id", "updated_at")
    raw_id_fields = ("user",)

    @admin.display(boolean=True, description="Slack")
    def has_slack(self, obj: NotificationSetting) -> bool:
        return bool(obj.slack_webhook_url)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "job",
        "sweep",
        "job_status",
        "channel",
        "target",
        "state",
        "attempts",
    )
    list_filter = ("state", "channel", "job_status")
    search_fields = ("target", "job__name", "job__provider_job_id", "sweep__name", "last_error")
    raw_id_fields = ("job", "sweep")
    actions = ("resend",)

    @admin.action(description="Send again (failed or pending ones)")
    def resend(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        for notification in queryset.exclude(state=Notification.State.SENT):
            notifications.notification_resend(notification=notification, actor=request.user)
        self.message_user(request, "Queued the notifications again.", messages.INFO)


@admin.register(JobControl)
class JobControlAdmin(ReadOnlyAdmin):
    list_display = ("job", "action", "state", "requested_by", "requested_at", "finished_at")
    list_filter = ("action", "state")
    search_fields = ("outcome", "job__name", "job__provider_job_id")
    raw_id_fields = ("job", "requested_by")


@admin.register(PriceQuote)
class PriceQuoteAdmin(ReadOnlyAdmin):
    list_display = (
        "id", "connection", "base_model", "method", "status", "price_usd", "train_tokens",
        "allowed_to_proceed", "created_at", "answered_at",
    )  # fmt: skip
    list_filter = ("status", "method", "connection")
    search_fields = ("base_model", "key")
    raw_id_fields = ("training_dataset", "validation_dataset", "requested_by")
    actions = ("ask_again",)

    @admin.action(description="Ask the provider again")
    def ask_again(self, request: HttpRequest, queryset: QuerySet[PriceQuote]) -> None:
        for quote in queryset:
            catalogs.price_quote_retry(quote=quote, user=request.user)
        self.message_user(request, "Asked again.", messages.INFO)


class SweepRunInline(admin.TabularInline):
    model = SweepRun
    extra = 0
    can_delete = False
    fields = ("index", "base_model", "hyperparameters", "seed", "planned_cost_usd", "state",
              "job", "launched_at", "active_at_launch", "skip_reason")  # fmt: skip
    readonly_fields = fields
    raw_id_fields = ("job",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Sweep)
class SweepAdmin(admin.ModelAdmin):
    """Sweeps are planned and started on their page (the plan checks every run and the
    budget); here admins follow them, cancel them or advance them now."""

    list_display = ("name", "status", "connection", "mode", "concurrency", "planned_cost_usd",
                    "budget_usd", "created_by", "created_at")  # fmt: skip
    list_filter = ("status", "mode", "connection")
    search_fields = ("name", "training_dataset__name", "created_by__username")
    readonly_fields = [f.name for f in Sweep._meta.fields]
    inlines = (SweepRunInline,)
    actions = ("cancel_sweeps", "advance_now")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Cancel (launch nothing more, cancel the runs under way)")
    def cancel_sweeps(self, request: HttpRequest, queryset: QuerySet[Sweep]) -> None:
        cancelled = sum(sweeps.sweep_cancel(sweep=s, user=request.user) for s in queryset)
        self.message_user(request, f"{cancelled} sweep(s) cancelled.", messages.SUCCESS)

    @admin.action(description="Advance now (launch what the budget and concurrency allow)")
    def advance_now(self, request: HttpRequest, queryset: QuerySet[Sweep]) -> None:
        for sweep in queryset:
            sweeps.sweep_advance(sweep_id=sweep.pk)
        self.message_user(request, f"{queryset.count()} sweep(s) advanced.", messages.SUCCESS)


@admin.register(SweepRun)
class SweepRunAdmin(ReadOnlyAdmin):
    list_display = ("sweep", "index", "base_model", "state", "job", "planned_cost_usd",
                    "active_at_launch", "launched_at")  # fmt: skip
    list_filter = ("state", "sweep__status")
    search_fields = ("sweep__name", "base_model", "job__provider_job_id")
    raw_id_fields = ("sweep", "job")

"""History pages: a connection's page (imports with live progress, archive, export, webhook
deliveries), export bundles (download and upload), the audit log, the notification settings
and the signed webhook endpoint. Reads go through ``jobs.selectors``, writes through the
services (``jobs.history``, ``jobs.services``, ``jobs.bundles``, ``jobs.notifications``,
``jobs.webhooks``)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.confirm import confirmation_page
from core.crypto import DecryptionError
from core.permissions import admin_required, member_required
from jobs import bundles, confirmations, history, notifications, selectors, services, webhooks
from jobs.forms import ArchiveForm, AuditFilterForm, BundleUploadForm, NotificationForm
from jobs.models import Job, ProviderConnection
from jobs.services import JobError

log = logging.getLogger(__name__)
MAX_EXPORT_SELECTION = 500


# --- the connection page ------------------------------------------------------------------------


def _connection_or_404(pk: int) -> ProviderConnection:
    connection = selectors.connection_get(pk)
    if connection is None:
        raise Http404("No such connection.")
    return connection


@require_GET
def connection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    connection = _connection_or_404(pk)
    overview = selectors.connection_overview(connection)
    context = {
        "overview": overview,
        "connection": connection,
        "webhook_url": request.build_absolute_uri(
            reverse("webhook", kwargs={"connection_id": connection.pk})
        ),
        "status_url": reverse("jobs:import_status", kwargs={"pk": overview.active_run.pk})
        if overview.active_run
        else "",
    }
    return render(request, "jobs/connection_detail.html", context)


@require_POST
@member_required
def connection_import(request: HttpRequest, pk: int) -> HttpResponse:
    connection = _connection_or_404(pk)
    try:
        run = history.import_request(connection=connection, user=request.user)
    except JobError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"Import {run.pk} of “{connection.name}” is under way; progress shows below."
        )
    return redirect("jobs:connection_detail", pk=connection.pk)


@never_cache
@require_GET
def import_status(request: HttpRequest, pk: int) -> JsonResponse:
    data = selectors.import_run_status(pk)
    if data is None:
        return JsonResponse({"error": "No such import."}, status=404)
    return JsonResponse(data)


@require_http_methods(["GET", "POST"])
@admin_required
def connection_archive(request: HttpRequest, pk: int) -> HttpResponse:
    """Acts only on a POST with the box ticked; otherwise the page says what archiving stops
    (active jobs no longer followed) and what stays."""
    connection = _connection_or_404(pk)
    form = ArchiveForm(request.POST if request.method == "POST" else None)
    if form.is_valid() and connection.archived_at is None:
        services.connection_archive(connection=connection, actor=request.user)
        messages.success(
            request,
            f"Archived “{connection.name}”: its API key is removed and its jobs are no longer "
            "polled; everything stored stays readable.",
        )
        return redirect("jobs:connection_detail", pk=connection.pk)
    confirmation = replace(confirmations.connection_archive_confirmation(connection), form=form)
    return confirmation_page(request, confirmation)


# --- export bundles -----------------------------------------------------------------------------


def _bundle_response(
    request: HttpRequest, jobs: QuerySet[Job], *, label: str, selection: dict
) -> StreamingHttpResponse:
    bundles.bundle_export_audit(
        actor=request.user, label=label, selection=selection, jobs=jobs.count()
    )
    response = StreamingHttpResponse(
        bundles.bundle_stream(jobs=jobs, selection=selection), content_type="application/zip"
    )
    response["Content-Disposition"] = f'attachment; filename="{bundles.bundle_filename(label)}"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def connection_export(request: HttpRequest, pk: int) -> HttpResponse:
    connection = _connection_or_404(pk)
    jobs = bundles.jobs_for_export(connection=connection)
    return _bundle_response(
        request, jobs, label=connection.name, selection={"connection": connection.name}
    )


@require_GET
def runs_export(request: HttpRequest) -> HttpResponse:
    raw = request.GET.getlist("job")
    if not raw:
        return HttpResponseBadRequest("Choose the runs to export (?job=<id>&job=<id>…).")
    if len(raw) > MAX_EXPORT_SELECTION:
        return HttpResponseBadRequest(f"Export at most {MAX_EXPORT_SELECTION} runs at a time.")
    try:
        ids = sorted({uuid.UUID(value) for value in raw})
    except ValueError:
        return HttpResponseBadRequest("A run id is not valid.")
    jobs = bundles.jobs_for_export(job_ids=ids)
    found = jobs.count()
    if not found:
        raise Http404("None of these runs exist.")
    label = "runs" if found > 1 else (jobs.first() or Job()).display_name
    return _bundle_response(
        request, jobs, label=label, selection={"jobs": [str(i) for i in ids][:50], "count": found}
    )


@require_http_methods(["GET", "POST"])
@admin_required
def bundle_import(request: HttpRequest) -> HttpResponse:
    form = BundleUploadForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
    )
    if request.method == "POST" and form.is_valid():
        try:
            outcome = bundles.bundle_import(source=form.cleaned_data["bundle"], actor=request.user)
        except bundles.BundleError as exc:
            form.add_error("bundle", exc.message)
        else:
            messages.success(request, f"Bundle imported: {outcome.summary()}")
            return redirect("jobs:bundle_import")
    return render(request, "jobs/bundle_import.html", {"form": form})


# --- audit log ----------------------------------------------------------------------------------


@require_GET
@admin_required
def audit_log(request: HttpRequest) -> HttpResponse:
    actions, types = selectors.audit_choices()
    form = AuditFilterForm(request.GET or None, actions=actions, object_types=types)
    filters = form.filters() if request.GET else {}
    paginator = Paginator(selectors.audit_entries(**filters), selectors.AUDIT_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "rows": [(entry, selectors.audit_link(entry)) for entry in page],
        "query": query.urlencode(),
        "filtered": bool(filters),
    }
    return render(request, "jobs/audit.html", context)


# --- notification settings ----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def notification_settings(request: HttpRequest) -> HttpResponse:
    user = request.user
    setting = notifications.notification_setting_get(user=user)
    initial = {
        "email": getattr(user, "email", ""),
        "email_enabled": setting.email_enabled,
        "slack_webhook_url": setting.slack_webhook_url,
    }
    form = NotificationForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        notifications.notification_setting_save(
            user=user,
            email=data["email"],
            email_enabled=data["email_enabled"],
            slack_webhook_url=data["slack_webhook_url"],
        )
        messages.success(request, "Saved your notification settings.")
        return redirect("jobs:notifications")
    return render(request, "jobs/notifications.html", {"form": form, "setting": setting})


# --- webhooks in --------------------------------------------------------------------------------


@login_not_required
@csrf_exempt
@require_POST
def webhook_receive(request: HttpRequest, connection_id: int) -> HttpResponse:
    """Public, protected by the signature. An unknown connection and one without a webhook
    secret get the same 404 as any unknown URL."""
    connection = ProviderConnection.objects.filter(pk=connection_id).first()
    if connection is None or not connection.webhook_secret_encrypted:
        raise Http404("No such webhook endpoint.")
    try:
        received = webhooks.webhook_receive(
            connection=connection, headers=request.headers, body=request.body
        )
    except webhooks.WebhookRejected as exc:
        return JsonResponse({"error": exc.reason}, status=exc.status)
    except DecryptionError:
        log.error("the webhook secret of connection %s cannot be decrypted", connection.pk)
        raise Http404("No such webhook endpoint.") from None
    status = "duplicate" if received.duplicate else received.delivery.outcome
    return JsonResponse({"status": status})

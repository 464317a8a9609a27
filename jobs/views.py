"""Jobs pages: provider connections (admins), the launch form, the job page with its live JSON,
and the small POST views behind the job controls. Reads go through ``jobs.selectors``,
writes through ``jobs.services``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.confirm import confirmation_page, confirmed
from core.crypto import DecryptionError
from core.params import whole_number
from core.permissions import admin_required, member_required
from core.templatetags.core_format import money
from jobs import confirmations, guardrails, pages, selectors, selfhosted, services, watching
from jobs.connections import provider_for_connection
from jobs.forms import (
    AnnotateForm,
    ConnectionForm,
    DeleteModelForm,
    GuardrailForm,
    LaunchForm,
    launch_initial_from,
)
from jobs.models import Job, JobControl, ProviderConnection
from jobs.providers import ProviderError, parameters
from jobs.services import JobError


@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    # The runs list on the home page is the one list of jobs.
    return redirect("home")


# --- Connections ------------------------------------------------------------------------------


def _connection_or_404(pk: int) -> ProviderConnection:
    connection = selectors.connection_get(pk)
    if connection is None:
        raise Http404("No such connection.")
    return connection


@require_GET
@admin_required
def connection_list(request: HttpRequest) -> HttpResponse:
    return render(request, "jobs/connections.html", {"connections": selectors.connections_list()})


def _connection_form_page(
    request: HttpRequest, connection: ProviderConnection | None
) -> HttpResponse:
    form = ConnectionForm(request.POST if request.method == "POST" else None, instance=connection)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        saved = services.connection_save(
            connection=form.instance,
            name=data["name"],
            kind=data["kind"],
            base_url=data["base_url"],
            api_key=data["api_key"] or None,
            organization=data["organization"],
            project=data["project"],
            api_version=data["api_version"],
            webhook_secret=data["webhook_secret"] or None,
            enabled=data["enabled"],
            notify_emails=data["notify_emails"],
            slack_webhook_url=data["slack_webhook_url"],
            guardrail_defaults=data["guardrail_defaults"],
            actor=request.user,
        )
        messages.success(request, f"Saved the connection “{saved.name}”.")
        return redirect("jobs:connections")
    return render(request, "jobs/connection_form.html", {"form": form, "connection": connection})


@require_http_methods(["GET", "POST"])
@admin_required
def connection_new(request: HttpRequest) -> HttpResponse:
    return _connection_form_page(request, None)


@require_http_methods(["GET", "POST"])
@admin_required
def connection_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _connection_form_page(request, _connection_or_404(pk))


@require_POST
@admin_required
def connection_test(request: HttpRequest, pk: int) -> HttpResponse:
    connection = _connection_or_404(pk)
    try:
        # The admin waits for the answer: short timeouts, no retry (interactive_timeouts).
        models = provider_for_connection(connection, interactive=True).list_models()
    except (ProviderError, DecryptionError, ValueError) as exc:
        messages.error(request, f"“{connection.name}” failed: {exc}")
    else:
        count = len(models)
        messages.success(
            request, f"“{connection.name}” works: {count} model{'s' if count != 1 else ''} listed."
        )
    return redirect("jobs:connections")


# --- Launch -----------------------------------------------------------------------------------


def _clone_source(request: HttpRequest) -> Job | None:
    raw = request.GET.get("clone")
    if not raw:
        return None
    try:
        pk = uuid.UUID(raw)
    except ValueError:
        pk = None
    job = selectors.job_for_clone(pk) if pk else None
    if job is None:
        messages.warning(request, "There is no such job to clone; the form starts empty.")
    return job


def _get_initial(
    request: HttpRequest, clone: Job | None, options: selectors.LaunchOptions
) -> dict[str, Any]:
    if clone is not None:
        return launch_initial_from(clone)
    initial: dict[str, Any] = {"base_model": selectors.DEFAULT_BASE_MODEL_ID}
    connection = whole_number(request.GET.get("connection", ""))
    if connection is not None:
        initial["connection"] = connection
    if "dataset" not in request.GET:
        initial["training_dataset"] = options.default_training_dataset()
        return initial
    raw = request.GET["dataset"]
    dataset = whole_number(raw)
    if dataset is not None and dataset in options.datasets:
        initial["training_dataset"] = dataset
        return initial
    failure = selectors.dataset_validation_failure(dataset) if dataset is not None else None
    if failure is not None:
        name, error = failure
        messages.error(
            request,
            f"The dataset “{name}” could not be validated. {error} Choose a training dataset "
            "below.",
        )
    else:
        messages.error(
            request,
            f"No dataset “{raw[:40]}” that passed validation: choose a training dataset below.",
        )
    return initial


def _estimate(form: LaunchForm, options: selectors.LaunchOptions) -> selectors.LaunchEstimate:
    inputs = form.estimate_inputs()
    return selectors.launch_page_estimate(
        options=options,
        training_dataset=inputs["training_dataset"],
        base_model=inputs["base_model"],
        n_epochs=inputs["n_epochs"],
    )


def _estimate_context(form: LaunchForm, shown: selectors.LaunchEstimate) -> dict[str, Any]:
    inputs = form.estimate_inputs()
    epochs = inputs["n_epochs"]
    return {
        "estimate": shown.cost,
        "defaults": shown.defaults,
        "quotes_price": form.traits.quotes_price,
        "provider_label": form.traits.label,
        "tokens_estimated_with": (
            "" if form.traits.exact_token_counts or shown.cost is None else shown.cost.encoding
        ),
        "epochs_invalid": (form.is_bound and form.has_error("n_epochs"))
        or (epochs is not None and not services.HYPERPARAMETER_RULES["n_epochs"].allows(epochs)),
        "estimate_missing": shown.cost is None
        and shown.defaults is not None
        and bool(inputs["base_model"]),
    }


@never_cache
@require_GET
@member_required
def launch_estimate(request: HttpRequest) -> HttpResponse:
    """The launch page's estimate for the dataset, model and epochs in the query string, as the
    HTML the page shows (its script asks again when one of them changes)."""
    options = selectors.launch_options()
    form = LaunchForm(request.GET, options=options)
    return render(request, "jobs/_estimate.html", _estimate_context(form, _estimate(form, options)))


@require_http_methods(["GET", "POST"])
@member_required
def job_new(request: HttpRequest) -> HttpResponse:
    options = selectors.launch_options()
    clone: Job | None = None
    warnings: list[str] = []
    if request.method == "POST":
        form = LaunchForm(request.POST, options=options)
        if form.is_valid():
            warnings = selectors.launch_warnings(
                training_id=form.cleaned_data["training_dataset"],
                validation_id=form.cleaned_data.get("validation_dataset"),
            )
        if form.is_valid() and (not warnings or form.cleaned_data["accept_warnings"]):
            source_id = form.cleaned_data.get("cloned_from")
            clone = selectors.job_for_clone(source_id) if source_id else None
            try:
                job = services.job_launch(
                    request=form.launch_request(cloned_from=clone),
                    user=request.user,
                    catalog=options.models,
                )
            except JobError as exc:
                form.add_launch_error(exc)
            else:
                estimate = _estimate(form, options).cost
                cost = (
                    f" Estimated training cost: {money(estimate.cost)}."
                    if estimate is not None and estimate.cost is not None
                    else ""
                )
                messages.success(request, f"Launch of “{job.display_name}” requested.{cost}")
                return redirect("jobs:detail", pk=job.pk)
    else:
        clone = _clone_source(request)
        initial = _get_initial(request, clone, options)
        form = LaunchForm(initial=initial, options=options)
        warnings = selectors.launch_warnings(
            training_id=initial.get("training_dataset"),
            validation_id=initial.get("validation_dataset"),
        )
    listed = [m.listed_at for m in form.catalog_models if m.listed_at is not None]
    context = {
        "warnings": warnings,
        "estimated_defaults": form.declared == parameters.OPENAI,
        "models_listed_at": max(listed) if listed else None,
        **_estimate_context(form, _estimate(form, options)),
        "form": form,
        "options": options,
        "launch_data": {**options.js_data(), **form.js_data()},
        "clone": clone if request.method == "GET" else None,
        "hyperparameter_rows": form.hyperparameter_rows(),
    }
    return render(request, "jobs/new.html", context)


# --- Job page ---------------------------------------------------------------------------------


def _job_or_404(pk: uuid.UUID) -> Job:
    job = selectors.job_get(pk)
    if job is None:
        raise Http404("No such job.")
    return job


@require_GET
def job_detail(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    job = _job_or_404(pk)
    level = request.GET.get("level", "")
    if level not in selectors.EVENT_LEVELS:
        level = ""
    page = selectors.job_page(job, level=level)
    context = {
        "page": page,
        "job": job,
        "levels": selectors.EVENT_LEVELS,
        "progress": selectors.progress_percent(job),
        "activity": selectors.audit_for_job(job),
        "live_url": reverse("jobs:live", kwargs={"pk": job.pk}),
        "sections_key": selectors.sections_key(job, page.control),
        "sections_url": reverse("jobs:sections", kwargs={"pk": job.pk}),
        "sections": pages.page_sections(request=request, job=job, live=False),
        "guardrails": selectors.guardrail_panel(job),
        "reporting_snippet": selectors.reporting_snippet(
            job, server=request.build_absolute_uri("/").rstrip("/")
        ),
    }
    return render(request, "jobs/detail.html", context)


@never_cache
@require_GET
def job_sections(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """The parts of the job page that change with its status (badge, problems, timeline,
    provider ids, models and hyperparameters, controls for members, checkpoints) as an HTML
    fragment: the page's script swaps them in when the live JSON says they changed."""
    job = _job_or_404(pk)
    context = {
        "page": selectors.job_page(job),
        "job": job,
        "sections": pages.page_sections(request=request, job=job, live=True),
    }
    return render(request, "jobs/_detail_sections.html", context)


@require_GET
def job_events(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """Events older than the job page shows, ``EVENTS_SHOWN`` at a time, by a cursor."""
    job = _job_or_404(pk)
    level = request.GET.get("level", "")
    if level not in selectors.EVENT_LEVELS:
        level = ""
    before = whole_number(request.GET.get("before", ""))
    older = selectors.job_events_before(job, before=before, level=level) if before else None
    if older is None:
        context = {
            "job": job,
            "error": "That event is not one of this job's: start again from the job's page.",
        }
        return render(request, "jobs/events.html", context, status=404)
    context = {"job": job, "older": older, "level": level}
    return render(request, "jobs/events.html", context)


@never_cache
@require_GET
def job_live(request: HttpRequest, pk: uuid.UUID) -> JsonResponse:
    after = whole_number(request.GET.get("after", "0") or "0")
    if after is None:
        return JsonResponse({"error": "after must be a non-negative event id."}, status=400)
    level = request.GET.get("level", "")
    if level and level not in selectors.EVENT_LEVELS:
        return JsonResponse({"error": "Unknown event level."}, status=400)
    raw_step = request.GET.get("after_step", "")
    after_step = whole_number(raw_step) if raw_step else None
    if raw_step and after_step is None:
        return JsonResponse({"error": "after_step must be a non-negative step."}, status=400)
    job = selectors.job_live_get(pk)
    if job is None:
        return JsonResponse({"error": "No such job."}, status=404)
    data = selectors.job_live(job, after=after, level=level)
    # Nothing newer than the step reported here (a sync may commit meanwhile): the charts,
    # the diagnosis and the progress text of one poll speak of the same step.
    up_to_step = None if job.is_terminal else (job.last_step or 0)
    data.update(pages.live_parts(request=request, job=job, after_step=after_step,
                                 up_to_step=up_to_step))  # fmt: skip
    if request.GET.get("sections", "") != data["sections_key"]:
        full = selectors.job_get(pk)
        # Sections as of the state reported above; a sync committed meanwhile waits for the
        # next poll (the page keeps its key, so it is asked again).
        if (
            full is not None
            and full.last_synced_at == job.last_synced_at
            and full.status == job.status
        ):
            context = {
                "page": selectors.job_page(full),
                "job": full,
                "sections": pages.page_sections(request=request, job=full, live=True),
            }
            data["sections_html"] = render_to_string(
                "jobs/_detail_sections.html", context, request=request
            )
    if not job.is_terminal:
        # Someone is looking: the poller syncs the job every few seconds while this lasts.
        watching.job_watch(job_id=pk, now=timezone.now())
    return JsonResponse(data)


# --- Controls ---------------------------------------------------------------------------------


def _control(request: HttpRequest, pk: uuid.UUID, action: Callable[[Job], str]) -> HttpResponse:
    job = _job_or_404(pk)
    try:
        done = action(job)
    except JobError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect("jobs:detail", pk=job.pk)


# Each asks for the action and returns at once; a task talks to the provider and the run page
# follows it (its live JSON carries the control's state and outcome).
CONTROL_REQUESTED = {
    JobControl.Action.CANCEL: "Cancel requested",
    JobControl.Action.PAUSE: "Pause requested",
    JobControl.Action.RESUME: "Resume requested",
    JobControl.Action.SYNC: "Sync requested",
}


def _provider_control(request: HttpRequest, pk: uuid.UUID, action: str) -> HttpResponse:
    def ask(job: Job) -> str:
        services.job_control_request(job=job, user=request.user, action=action)
        return f"{CONTROL_REQUESTED[JobControl.Action(action)]}; this page shows the outcome."

    return _control(request, pk, ask)


def _confirmed_control(request: HttpRequest, pk: uuid.UUID, action: str) -> HttpResponse:
    """Cancel and pause act only on a POST from their confirmation page; anything else shows
    that page (what stops, what is billed, what is lost)."""
    if confirmed(request):
        return _provider_control(request, pk, action)
    job = _job_or_404(pk)
    return confirmation_page(request, confirmations.job_control_confirmation(job, action))


@require_http_methods(["GET", "POST"])
@member_required
def job_cancel(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    return _confirmed_control(request, pk, JobControl.Action.CANCEL)


@require_http_methods(["GET", "POST"])
@member_required
def job_pause(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    return _confirmed_control(request, pk, JobControl.Action.PAUSE)


@require_POST
@member_required
def job_resume(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    return _provider_control(request, pk, JobControl.Action.RESUME)


@require_POST
@member_required
def job_sync(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    return _provider_control(request, pk, JobControl.Action.SYNC)


@require_http_methods(["GET", "POST"])
@member_required
def job_delete_model(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    job = _job_or_404(pk)
    deleted_at = selectors.model_deleted_at(job)
    controls = selectors.job_controls(job, model_deleted=deleted_at is not None)
    form = DeleteModelForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        if not controls.delete_model:
            messages.error(request, _why_no_delete(job, controls, deleted_at is not None))
            return redirect("jobs:detail", pk=job.pk)
        try:
            services.job_control_request(
                job=job, user=request.user, action=JobControl.Action.DELETE_MODEL
            )
        except JobError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"Deletion of {job.fine_tuned_model} requested; this page shows the outcome.",
            )
        return redirect("jobs:detail", pk=job.pk)
    context = {
        "job": job,
        "form": form,
        "controls": controls,
        "page_cost": selectors.job_page(job).cost,
        "reason": ""
        if controls.delete_model
        else _why_no_delete(job, controls, deleted_at is not None),
    }
    return render(request, "jobs/delete_model.html", context)


def _why_no_delete(job: Job, controls: selectors.Controls, deleted: bool) -> str:
    if not job.fine_tuned_model:
        return "This job has no fine-tuned model."
    if deleted:
        return f"{job.fine_tuned_model} has already been deleted."
    return f"{controls.provider_reason}, so the model cannot be deleted from here."


def _set_archived(request: HttpRequest, pk: uuid.UUID, archived: bool) -> HttpResponse:
    def archive(job: Job) -> str:
        services.job_set_archived(job=job, user=request.user, archived=archived)
        return "Archived the job." if archived else "Restored the job from the archive."

    return _control(request, pk, archive)


@require_POST
@member_required
def job_stop(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """Ask a self-hosted run's training script to stop (it saves a checkpoint and ends)."""
    job = _job_or_404(pk)
    try:
        asked = selfhosted.run_stop_request(job=job, actor=request.user)
    except JobError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            "The training script is told to stop at its next report."
            if asked
            else "The run had already been asked to stop.",
        )
    return redirect("jobs:detail", pk=job.pk)


@require_POST
@member_required
def job_guardrail_save(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    job = _job_or_404(pk)
    form = GuardrailForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(e for errors in form.errors.values() for e in errors))
        return redirect(reverse("jobs:detail", args=[job.pk]) + "#guardrails-title")
    data = form.cleaned_data
    try:
        guardrails.guardrail_save(
            job=job, kind=data["kind"], params=data["params"], action=data["action"],
            enabled=data["enabled"], actor=request.user,
        )  # fmt: skip
    except guardrails.GuardrailError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Guardrail saved; it is checked at every sync.")
        # Checked now too, on what is already stored.
        guardrails.guardrails_evaluate(job_id=job.pk)
    return redirect(reverse("jobs:detail", args=[job.pk]) + "#guardrails-title")


@require_POST
@member_required
def job_archive(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    return _set_archived(request, pk, True)


@require_POST
@member_required
def job_unarchive(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    return _set_archived(request, pk, False)


@require_http_methods(["GET", "POST"])
@member_required
def job_edit(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    job = _job_or_404(pk)
    initial = {"name": job.name, "notes": job.notes, "tags": ", ".join(job.tags or [])}
    form = AnnotateForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.job_annotate(
            job=job, user=request.user, name=data["name"], notes=data["notes"], tags=data["tags"]
        )
        messages.success(request, "Saved the name, notes and tags.")
        return redirect("jobs:detail", pk=job.pk)
    return render(request, "jobs/edit.html", {"job": job, "form": form})

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotFound,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.template.backends.utils import csrf_input
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.confirm import confirmation_page, confirmed
from core.params import whole_number
from core.permissions import can_act, is_admin, member_required
from dashboard import confirmations, presentation, selectors_list, selectors_runs, services, share
from dashboard.charts import comparison_tables_csv
from dashboard.forms import (
    ChartOptionsForm,
    NotesForm,
    RunFilterForm,
    ShareLinkForm,
    TagsForm,
)
from dashboard.models import MAX_COMPARE, ShareLink
from evals import selectors as evals_selectors
from evals.selectors import latest_final_scores
from jobs.models import Job
from jobs.services import job_annotate


def _json(payload: Any, status: int = 200) -> JsonResponse:
    """Compact JSON (figures are mostly numbers: the spaces would add a tenth)."""
    return JsonResponse(payload, status=status, json_dumps_params={"separators": (",", ":")})


# --- Runs list ---------------------------------------------------------------------------------

SORTABLE_COLUMNS = ("n_epochs", "batch_size", "lr", "learning_rate", "tokens", "cost", "train_loss", "valid_loss",
                    "valid_step", "duration", "created")  # fmt: skip


def _sort_links(filters: selectors_runs.RunFilters) -> dict[str, dict[str, str]]:
    """Per sortable column: the direction a click asks for and the current aria-sort."""
    links = {}
    for key in SORTABLE_COLUMNS:
        active = filters.sort == key
        if active:
            next_dir = "asc" if filters.descending else "desc"
            aria = "descending" if filters.descending else "ascending"
        else:
            next_dir, aria = ("desc" if key in ("created", "tokens", "cost") else "asc"), "none"
        links[key] = {"dir": next_dir, "aria": aria, "active": "1" if active else ""}
    return links


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    form = RunFilterForm(request.GET)
    filters = form.filters()
    page = selectors_runs.runs_page(filters, page_number=request.GET.get("page") or 1)
    hidden = selectors_list.run_list_hidden_columns(request.user)
    in_use = [name for name in form.fields if name not in ("sort", "dir") and request.GET.get(name)]
    any_filter = bool(in_use)
    steps, no_provider = (
        selectors_list.first_steps(request.user)
        if not page.rows and not any_filter
        else ([], False)
    )
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "rows": page.rows,
        "rows_html": presentation.rows_html(
            presentation.list_rows(page.rows),
            editable=can_act(request.user),
            csrf_input=csrf_input(request),
            next_url=request.get_full_path(),
        ),
        "sorts": _sort_links(filters),
        "next_url": request.get_full_path(),
        "any_filter": any_filter,
        "active_filters": len(in_use),
        "hidden_classes": " ".join(f"tb-hide-{key}" for key in sorted(hidden)),
        "columns": selectors_list.column_choices(hidden),
        "first_steps": steps,
        "no_provider": no_provider,
    }
    return render(request, "dashboard/home.html", context)


@require_POST
def run_list_columns(request: HttpRequest) -> HttpResponse:
    """The column chooser (a personal display choice: any reader may keep one)."""
    shown = [value for value in request.POST.getlist("show") if len(value) <= 40]
    hidden = services.run_list_columns_set(user=request.user, shown=shown)
    if _wants_json(request):
        return _json({"hidden": hidden})
    return _back(request)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _safe_next(request: HttpRequest, target: str) -> str:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


def _back(request: HttpRequest) -> HttpResponse:
    return redirect(_safe_next(request, request.POST.get("next", "")) or "home")


def _annotation_job(pk: uuid.UUID) -> Job:
    job = selectors_runs.job_for_annotation(pk)
    if job is None:
        raise Http404("No such run.")
    return job


def _annotated(request: HttpRequest, job: Job, form: Any, **changes: Any) -> HttpResponse:
    if not form.is_valid():
        errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
        if _wants_json(request):
            return _json({"error": errors}, status=400)
        messages.error(request, f"Not saved: {errors}")
        return _back(request)
    job = job_annotate(job=job, user=request.user, **changes)
    if _wants_json(request):
        return _json({"id": str(job.pk), "tags": job.tags, "notes": job.notes})
    messages.success(request, f"Saved “{job.display_name}”.")
    return _back(request)


@require_POST
@member_required
def run_tags(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    job = _annotation_job(pk)
    form = TagsForm(request.POST)
    tags = form.cleaned_data["tags"] if form.is_valid() else None
    return _annotated(request, job, form, tags=tags)


@require_POST
@member_required
def run_notes(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    job = _annotation_job(pk)
    form = NotesForm(request.POST)
    notes = form.cleaned_data["notes"] if form.is_valid() else None
    return _annotated(request, job, form, notes=notes)


# --- A run's charts: figures, live points, exports -------------------------------------------


def _json_404(message: str = "No such run.") -> JsonResponse:
    return _json({"error": message}, status=404)


def _after_step(request: HttpRequest) -> int | None:
    return whole_number(request.GET.get("after_step", "0") or "0")


def diagnosis_html(diagnosis: dict[str, Any] | None, *, public: bool = False) -> str:
    return render_to_string("dashboard/_diagnosis.html", {"diagnosis": diagnosis, "public": public})


def _figures_payload(charts: selectors_runs.RunCharts, *, public: bool) -> dict[str, Any]:
    return {
        "figures": charts.figures,
        "descriptions": charts.descriptions,
        "x_axis": charts.x_axis,
        "last_step": charts.last_step,
        "status": charts.job.status,
        "terminal": charts.terminal,
        "conversion": charts.conversion(),
        "diagnosis_html": diagnosis_html(charts.diagnosis, public=public),
    }


@never_cache
@require_GET
def run_figures_json(request: HttpRequest, pk: uuid.UUID) -> JsonResponse:
    job = selectors_runs.chart_job(pk)
    if job is None:
        return _json_404()
    options = ChartOptionsForm(request.GET).options()
    # The job page asks for figures up to the step its last poll showed (not for a newer
    # one a sync stored meanwhile), so the charts never run ahead of the status.
    raw = request.GET.get("up_to_step", "")
    up_to_step = whole_number(raw) if raw else None
    if raw and up_to_step is None:
        return _json({"error": "up_to_step must be a non-negative step."}, status=400)
    if job.status in Job.TERMINAL:
        up_to_step = None
    charts = selectors_runs.run_charts(job, options, up_to_step=up_to_step)
    return _json(_figures_payload(charts, public=False))


@never_cache
@require_GET
def run_metrics_json(request: HttpRequest, pk: uuid.UUID) -> JsonResponse:
    after = _after_step(request)
    if after is None:
        return _json({"error": "after_step must be a non-negative step."}, status=400)
    job = selectors_runs.chart_job(pk)
    if job is None:
        return _json_404()
    return _json(selectors_runs.live_update(job, after_step=after))


def _download(content: str, *, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
def run_export_csv(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    if selectors_runs.chart_job(pk) is None:
        raise Http404("No such run.")
    return _download(
        selectors_runs.run_metrics_csv(pk),
        filename=f"run-{pk}-metrics.csv",
        content_type="text/csv; charset=utf-8",
    )


@require_GET
def run_export_json(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    if selectors_runs.chart_job(pk) is None:
        raise Http404("No such run.")
    import json

    return _download(
        json.dumps(selectors_runs.run_metrics_json(pk)),
        filename=f"run-{pk}-metrics.json",
        content_type="application/json",
    )


# --- Compare -----------------------------------------------------------------------------------


def compare_url(ids: list[str], **params: str) -> str:
    query = {"runs": ",".join(ids), **{k: v for k, v in params.items() if v}}
    return f"{reverse('compare')}?{urlencode(query, safe=',')}"


def _compare_ids(request: HttpRequest) -> tuple[list[str], list[str]]:
    return selectors_runs.parse_run_ids(request.GET.getlist("runs") + request.GET.getlist("add"))


@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    raw = request.GET.getlist("runs")
    ids, rejected = _compare_ids(request)
    if request.GET.get("from") == "list" and len(ids) < selectors_runs.MIN_COMPARE:
        # "Compare selected" sent without the page script (which explains this in place).
        if not ids:
            messages.warning(
                request,
                "No runs were selected: tick two to 20 runs in the first column, "
                "then press “Compare selected”.",
            )
            return redirect("home")
        messages.info(request, "Only one run was selected: add another below to compare them.")
        return redirect(compare_url(ids))
    hp = "all" if request.GET.get("hp") == "all" else ""
    if len(ids) > MAX_COMPARE:
        messages.warning(
            request,
            f"At most {MAX_COMPARE} runs can be compared; the first {MAX_COMPARE} are shown.",
        )
        ids = ids[:MAX_COMPARE]
    canonical = ",".join(ids)
    if rejected:
        messages.warning(request, f"Ignored {len(rejected)} value(s) that are not run ids.")
    if (
        request.GET.get("from")
        or request.GET.getlist("add")
        or len(raw) > 1
        or (raw and raw[0] != canonical)
        or rejected
    ):
        return redirect(compare_url(ids, hp=hp) if ids else reverse("compare"))
    options = ChartOptionsForm(request.GET).options()
    comparison = selectors_runs.comparison(ids, options) if len(ids) >= 2 else None
    if comparison is not None and len(comparison.runs) < selectors_runs.MIN_COMPARE:
        messages.warning(request, f"{len(comparison.missing)} of these runs no longer exist.")
        comparison = None
    context = {
        "comparison": comparison,
        "ids": ids,
        "hp_all": hp == "all",
        "recent": selectors_runs.recent_runs(ids),
        "runs_param": canonical,
        # Fewer than two runs: the ones chosen so far, listed above the chooser.
        "single": selectors_runs.compare_jobs(ids) if ids and comparison is None else [],
        "remove_urls": {
            job_id: compare_url([other for other in ids if other != job_id], hp=hp)
            for job_id in ids
        },
        "hp_toggle_url": compare_url(ids, hp="" if hp == "all" else "all"),
        "export_url": f"{reverse('compare_export_csv')}?{urlencode({'runs': canonical}, safe=',')}",
        "max_runs": MAX_COMPARE,
    }
    if comparison is not None:
        context["evaluation_scores"] = latest_final_scores(
            [r.job.pk for r in comparison.runs if r.job]
        )
        context["axes"] = comparison.supported_axes()
        context["config"] = {
            "figures_url": f"{reverse('compare_figures')}?{urlencode({'runs': canonical}, safe=',')}",
            "x_axis": comparison.x_axis,
            "smoothing": options.smoothing,
            "log_y": options.log_y,
            "png_name": "comparison",
        }
    return render(request, "dashboard/compare.html", context)


@never_cache
@require_GET
def compare_figures_json(request: HttpRequest) -> JsonResponse:
    ids, _ = _compare_ids(request)
    ids = ids[:MAX_COMPARE]
    if len(ids) < selectors_runs.MIN_COMPARE:
        return _json({"error": "Name 2 to 20 runs."}, status=400)
    comparison = selectors_runs.comparison(ids, ChartOptionsForm(request.GET).options())
    return _json(
        {
            "figures": comparison.figures,
            "descriptions": comparison.descriptions,
            "x_axis": comparison.x_axis,
        }
    )


@require_GET
def compare_export_csv(request: HttpRequest) -> HttpResponse:
    ids, _ = _compare_ids(request)
    ids = ids[:MAX_COMPARE]
    if not ids:
        raise Http404("Name the runs to export.")
    comparison = selectors_runs.comparison(ids)
    return _download(
        comparison_tables_csv(comparison.rows),
        filename="comparison.csv",
        content_type="text/csv; charset=utf-8",
    )


# --- Share links (members) ---------------------------------------------------------------------

SESSION_NEW_SHARE = "dashboard_new_share_link"


def _own_link(request: HttpRequest, pk: int) -> ShareLink:
    links = ShareLink.objects.defer("snapshot")
    if not is_admin(request.user):
        links = links.filter(created_by=request.user)
    link = links.filter(pk=pk).first()
    if link is None:
        raise Http404("No such share link.")
    return link


@require_GET
@member_required
def share_link_list(request: HttpRequest) -> HttpResponse:
    created = request.session.pop(SESSION_NEW_SHARE, None)
    new_link = None
    if created:
        new_link = {
            "id": created["id"],
            "url": request.build_absolute_uri(reverse("share_page", args=[created["token"]])),
        }
    links = selectors_runs.share_links_of(request.user)
    return render(
        request,
        "dashboard/share_links.html",
        {"links": links, "new_link": new_link},
    )


def _share_link_from(request: HttpRequest, **target: Any) -> HttpResponse:
    form = ShareLinkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The share link could not be created: the form was invalid.")
        return _back(request)
    data = form.cleaned_data
    if "evaluation_id" not in target:
        if data.get("job"):
            target["job_ids"] = [str(data["job"])]
        else:
            target["job_ids"], _ = selectors_runs.parse_run_ids([data.get("runs") or ""])
    try:
        link, token = services.share_link_create(
            user=request.user,
            label=data.get("label") or "",
            expires_at=form.expires_at(),
            include_outputs=bool(data.get("include_outputs")),
            **target,
        )
    except services.ShareLinkError as exc:
        messages.error(request, str(exc))
        return _back(request)
    request.session[SESSION_NEW_SHARE] = {"id": link.pk, "token": token}
    return redirect("share_links")


@require_POST
@member_required
def share_link_create(request: HttpRequest) -> HttpResponse:
    """A link to a run (``job``) or a comparison (``runs``)."""
    return _share_link_from(request)


@require_POST
@member_required
def evaluation_share_create(request: HttpRequest, pk: int) -> HttpResponse:
    return _share_link_from(request, evaluation_id=pk)


@require_http_methods(["GET", "POST"])
@member_required
def share_link_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revokes only on a POST from its confirmation page; anything else shows that page."""
    link = _own_link(request, pk)
    if confirmed(request):
        if link.revoked_at is None:
            services.share_link_revoke(link=link, user=request.user)
            messages.success(request, f"Revoked the share link “{link.label}”.")
        else:
            messages.info(request, f"The share link “{link.label}” was already revoked.")
        return _back(request) if request.POST.get("next") else redirect("share_links")
    target = _safe_next(request, request.GET.get("next") or request.POST.get("next") or "")
    confirmation = confirmations.share_link_revoke_confirmation(
        link,
        back_url=target or reverse("share_links"),
        back_label="Back" if target else "Share links",
        hidden={"next": target} if target else {},
    )
    return confirmation_page(request, confirmation)


# --- Public share pages --------------------------------------------------------------------------


def share_missing() -> HttpResponse:
    """One fixed answer for revoked, expired and unknown tokens (nothing to tell them apart)."""
    response = HttpResponseNotFound(render_to_string("dashboard/share_missing.html"))
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _public(response: HttpResponse) -> HttpResponse:
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _evaluation_share_page(request: HttpRequest, link: ShareLink) -> HttpResponse:
    """The public page of an evaluation link: the summary, and the grid when the link includes
    the outputs."""
    evaluation = link.evaluation
    if evaluation is None:
        return share_missing()
    params = evals_selectors.grid_params(request.GET, evaluation.columns.count())
    context = evals_selectors.results_context(evaluation, params, outputs=link.include_outputs)
    context.update(public=True, title=link.label or evaluation.name)
    return render(request, "evals/share.html", context)


@login_not_required
@never_cache
@require_GET
def share_page(request: HttpRequest, token: str) -> HttpResponse:
    link = share.active_link(token)
    if link is not None and link.kind == ShareLink.Kind.EVALUATION:
        services.share_link_record_view(link=link)
        return _public(_evaluation_share_page(request, link))
    data = share.page_data(link) if link is not None else None
    if link is None or data is None:
        return share_missing()
    services.share_link_record_view(link=link)
    figures = data["figures"]
    context: dict[str, Any] = {
        "data": data,
        "figures": figures,
        "descriptions": share.descriptions_for(data, figures),
        "axes": share.supported_axes(data),
        "token": token,
    }
    base = {"x_axis": "step", "smoothing": 0.0, "log_y": False}
    figures_url = reverse("share_figures", args=[token])
    if data["kind"] == ShareLink.Kind.RUN:
        entry = data["runs"][0]
        context["run"] = entry
        context["config"] = {
            **base,
            "figures_url": figures_url,
            "metrics_url": reverse("share_metrics", args=[token]) + "?run=" + entry["id"],
            "last_step": entry["last_step"] or 0,
            "terminal": bool(link.snapshot) or entry["terminal"],
            "conversion": {
                "steps_per_epoch": entry["steps_per_epoch"],
                "tokens_per_step": entry["tokens_per_step"],
            },
            "png_name": "run",
        }
        context["rc"] = {
            "figures": figures,
            "descriptions": context["descriptions"],
            "diagnosis": data.get("diagnosis"),
            "axes": context["axes"],
            "config": context["config"],
        }
    else:
        context["comparison"] = share.comparison_of(data, selectors_runs.ChartOptions())
        context["config"] = {**base, "figures_url": figures_url, "png_name": "comparison"}
    return _public(render(request, "dashboard/share.html", context))


@login_not_required
@never_cache
@require_GET
def share_metrics_json(request: HttpRequest, token: str) -> HttpResponse:
    link = share.active_link(token)
    after = _after_step(request)
    if link is None or after is None:
        return share_missing()
    run = request.GET.get("run", "r1")
    if link.snapshot:
        payload = share.snapshot_points(link.snapshot, run, after)
    else:
        job = share.live_job(link, run)
        payload = selectors_runs.live_update(job, after_step=after) if job else None
    if payload is None:
        return share_missing()
    return _public(_json(payload))


@login_not_required
@never_cache
@require_GET
def share_figures_json(request: HttpRequest, token: str) -> HttpResponse:
    link = share.active_link(token)
    data = share.page_data(link) if link is not None else None
    if link is None or data is None:
        return share_missing()
    figures = share.figures_for(data, ChartOptionsForm(request.GET).options())
    payload: dict[str, Any] = {
        "figures": figures,
        "descriptions": share.descriptions_for(data, figures),
        "x_axis": figures["loss"]["layout"]["meta"]["x_axis"],
    }
    if data["kind"] == ShareLink.Kind.RUN:
        entry = data["runs"][0]
        payload.update(
            last_step=entry["last_step"],
            status=entry["status"],
            terminal=bool(data.get("frozen_at")) or entry["terminal"],
            conversion={
                "steps_per_epoch": entry["steps_per_epoch"],
                "tokens_per_step": entry["tokens_per_step"],
            },
            diagnosis_html=diagnosis_html(data.get("diagnosis"), public=True),
        )
    return _public(_json(payload))

"""The run page's charts section (slot ``charts``), added through ``jobs.signals.job_page``."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse

from core.permissions import can_act
from dashboard import selectors_runs
from jobs.models import Job
from jobs.pages import LivePart, PageSection


def run_charts_context(request: HttpRequest | None, job: Job) -> dict[str, Any]:
    """Everything ``dashboard/_run_charts.html`` shows for ``job``."""
    user = getattr(request, "user", None)
    sharing = can_act(user)
    # Drawn up to the step the page's progress shows (read with the job), never past it.
    up_to_step = None if job.is_terminal else (job.last_step or 0)
    charts = selectors_runs.run_charts(job, up_to_step=up_to_step)
    marks = {mark.step: mark.model_id for mark in charts.checkpoints}
    diagnosis = charts.diagnosis
    best_model = marks.get(diagnosis["best_step"]) if diagnosis else None
    return {
        "charts": charts,
        "id": str(job.pk),
        "figures": charts.figures,
        "descriptions": charts.descriptions,
        "diagnosis": diagnosis,
        "best_checkpoint_model": best_model,
        "axes": charts.supported_axes(),
        "exports": {
            "csv": reverse("run_export_csv", args=[job.pk]),
            "json": reverse("run_export_json", args=[job.pk]),
        },
        "config": {
            "figures_url": reverse("run_figures", args=[job.pk]),
            "metrics_url": reverse("run_metrics", args=[job.pk]),
            "last_step": charts.last_step or 0,
            "terminal": charts.terminal,
            "x_axis": charts.x_axis,
            "smoothing": 0.0,
            "log_y": False,
            "conversion": charts.conversion(),
            "png_name": f"run-{job.pk}",
            # The job page's own poll (job_detail.js) brings the new points, so that the
            # charts move with the status and progress; share pages poll for themselves.
            "live_from_page": True,
        },
        "can_share": sharing,
        "share_links": selectors_runs.share_links_for_job(job) if sharing else [],
        "share_create_url": reverse("share_link_create"),
        "next_url": request.get_full_path() if request is not None else "",
    }


def run_charts_section(
    sender: object, *, request: HttpRequest, job: Job, live: bool, **kwargs: Any
) -> PageSection | None:
    if live:  # the charts update themselves from their JSON views
        return None
    html = render_to_string(
        "dashboard/_run_charts.html",
        {"job": job, "rc": run_charts_context(request, job)},
        request=request,
    )
    return PageSection(slot="charts", html=html)


def run_charts_live(
    sender: object,
    *,
    request: HttpRequest,
    job: Job,
    after_step: int | None,
    up_to_step: int | None,
    **kwargs: Any,
) -> LivePart | None:
    """The charts' share of the job page's poll: new points up to the step the poll reports,
    and, when something moved, the diagnosis of exactly those points."""
    if after_step is None:
        return None
    chart_job = selectors_runs.chart_job(job.pk)
    if chart_job is None:
        return None
    data = selectors_runs.live_update(chart_job, after_step=after_step, up_to_step=up_to_step)
    # The job as the poll reports it (read first), not as it may have moved since.
    data.update(
        status=job.status,
        status_display=job.get_status_display(),
        terminal=job.is_terminal,
        total_steps=job.total_steps,
    )
    if data["points"] or data["terminal"] or after_step == 0:
        diagnosis = selectors_runs.live_diagnosis(chart_job, up_to_step=up_to_step)
        data["diagnosis_html"] = render_to_string(
            "dashboard/_diagnosis.html", {"diagnosis": diagnosis, "public": False}
        )
    return LivePart(key="charts", data=data)

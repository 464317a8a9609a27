"""Sweep pages: the list, the plan-and-start form (members), a sweep's live page (the comparison
of all its runs), its JSON poll, its CSV export and cancel-all (members)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from core.confirm import Confirmation, confirmation_page, confirmed
from core.permissions import can_act, member_required
from dashboard import selectors_sweeps
from jobs import selectors as job_selectors
from jobs.models import Sweep
from jobs.services import LaunchRejected
from jobs.sweep_forms import SweepForm
from jobs.sweep_plans import sweep_plan
from jobs.sweeps import sweep_cancel, sweep_create


@require_GET
def sweep_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/sweeps.html",
        {"sweeps": selectors_sweeps.sweeps_list(), "can_act": can_act(request.user)},
    )


@require_http_methods(["GET", "POST"])
@member_required
def sweep_new(request: HttpRequest) -> HttpResponse:
    """GET: the form (``?connection=`` picks whose parameters it shows). POST ``plan``: the
    plan, every run with its estimated cost. POST ``start``: the sweep, made from the same
    plan again (refused as a whole if anything in it is)."""
    options = job_selectors.launch_options()
    if request.method == "GET":
        form = SweepForm(initial={"connection": request.GET.get("connection", "")},
                         options=options)  # fmt: skip
        return render(request, "dashboard/sweep_new.html", {"form": form})
    form = SweepForm(request.POST, options=options)
    plan = None
    problems: list[str] = []
    if form.is_valid():
        plan = sweep_plan(request=form.sweep_request(), catalog=options.models)
        if request.POST.get("action") == "start":
            try:
                sweep = sweep_create(request=form.sweep_request(), user=request.user, plan=plan)
            except LaunchRejected as exc:
                problems = [str(p) for p in exc.problems]
            else:
                messages.success(request, f"Sweep started: {len(plan.rows)} runs planned.")
                return redirect("sweep_detail", pk=sweep.pk)
    status = 200 if form.is_valid() and not problems else 400
    context = {"form": form, "plan": plan, "problems": problems}
    return render(request, "dashboard/sweep_new.html", context, status=status)


def _sweep_or_404(pk: int) -> Sweep:
    sweep = selectors_sweeps.sweep_get(pk)
    if sweep is None:
        raise Http404("No such sweep.")
    return sweep


@require_GET
def sweep_detail(request: HttpRequest, pk: int) -> HttpResponse:
    page = selectors_sweeps.sweep_page(_sweep_or_404(pk))
    context = {"page": page, "can_act": can_act(request.user)}
    if page.comparison is not None:
        runs = ",".join(page.job_ids)
        context["axes"] = page.comparison.supported_axes()
        context["config"] = {
            "figures_url": f"{reverse('compare_figures')}?{urlencode({'runs': runs}, safe=',')}",
            "x_axis": page.comparison.x_axis,
            "smoothing": 0.0,
            "log_y": False,
            "png_name": slugify(page.sweep.name) or "sweep",
        }
    return render(request, "dashboard/sweep_detail.html", context)


@never_cache
@require_GET
def sweep_live(request: HttpRequest, pk: int) -> JsonResponse:
    """The sweep page's poll: its status, budget and runs table, and whether the charts have
    new runs or steps to draw (``version``)."""
    page = selectors_sweeps.sweep_page(_sweep_or_404(pk), with_comparison=False)
    html = render_to_string(
        "dashboard/_sweep_status.html",
        {"page": page, "can_act": can_act(request.user)},
        request=request,
    )
    running = page.sweep.is_active or page.counts["running"] > 0
    return JsonResponse(
        {
            "status": page.sweep.status,
            "active": running,
            "version": page.version,
            "job_ids": page.job_ids,
            "settled": page.settled,
            "html": html,
            "parallel": page.parallel,
        }
    )


@require_GET
def sweep_export_csv(request: HttpRequest, pk: int) -> HttpResponse:
    page = selectors_sweeps.sweep_page(_sweep_or_404(pk), with_comparison=False)
    response = HttpResponse(
        selectors_sweeps.sweep_csv(page), content_type="text/csv; charset=utf-8"
    )
    name = slugify(page.sweep.name) or f"sweep-{page.sweep.pk}"
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@require_http_methods(["GET", "POST"])
@member_required
def sweep_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: what cancelling the whole sweep does; a confirmed POST does it."""
    sweep = _sweep_or_404(pk)
    if not confirmed(request):
        page = selectors_sweeps.sweep_page(sweep, with_comparison=False)
        confirmation = Confirmation(
            title=f"Cancel the sweep “{sweep.name}”?",
            back_url=reverse("sweep_detail", args=[sweep.pk]),
            back_label="the sweep",
            consequences=[
                f"{page.counts['waiting']} planned run(s) will not be launched.",
                f"{page.counts['running']} run(s) under way will be cancelled at the provider; "
                "what they trained so far is still billed.",
                "Finished runs, their models and checkpoints are kept.",
            ],
            button="Cancel the sweep",
            keep="Keep it running",
            unavailable="" if sweep.status == Sweep.Status.RUNNING else "This sweep has ended.",
        )
        return confirmation_page(
            request, confirmation, status=200 if request.method == "GET" else 400
        )
    if sweep_cancel(sweep=sweep, user=request.user):
        messages.success(request, "Sweep cancelled: nothing more is launched, and every run "
                         "under way is being cancelled.")  # fmt: skip
    else:
        messages.info(request, "This sweep had already ended.")
    return redirect("sweep_detail", pk=sweep.pk)

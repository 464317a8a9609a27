from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.params import whole_number
from core.permissions import member_required
from evals import selectors, services
from evals.choices import model_choices, run_choices
from evals.forms import EvaluationForm
from evals.models import EvalOutput, Evaluation
from jobs.models import Job
from jobs.services import job_checkpoints_check


def _evaluation_or_404(pk: int) -> Evaluation:
    evaluation = selectors.evaluation_get(pk)
    if evaluation is None:
        raise Http404("No such evaluation.")
    return evaluation


@require_GET
def evaluation_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.evaluations_recent(), 25).get_page(request.GET.get("page"))
    return render(request, "evals/list.html", {"page": page})


def _prefill(request: HttpRequest) -> tuple[dict[str, Any], Job | None]:
    initial: dict[str, Any] = {}
    job = None
    raw_job = request.GET.get("job", "")
    if raw_job:
        try:
            job = Job.objects.select_related("connection").filter(pk=uuid.UUID(raw_job)).first()
        except ValueError:
            job = None
    if job is not None:
        job_checkpoints_check(job=job)  # so that deleted ones are not pre-selected
        choices = run_choices(job)
        initial["models"] = [c.key for c in choices]
        if choices:
            initial["baseline"] = choices[0].key
        dataset = job.validation_dataset or job.training_dataset
        if dataset is not None:
            initial["dataset"] = dataset.pk
        initial["name"] = f"{job.display_name} · checkpoints"
    elif (dataset_id := whole_number(request.GET.get("dataset"))) is not None:
        initial["dataset"] = dataset_id
    return initial, job


@require_http_methods(["GET", "POST"])
@member_required
def evaluation_new(request: HttpRequest) -> HttpResponse:
    estimate = None
    job = None
    if request.method == "POST":
        choices = model_choices()
        form = EvaluationForm(request.POST, choices=choices)
        if form.is_valid():
            evaluation_request = services.EvaluationRequest(
                name=form.cleaned_data["name"],
                dataset=form.cleaned_data["dataset"],
                model_keys=form.cleaned_data["models"],
                graders=form.grader_list(),
                temperature=form.cleaned_data["temperature"],
                max_tokens=form.cleaned_data["max_tokens"],
                seed=form.cleaned_data["seed"],
                max_examples=form.cleaned_data["max_examples"],
                baseline_position=form.baseline_position(),
                judge_key=form.cleaned_data["judge"],
                judge_prompt=form.cleaned_data["judge_prompt"],
                judge_pairwise=form.cleaned_data["judge_pairwise"],
                judge_pairwise_prompt=form.cleaned_data["judge_pairwise_prompt"],
                win_grader=form.win_grader_id(),
            )
            try:
                if request.POST.get("action") == "start":
                    evaluation = services.evaluation_create(
                        request=evaluation_request, user=request.user
                    )
                    messages.success(request, f"Evaluation “{evaluation}” started.")
                    return redirect("evals:detail", pk=evaluation.pk)
                examples, skipped = services.load_examples(
                    evaluation_request.dataset, evaluation_request.max_examples
                )
                estimate = services.estimate(
                    examples, skipped, services.resolve_models(evaluation_request.model_keys)
                )
            except services.EvaluationError as exc:
                form.add_error(None, str(exc))
    else:
        initial, job = _prefill(request)  # first: it may learn that checkpoints are gone
        choices = model_choices()
        form = EvaluationForm(initial=initial, choices=choices)
        if job is not None and not initial.get("models"):
            messages.warning(
                request, "This run's models cannot be called: its connection is not usable."
            )
    context = {"form": form, "estimate": estimate, "job": job, "has_models": bool(choices)}
    return render(request, "evals/new.html", context)


@require_GET
def evaluation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    evaluation = _evaluation_or_404(pk)
    params = selectors.grid_params(request.GET, evaluation.columns.count())
    context = selectors.results_context(evaluation, params)
    context["status_url"] = reverse("evals:status", kwargs={"pk": pk})
    if request.GET.get("fragment") == "results":
        return render(request, "evals/_fragment.html", context)
    return render(request, "evals/detail.html", context)


@never_cache
@require_GET
def evaluation_status_json(request: HttpRequest, pk: int) -> JsonResponse:
    evaluation = selectors.evaluation_get(pk)
    if evaluation is None:
        return JsonResponse({"error": "No such evaluation."}, status=404)
    return JsonResponse(
        {
            "status": evaluation.status,
            "status_display": evaluation.get_status_display(),
            "terminal": evaluation.is_terminal,
            "percent": round(evaluation.progress_percent, 1),
            "cells_done": evaluation.cells_done,
            "cells_total": evaluation.cells_total,
            "cells_failed": evaluation.cells_failed,
            "judge_done": evaluation.judge_done,
            "judge_total": evaluation.judge_total,
            "last_error": evaluation.last_error,
        }
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(evaluation: Evaluation) -> Iterator[list[Any]]:
    specs = selectors.grader_specs(evaluation)
    yield [
        "example", "line", "model", "model_name", "status", "output", "reference", "error",
        "latency_ms", "prompt_tokens", "completion_tokens",
        *[s.id for s in specs], "judge_score", "pairwise_score",
    ]  # fmt: skip
    outputs = (
        EvalOutput.objects.filter(evaluation=evaluation)
        .select_related("example", "column")
        .order_by("example__position", "column__position")
    )
    for o in outputs.iterator(chunk_size=500):
        yield [
            o.example.position + 1, o.example.line_number, o.column.label, o.column.model_name,
            o.status, o.content, o.example.reference, o.error, o.latency_ms, o.prompt_tokens,
            o.completion_tokens, *[(o.scores or {}).get(s.id) for s in specs], o.judge_score,
            o.pairwise_score,
        ]  # fmt: skip


@require_GET
def evaluation_export_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    evaluation = _evaluation_or_404(pk)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in _csv_rows(evaluation)), content_type="text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="evaluation-{pk}.csv"'
    return response


@require_POST
@member_required
def evaluation_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    evaluation = _evaluation_or_404(pk)
    if services.evaluation_cancel(evaluation=evaluation, user=request.user):
        messages.success(request, "Evaluation cancelled; answered cells are kept.")
    else:
        messages.error(request, "Only a queued or running evaluation can be cancelled.")
    return redirect("evals:detail", pk=pk)


@require_POST
@member_required
def evaluation_win_grader(request: HttpRequest, pk: int) -> HttpResponse:
    evaluation = _evaluation_or_404(pk)
    try:
        services.evaluation_set_win_grader(
            evaluation=evaluation, grader=request.POST.get("win_grader", ""), user=request.user
        )
    except services.EvaluationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Win rate vs baseline counted on the chosen grader.")
    return redirect("evals:detail", pk=pk)


@require_POST
@member_required
def evaluation_rerun_failed(request: HttpRequest, pk: int) -> HttpResponse:
    evaluation = _evaluation_or_404(pk)
    count = services.evaluation_rerun_failed(evaluation=evaluation, user=request.user)
    if count:
        messages.success(request, f"{count} failed cell(s) queued again.")
    else:
        messages.info(request, "No failed cells to run again.")
    return redirect("evals:detail", pk=pk)

from __future__ import annotations

import math
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.permissions import member_required
from datasets import examples, selectors, services, uploads
from datasets.charts import report_charts
from datasets.derive import DeriveRejected
from datasets.forms import (
    DatasetFilterForm,
    DatasetUploadForm,
    ModelChoiceForm,
    SplitForm,
    SubsetForm,
)
from datasets.incoming import UploadRejected
from datasets.lineindex import seek_line
from datasets.models import Dataset
from datasets.presentation import finding_groups, summary, validity_rows
from datasets.validation import PRIMARY

LIST_PAGE_SIZE = 25


def _dataset_or_404(pk: int, *, with_report: bool = False) -> Dataset:
    dataset = selectors.dataset_get(pk, with_report=with_report)
    if dataset is None:
        raise Http404("No such dataset.")
    return dataset


@require_GET
def dataset_list(request: HttpRequest) -> HttpResponse:
    form = DatasetFilterForm(request.GET)
    paginator = Paginator(selectors.dataset_list(form.filters()), LIST_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "tags": selectors.dataset_tags(),
        "query": query.urlencode(),
    }
    return render(request, "datasets/list.html", context)


# --- upload ----------------------------------------------------------------------------------


def _wants_json(request: HttpRequest) -> bool:
    return request.headers.get("X-Requested-With") == "XMLHttpRequest"


def _upload_page(
    request: HttpRequest, form: DatasetUploadForm, *, status: int = 200, error: str = ""
) -> HttpResponse:
    if _wants_json(request):
        errors = {
            field: [e["message"] for e in errs]
            for field, errs in form.errors.get_json_data().items()
        }
        if error:
            errors.setdefault("file", []).append(error)
        return JsonResponse({"errors": errors}, status=status)
    context = {"form": form, "error": error, "max_bytes": uploads.max_upload_bytes()}
    return render(request, "datasets/upload.html", context, status=status)


@csrf_exempt  # CSRF is checked in _dataset_upload, after the streaming handler is in place
@require_http_methods(["GET", "POST"])
@member_required
def dataset_upload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _dataset_upload(request, None)
    too_large = uploads.body_too_large(request)
    if too_large:
        # Refused from the declared length alone: not a byte of the body is read or stored.
        return _upload_page(request, DatasetUploadForm(), status=413, error=too_large)
    return _dataset_upload(request, uploads.install_upload_handler(request))


@csrf_protect
def _dataset_upload(
    request: HttpRequest, handler: uploads.DatasetUploadHandler | None
) -> HttpResponse:
    if handler is None:
        return _upload_page(request, DatasetUploadForm())
    form = DatasetUploadForm(request.POST, request.FILES, upload_error=handler.error)
    if not form.is_valid():
        return _upload_page(request, form, status=400)
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
        return _upload_page(request, form, status=400)
    dataset = outcome.dataset
    if outcome.created:
        messages.success(request, f"Uploaded “{dataset.name}”; validation has started.")
    else:
        messages.info(
            request,
            f"This file was uploaded before as “{dataset.name}”; nothing was stored again.",
        )
    url = reverse("datasets:detail", args=[dataset.pk])
    if _wants_json(request):
        return JsonResponse({"redirect": url, "created": outcome.created})
    return redirect(url)


# --- the dataset page ------------------------------------------------------------------------


@require_GET
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = _dataset_or_404(pk, with_report=True)
    requested = request.GET.get("model") or ""
    model = selectors.base_model_get(requested)
    if requested and model is None:
        messages.warning(request, "Unknown base model; showing the stored report.")
    view = selectors.report_view(dataset, model)
    shown_model = view.model if view else (model or dataset.requested_model)
    context: dict[str, Any] = {
        "dataset": dataset,
        "view": view,
        "model": shown_model,
        "models": selectors.base_models(),
        "notice": selectors.model_notice(shown_model) if shown_model else None,
        "children": selectors.dataset_children(dataset),
        "status_url": reverse("datasets:status", args=[dataset.pk]),
    }
    if view:
        # Every provider family's verdict, and the findings of one of them: the one asked for,
        # else the first that accepts the file (the others are a click away).
        verdicts = view.report.verdicts()
        checked = {v.family: v for v in verdicts if v.checked}
        family = request.GET.get("family") or ""
        if family not in checked:
            family = view.report.shown_family(verdicts)
        shown = view.report.for_family(family) or view.report
        primary = family == PRIMARY.name
        limit = view.model.training_context if view.model and not view.needs_revalidation else None
        query = request.GET.copy()
        query.pop("family", None)
        context |= {
            "validity": validity_rows(verdicts),
            "family": checked[family],
            "family_primary": primary,
            "family_query": query.urlencode(),
            "summary": summary(shown, family=family),
            "groups": finding_groups(shown),
            # Context limits are the chosen (OpenAI catalog) model's: drawn on its own view only.
            "charts": report_charts(shown, limit if primary else None),
        }
    return render(request, "datasets/detail.html", context)


@never_cache
@require_GET
def dataset_status(request: HttpRequest, pk: int) -> JsonResponse:
    status = selectors.dataset_status(pk)
    if status is None:
        raise Http404("No such dataset.")
    return JsonResponse(status)


def dataset_file_response(dataset: Dataset) -> FileResponse:
    """The dataset's file as a download (the page's link and the REST API's)."""
    try:
        handle = dataset.file.open("rb")
    except OSError:
        raise Http404("The dataset file is missing from storage.") from None
    return FileResponse(
        handle, as_attachment=True, filename=dataset.download_name, content_type="application/jsonl"
    )


@require_GET
def dataset_download(request: HttpRequest, pk: int) -> FileResponse:
    return dataset_file_response(_dataset_or_404(pk))


def _int_param(request: HttpRequest, name: str, default: int) -> int:
    try:
        return max(1, int(request.GET.get(name, default)))
    except ValueError:
        return default


@require_GET
def dataset_examples(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = _dataset_or_404(pk)
    query = (request.GET.get("q") or "").strip()[: examples.MAX_QUERY_CHARS]
    n_pages = max(1, math.ceil(dataset.line_count / examples.PAGE_SIZE))
    line = _int_param(request, "line", 0) if "line" in request.GET else None
    if line is not None:
        line = min(line, max(1, dataset.line_count))
        page = (line - 1) // examples.PAGE_SIZE + 1
    else:
        page = min(_int_param(request, "page", 1), n_pages)
    context: dict[str, Any] = {
        "dataset": dataset,
        "query": query,
        "page": page,
        "n_pages": n_pages,
        "line": line,
    }
    try:
        with dataset.file.open("rb") as fh:
            if query:
                start = _int_param(request, "from", 1)
                context["search"] = examples.examples_search(
                    fh, dataset.line_index, query, from_line=start
                )
            elif line is not None:
                context["items"] = examples.examples_page(fh, dataset.line_index, line, count=1)
            else:
                first = (page - 1) * examples.PAGE_SIZE + 1
                context["items"] = examples.examples_page(fh, dataset.line_index, first)
    except OSError:
        context["file_error"] = "The dataset file is missing from storage."
    return render(request, "datasets/examples.html", context)


@require_GET
def dataset_line(request: HttpRequest, pk: int, line: int) -> StreamingHttpResponse:
    """One line exactly as stored, streamed: what the example browser shortened or could
    not preview."""
    dataset = _dataset_or_404(pk)
    if not 1 <= line <= dataset.line_count:
        raise Http404("No such line.")
    try:
        handle = dataset.file.open("rb")
    except OSError:
        raise Http404("The dataset file is missing from storage.") from None
    if not seek_line(handle, line, dataset.line_index):
        handle.close()
        raise Http404("No such line.")
    response = StreamingHttpResponse(examples.line_chunks(handle), content_type="application/jsonl")
    stem = dataset.download_name.removesuffix(".jsonl")
    response["Content-Disposition"] = content_disposition_header(True, f"{stem}-line-{line}.jsonl")
    return response


# --- member actions --------------------------------------------------------------------------


@require_POST
@member_required
def dataset_revalidate(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = _dataset_or_404(pk, with_report=True)
    form = ModelChoiceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a base model from the list.")
        return redirect("datasets:detail", pk=dataset.pk)
    model = form.cleaned_data["model"]
    outcome = services.dataset_validation_request(dataset=dataset, model=model)
    if outcome == "recomputed":
        messages.success(request, f"Report recomputed for {model.id} without reading the file.")
    else:
        messages.info(request, f"Validation for {model.id} has started.")
    return redirect(f"{reverse('datasets:detail', args=[dataset.pk])}?model={model.pk}")


def _derive_page(
    request: HttpRequest,
    dataset: Dataset,
    *,
    split: SplitForm | None = None,
    subset: SubsetForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        "dataset": dataset,
        "split_form": split or SplitForm(),
        "subset_form": subset or SubsetForm(),
        "error": error,
    }
    return render(request, "datasets/derive.html", context, status=status)


@require_GET
@member_required
def dataset_derive(request: HttpRequest, pk: int) -> HttpResponse:
    return _derive_page(request, _dataset_or_404(pk))


@require_POST
@member_required
def dataset_split(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = _dataset_or_404(pk)
    form = SplitForm(request.POST)
    if not form.is_valid():
        return _derive_page(request, dataset, split=form, status=400)
    try:
        parts = services.dataset_split(
            dataset=dataset,
            fractions=form.cleaned_data["fractions"],
            seed=form.cleaned_data["seed"],
            user=request.user,
        )
    except DeriveRejected as exc:
        return _derive_page(request, dataset, split=form, error=exc.message, status=400)
    for part in parts:
        _derived_message(request, part)
    return redirect("datasets:detail", pk=dataset.pk)


@require_POST
@member_required
def dataset_subset(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = _dataset_or_404(pk)
    form = SubsetForm(request.POST)
    if not form.is_valid():
        return _derive_page(request, dataset, subset=form, status=400)
    data = form.cleaned_data
    try:
        part = services.dataset_subset(
            dataset=dataset,
            mode=data["mode"],
            n=data.get("n"),
            fraction=data.get("fraction"),
            seed=data["seed"],
            user=request.user,
        )
    except DeriveRejected as exc:
        return _derive_page(request, dataset, subset=form, error=exc.message, status=400)
    _derived_message(request, part)
    return redirect("datasets:detail", pk=part.outcome.dataset.pk)


def _derived_message(request: HttpRequest, part: services.DerivedPart) -> None:
    dataset = part.outcome.dataset
    if part.outcome.created:
        messages.success(
            request, f"Created “{dataset.name}” (#{dataset.pk}); validation has started."
        )
    else:
        messages.info(
            request, f"The {part.label} part already exists as “{dataset.name}” (#{dataset.pk})."
        )

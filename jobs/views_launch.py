"""The launch page's helpers that talk to a provider through a task: refreshing the model list
of a connection whose provider lists its models, and asking a provider for its price."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from core.permissions import member_required
from datasets.models import Dataset
from jobs import catalogs, selectors
from jobs.forms import LaunchForm
from jobs.models import PriceQuote, ProviderConnection
from jobs.providers import traits
from jobs.services import JobError, launch_problems


@require_POST
@member_required
def catalog_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    connection = ProviderConnection.objects.filter(pk=pk).first()
    if connection is None:
        raise Http404("No such connection.")
    label = traits(connection.kind).label
    if catalogs.catalog_refresh_request(connection=connection, user=request.user):
        messages.success(
            request, f"Asked {label} for the models it fine-tunes; reload in a moment."
        )
    else:
        messages.info(request, f"{label} models come from Tuneboard's catalog, not a list.")
    return redirect(f"{reverse('jobs:new')}?connection={connection.pk}")


def _quote_json(request: HttpRequest, quote: PriceQuote, status: int = 200) -> JsonResponse:
    html = render_to_string("jobs/_quote.html", {"quote": quote}, request=request)
    return JsonResponse(
        {
            "status": quote.status,
            "text": html.strip(),
            "url": reverse("jobs:price_quote", args=[quote.pk]),
        },
        status=status,
    )


@require_POST
@member_required
def price_quote_ask(request: HttpRequest) -> JsonResponse:
    """Ask the chosen connection's provider what the launch the form describes would cost
    (checked by the launch rules first: nothing is uploaded for a launch that would be
    refused)."""
    options = selectors.launch_options()
    form = LaunchForm(request.POST, options=options)
    if not form.is_valid():
        problems = [f"{form.fields[f].label if f in form.fields else ''}: {e}".lstrip(": ")
                    for f, errors in form.errors.items() for e in errors]  # fmt: skip
        return JsonResponse({"status": "refused", "text": " ".join(problems)}, status=400)
    launch = form.launch_request(cloned_from=None)
    problems = launch_problems(request=launch, catalog=options.models)
    if problems:
        return JsonResponse(
            {"status": "refused", "text": " ".join(str(p) for p in problems)}, status=400
        )
    validation = launch.validation_dataset
    try:
        quote = catalogs.price_quote_request(
            inputs=catalogs.QuoteInputs(
                connection=launch.connection,
                base_model=launch.base_model,
                method=launch.method,
                training_dataset=Dataset.objects.get(pk=launch.training_dataset.pk),
                validation_dataset=(
                    Dataset.objects.get(pk=validation.pk) if validation is not None else None
                ),
                hyperparameters=launch.hyperparameters or {},
            ),
            user=request.user,
        )
    except JobError as exc:
        return JsonResponse({"status": "refused", "text": str(exc)}, status=400)
    return _quote_json(request, quote, status=202 if quote.status == "pending" else 200)


@never_cache
@require_GET
@member_required
def price_quote(request: HttpRequest, pk: int) -> JsonResponse:
    quote = PriceQuote.objects.filter(pk=pk).first()
    if quote is None:
        raise Http404("No such quote.")
    return _quote_json(request, quote)

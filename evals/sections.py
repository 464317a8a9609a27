"""The run page's evaluations section (slot ``evaluations``), added through
``jobs.signals.job_page``: the latest finished evaluation of the run's models."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string

from evals import selectors
from jobs.models import Job
from jobs.pages import PageSection


def run_evaluations_section(
    sender: object, *, request: HttpRequest, job: Job, live: bool, **kwargs: Any
) -> PageSection:
    html = render_to_string(
        "evals/_run_evaluations.html",
        {"job": job, "ev": selectors.run_evaluations(job)},
        request=request,
    )
    return PageSection(slot="evaluations", html=html)

"""Reading what the dashboard pages embed: json_script blocks and figure traces."""

from __future__ import annotations

import json
import re
from typing import Any

from django.test import RequestFactory

from dashboard.sections import run_charts_section
from jobs.models import Job, MetricPoint

COLUMNS = ("train_loss", "valid_loss", "full_valid_loss",
           "train_accuracy", "valid_accuracy", "full_valid_accuracy")  # fmt: skip


def json_script(html: str, element_id: str) -> Any:
    match = re.search(
        rf'<script id="{re.escape(element_id)}" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, f"no json_script #{element_id}"
    return json.loads(match.group(1))


def render_include(job: Job, user: Any) -> str:
    """The run-charts section as the job page gets it (dashboard's ``job_page`` receiver)."""
    request = RequestFactory().get(f"/jobs/{job.pk}/")
    request.user = user
    section = run_charts_section(Job, request=request, job=job, live=False)
    assert section is not None and section.slot == "charts"
    return str(section.html)


def traces(figure: dict[str, Any], series: str, role: str | None = None) -> list[dict[str, Any]]:
    return [
        trace
        for trace in figure["data"]
        if trace["meta"].get("series") == series and (role is None or trace["meta"]["role"] == role)
    ]


def db_points(job: Job, column: str) -> list[tuple[int, float]]:
    return list(
        MetricPoint.objects.filter(job=job, **{f"{column}__isnull": False})
        .order_by("step")
        .values_list("step", column)
    )

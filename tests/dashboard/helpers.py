"""Reading what the dashboard pages embed: json_script blocks and figure traces."""

from __future__ import annotations

import json
import re
from typing import Any

from django.template import engines
from django.test import RequestFactory

from jobs.models import Job, MetricPoint

INCLUDE_LINE = '{% include "dashboard/_run_charts.html" %}'
COLUMNS = ("train_loss", "valid_loss", "full_valid_loss",
           "train_accuracy", "valid_accuracy", "full_valid_accuracy")  # fmt: skip


def json_script(html: str, element_id: str) -> Any:
    match = re.search(
        rf'<script id="{re.escape(element_id)}" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, f"no json_script #{element_id}"
    return json.loads(match.group(1))


def render_include(job: Job, user: Any) -> str:
    """The run-charts include as the job page renders it: ``{% include … %}`` with ``job``."""
    request = RequestFactory().get(f"/jobs/{job.pk}/")
    request.user = user
    template = engines["django"].from_string(INCLUDE_LINE)
    return template.render({"job": job}, request)


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

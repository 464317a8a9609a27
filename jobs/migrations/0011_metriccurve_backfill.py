"""Reduce the curves of every run already stored (installs upgraded from before
``MetricCurve``), so that no page has to reduce a whole series on first view.

One run per transaction (``atomic = False``): an interrupted migration keeps what it did and,
run again, recomputes every run from its rows (the result is the same)."""

from typing import Any

from django.db import migrations


def backfill(apps: Any, schema_editor: Any) -> None:
    from jobs.curvestore import rebuild

    job_model = apps.get_model("jobs", "Job")
    points = apps.get_model("jobs", "MetricPoint")
    curves = apps.get_model("jobs", "MetricCurve")
    with_rows = points.objects.values("job_id")
    for job_id in job_model.objects.filter(pk__in=with_rows).values_list("pk", flat=True):
        rebuild(job_id, points=points, curves=curves)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("jobs", "0010_metriccurve"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]

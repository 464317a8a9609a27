"""Share links: tokens, looking a link up, and the data a public share page shows.

A token is ``secrets.token_urlsafe(32)`` (256 bits); only its SHA-256 is stored. A revoked,
expired or unknown token all look the same to the visitor (one fixed 404 body).

What a shared page may show is decided here, in one place (``page_data``): run names, status,
base model (a fine-tuned base reduced to its catalog base), method, hyperparameters, the
curves, the metric summary and the fit diagnosis. Never API keys, connection details, provider
file / job / model ids, dataset names or contents, or user names. Runs are named ``r1``…``rN``
on the page and in its JSON, never by their Tuneboard or provider ids.

While a run is still going the page is built from the database on each request (and its run
is polled through the link's own JSON endpoint); once every run is finished the same data is
frozen into ``ShareLink.snapshot`` and served from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from core.params import whole_number
from dashboard import curves, selectors_runs
from dashboard.charts import (
    METRICS,
    X_AXES,
    CheckpointMark,
    RunSeries,
    run_description,
    run_figures,
    summary_metrics,
)
from dashboard.models import MAX_COMPARE, ShareLink
from dashboard.services import share_link_freeze
from jobs.models import Job

MAX_RUNS = MAX_COMPARE
SNAPSHOT_VERSION = 1
_TOKEN_MAX_LENGTH = 100


def active_link(token: str) -> ShareLink | None:
    """The link for ``token`` if it exists, is not revoked and has not expired; else None."""
    if not token or len(token) > _TOKEN_MAX_LENGTH:
        return None
    link = ShareLink.objects.filter(token_hash=ShareLink.hash_of(token)).first()
    if link is None or not link.is_active(timezone.now()):
        return None
    return link


def public_run_id(position: int) -> str:
    return f"r{position + 1}"


def _iso(value: Any) -> str | None:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else None


def _public_label(job: Job, position: int) -> str:
    # Never display_name: it falls back to the provider's job id.
    return job.name or f"Run {position + 1}"


def _run_entry(
    job: Job,
    position: int,
    curve: curves.Curves,
    marks: Sequence[CheckpointMark],
    prices: selectors_runs.Prices,
) -> dict[str, Any]:
    n_epochs = curves.n_epochs_of(job)
    total = job.total_steps if job.total_steps and job.total_steps > 0 else None
    trained = job.trained_tokens if job.trained_tokens and job.trained_tokens > 0 else None
    cost = prices.cost(job)
    return {
        "id": public_run_id(position),
        "label": _public_label(job, position),
        "status": job.status,
        "status_display": job.get_status_display(),
        "terminal": job.status in Job.TERMINAL,
        "base_model": selectors_runs.public_model_name(job.base_model),
        "method": job.get_method_display(),
        "hyperparameters": selectors_runs.compare_hyperparameters(job, public=True),
        "trained_tokens": job.trained_tokens,
        "cost": str(cost) if cost is not None else None,
        "duration_seconds": job.duration_seconds,
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "total_steps": total,
        "steps_per_epoch": total / n_epochs if total and n_epochs else None,
        "tokens_per_step": trained / total if trained and total else None,
        "curve": curve.points,
        "last_step": curve.last_step,
        "checkpoints": [{"step": mark.step, "metrics": mark.metrics} for mark in marks],
    }


def series_of(entry: dict[str, Any]) -> RunSeries:
    """A shared run's curves as a ``RunSeries`` (checkpoints named by their step)."""
    return RunSeries(
        label=entry["label"],
        run_id=entry["id"],
        steps_per_epoch=entry.get("steps_per_epoch"),
        total_steps=entry.get("total_steps"),
        tokens_per_step=entry.get("tokens_per_step"),
        checkpoints=[
            CheckpointMark(step=c["step"], model_id=f"step {c['step']}", metrics=c["metrics"])
            for c in entry.get("checkpoints", [])
        ],
        hyperparameters=entry.get("hyperparameters") or {},
        **{  # type: ignore[arg-type]
            name: list(zip(*entry["curve"][name], strict=True)) if entry["curve"].get(name) else []
            for name in METRICS
        },
    )


def _targets(link: ShareLink) -> list[Job]:
    ids = [str(job_id) for job_id in link.job_ids][:MAX_RUNS]
    return selectors_runs.compare_jobs(ids)


def live_data(link: ShareLink) -> dict[str, Any] | None:
    """The page data built from the database (None when none of the runs exists any more)."""
    jobs = _targets(link)
    if not jobs:
        return None
    kind = ShareLink.Kind.RUN if link.kind == ShareLink.Kind.RUN else ShareLink.Kind.COMPARISON
    level = (
        curves.LEVELS[0] if kind == ShareLink.Kind.RUN else selectors_runs.compare_level(len(jobs))
    )
    marks = curves.checkpoints_for([job.pk for job in jobs])
    curve_map = curves.curves_for(
        jobs, level=level, checkpoints=marks, with_diagnosis=kind == ShareLink.Kind.RUN
    )
    price_table = selectors_runs.prices()
    runs = [
        _run_entry(job, i, curve_map[str(job.pk)], marks.get(str(job.pk), []), price_table)
        for i, job in enumerate(jobs)
    ]
    data: dict[str, Any] = {
        "version": SNAPSHOT_VERSION,
        "kind": kind,
        "title": link.label or (runs[0]["label"] if kind == "run" else f"{len(runs)} runs"),
        "level": level,
        "runs": runs,
        "diagnosis": curve_map[str(jobs[0].pk)].diagnosis if kind == "run" else None,
        "finished": all(curves.fingerprint(job) for job in jobs),
    }
    for entry in runs:
        entry["metrics"] = summary_metrics(series_of(entry))
    data["figures"] = figures_for(data, selectors_runs.ChartOptions())
    return data


def page_data(link: ShareLink) -> dict[str, Any] | None:
    """The frozen snapshot, or live data (frozen now when every run has finished)."""
    if link.snapshot:
        return link.snapshot
    data = live_data(link)
    if data is not None and data["finished"]:
        data["frozen_at"] = timezone.now().isoformat()
        share_link_freeze(link=link, snapshot=data)
    return data


def figures_for(data: dict[str, Any], options: selectors_runs.ChartOptions) -> dict[str, Any]:
    """Figures of the shared data on any x axis (the snapshot's own when they match)."""
    default = selectors_runs.ChartOptions()
    if data.get("figures") and (options.x_axis, options.log_y, options.smoothing) == (
        default.x_axis,
        default.log_y,
        default.smoothing,
    ):
        return data["figures"]
    series = [series_of(entry) for entry in data["runs"]]
    if data["kind"] == ShareLink.Kind.RUN:
        return run_figures(
            series[0], x_axis=options.x_axis, log_y=options.log_y, smoothing=options.smoothing
        )
    return comparison_of(data, options).figures


def comparison_of(
    data: dict[str, Any], options: selectors_runs.ChartOptions
) -> selectors_runs.Comparison:
    series = [series_of(entry) for entry in data["runs"]]
    return selectors_runs.build_comparison(
        series,
        extras=[
            {
                "trained_tokens": entry["trained_tokens"],
                "cost": float(entry["cost"]) if entry["cost"] is not None else None,
                "duration_seconds": entry["duration_seconds"],
            }
            for entry in data["runs"]
        ],
        options=options,
        level=data["level"],
        statuses=[(entry["status"], entry["status_display"]) for entry in data["runs"]],
    )


def descriptions_for(data: dict[str, Any], figures: dict[str, Any]) -> dict[str, str]:
    axis = figures["loss"]["layout"]["meta"]["x_axis"]
    if data["kind"] == ShareLink.Kind.RUN:
        run = series_of(data["runs"][0])
        return {kind: run_description(run, kind, axis) for kind in ("loss", "accuracy")}
    from dashboard.charts import compare_description

    series = [series_of(entry) for entry in data["runs"]]
    return {kind: compare_description(series, kind, axis) for kind in ("loss", "accuracy")}


def supported_axes(data: dict[str, Any]) -> list[str]:
    series = [series_of(entry) for entry in data["runs"]]
    return [axis for axis in X_AXES if all(run.supports(axis) for run in series)]


def live_job(link: ShareLink, run: str) -> Job | None:
    """The job behind public run id ``run`` (``r1``…) of a live link; None for anything else."""
    number = whole_number(run[1:]) if run.startswith("r") else None
    if number is None:
        return None
    position = number - 1
    ids = [str(job_id) for job_id in link.job_ids]
    if not 0 <= position < len(ids):
        return None
    return selectors_runs.chart_job(ids[position])


def snapshot_points(data: dict[str, Any], run: str, after_step: int) -> dict[str, Any] | None:
    """The live endpoint's answer from frozen data: nothing changes any more."""
    for entry in data["runs"]:
        if entry["id"] == run:
            by_step: dict[int, dict[str, Any]] = {}
            for name, (steps, values) in entry["curve"].items():
                for step, value in zip(steps, values, strict=True):
                    if step > after_step:
                        by_step.setdefault(int(step), {"step": int(step)})[name] = value
            points_list = [
                {"step": step, **{name: row.get(name) for name in METRICS}}
                for step, row in sorted(by_step.items())
            ]
            return {
                "status": entry["status"],
                "status_display": entry["status_display"],
                "terminal": True,
                "total_steps": entry["total_steps"],
                "after_step": after_step,
                "last_step": points_list[-1]["step"] if points_list else after_step,
                "has_more": False,
                "points": points_list,
            }
    return None

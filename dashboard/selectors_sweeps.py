"""Reads for the sweep pages: the list, and one sweep as the comparison of all its runs (curves,
tables, scatters, parallel coordinates), its budget, its progress and its best run and
checkpoint by full-validation loss."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q

from dashboard import selectors_runs
from dashboard.charts.parallel import parallel_coordinates
from dashboard.charts.series import finite_number
from jobs.models import Checkpoint, Job, Sweep, SweepRun


@dataclass(frozen=True)
class Budget:
    budget: Decimal
    planned_total: Decimal
    spent: Decimal  # actual cost of the runs that ended
    running_planned: Decimal  # planned cost of the runs under way
    committed: Decimal

    @property
    def left(self) -> Decimal:
        return self.budget - self.committed

    @property
    def used_percent(self) -> int:
        return min(100, int(self.committed * 100 / self.budget)) if self.budget else 0


@dataclass(frozen=True)
class Best:
    run: SweepRun
    loss: float
    step: int | None
    checkpoint: str = ""  # the model name of the checkpoint to use
    checkpoint_step: int | None = None
    checkpoint_loss: float | None = None


@dataclass
class SweepPage:
    sweep: Sweep
    runs: list[SweepRun]
    varied: list[str]
    budget: Budget
    counts: dict[str, int]
    best: Best | None
    parallel: dict[str, Any]
    comparison: selectors_runs.Comparison | None = None
    job_ids: list[str] = field(default_factory=list)

    @property
    def settled(self) -> int:
        """Runs whose outcome is known (ended, or not launched): the comparison's tables
        change with it."""
        return sum(
            1
            for r in self.runs
            if r.state == SweepRun.State.SKIPPED or (r.job is not None and r.job.is_terminal)
        )

    @property
    def version(self) -> str:
        """Changes whenever something the page shows does (the live poll compares it)."""
        parts = [self.sweep.status, self.sweep.status_message]
        for run in self.runs:
            job = run.job
            parts.append(f"{run.state}:{job.status if job else ''}:{job.last_step if job else ''}")
        return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:16]


def sweeps_list() -> list[Sweep]:
    return list(
        Sweep.objects.select_related("connection", "training_dataset", "created_by")
        .annotate(
            n_runs=Count("runs"),
            n_launched=Count("runs", filter=Q(runs__state=SweepRun.State.LAUNCHED)),
        )
        .order_by("-created_at", "-id")[:200]
    )


def varied_keys(sweep: Sweep) -> list[str]:
    """The dimensions the sweep tried more than one value of (a range always varies)."""
    return [
        key
        for key, values in (sweep.space or {}).items()
        if isinstance(values, dict) or (isinstance(values, list) and len(values) > 1)
    ]


def run_values(run: SweepRun) -> dict[str, Any]:
    return {"base_model": run.base_model, "seed": run.seed, **(run.hyperparameters or {})}


def sweep_get(pk: Any) -> Sweep | None:
    return (
        Sweep.objects.select_related(
            "connection", "training_dataset", "validation_dataset", "created_by"
        )
        .filter(pk=pk)
        .first()
    )


def _runs(sweep: Sweep) -> list[SweepRun]:
    return list(
        SweepRun.objects.filter(sweep=sweep)
        .select_related("job")
        .defer("job__result_files", "job__error", "job__integrations", "job__notes")
        .order_by("index")
    )


def budget_of(sweep: Sweep, runs: list[SweepRun]) -> Budget:
    launched = [r for r in runs if r.state == SweepRun.State.LAUNCHED and r.job is not None]
    ended = [r for r in launched if r.job is not None and r.job.is_terminal]
    under_way = [r for r in launched if r.job is not None and not r.job.is_terminal]
    spent = sum((r.spend for r in ended), Decimal(0))
    running = sum((r.planned_cost_usd for r in under_way), Decimal(0))
    return Budget(sweep.budget_usd, sweep.planned_cost_usd, spent, running, spent + running)


def _counts(runs: list[SweepRun]) -> dict[str, int]:
    jobs = [r.job for r in runs if r.job is not None]
    return {
        "planned": len(runs),
        "launched": sum(1 for r in runs if r.state == SweepRun.State.LAUNCHED),
        "waiting": sum(1 for r in runs if r.state == SweepRun.State.PLANNED),
        "skipped": sum(1 for r in runs if r.state == SweepRun.State.SKIPPED),
        "running": sum(1 for j in jobs if not j.is_terminal),
        "succeeded": sum(1 for j in jobs if j.status == Job.Status.SUCCEEDED),
        "ended_otherwise": sum(1 for j in jobs if j.is_terminal and j.status != "succeeded"),
    }


def _best(runs: list[SweepRun]) -> Best | None:
    """The run with the lowest full-validation loss, and the checkpoint to use: the lowest
    full-validation loss among the sweep's checkpoints the provider still serves."""
    scored = [
        r for r in runs if r.job is not None and finite_number(r.job.best_full_valid_loss) is not None
    ]  # fmt: skip
    if not scored:
        return None
    best = min(scored, key=lambda r: float(r.job.best_full_valid_loss))  # type: ignore[union-attr,arg-type]
    job = best.job
    assert job is not None
    found = Best(run=best, loss=float(job.best_full_valid_loss), step=job.best_full_valid_step)  # type: ignore[arg-type]
    checkpoints = Checkpoint.objects.filter(
        job__in=[r.job for r in scored], deleted_at__isnull=True
    ).values("job_id", "step", "model_name", "metrics")
    ranked = [
        (loss, c) for c in checkpoints
        if (loss := finite_number((c["metrics"] or {}).get("full_valid_loss"))) is not None
    ]  # fmt: skip
    if not ranked:
        return found
    loss, checkpoint = min(ranked, key=lambda item: item[0])
    return Best(
        run=next(r for r in scored if r.job is not None and r.job.pk == checkpoint["job_id"]),
        loss=found.loss if checkpoint["job_id"] == job.pk else float(loss),
        step=found.step if checkpoint["job_id"] == job.pk else checkpoint["step"],
        checkpoint=checkpoint["model_name"],
        checkpoint_step=checkpoint["step"],
        checkpoint_loss=loss,
    )


def parallel_figure(runs: list[SweepRun], keys: list[str]) -> dict[str, Any]:
    rows = [
        {
            "label": r.job.display_name if r.job else f"run {r.index}",
            "run_id": str(r.job_id),
            "hyperparameters": run_values(r),
            "metrics": {"best_full_valid_loss": r.job.best_full_valid_loss if r.job else None},
        }
        for r in runs
        if r.job_id is not None
    ]
    return parallel_coordinates(rows, keys)


def sweep_page(sweep: Sweep, *, with_comparison: bool = True) -> SweepPage:
    runs = _runs(sweep)
    keys = varied_keys(sweep)
    job_ids = [str(r.job.pk) for r in runs if r.job is not None]
    comparison = None
    if with_comparison and len(job_ids) >= selectors_runs.MIN_COMPARE:
        comparison = selectors_runs.comparison(job_ids)
    return SweepPage(
        sweep=sweep,
        runs=runs,
        varied=keys,
        budget=budget_of(sweep, runs),
        counts=_counts(runs),
        best=_best(runs),
        parallel=parallel_figure(runs, keys),
        comparison=comparison,
        job_ids=job_ids,
    )


def sweep_csv(page: SweepPage) -> str:
    """Every planned run with its values, state, costs and results (the sweep's export)."""
    keys = list(dict.fromkeys(k for r in page.runs for k in run_values(r)))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["sweep", "run", *keys, "state", "job_id", "provider_job_id", "status",
                     "planned_cost_usd", "cost_usd", "best_full_valid_loss",
                     "best_full_valid_step", "skip_reason"])  # fmt: skip
    for run in page.runs:
        job = run.job
        values = run_values(run)
        writer.writerow([
            _cell(page.sweep.name), run.index, *[_cell(values.get(k)) for k in keys], run.state,
            job.pk if job else "", job.provider_job_id or "" if job else "",
            job.status if job else "", run.planned_cost_usd,
            job.cost_usd if job is not None and job.cost_usd is not None else "",
            _cell(job.best_full_valid_loss if job else None),
            _cell(job.best_full_valid_step if job else None), _cell(run.skip_reason),
        ])  # fmt: skip
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # A spreadsheet would run a cell that starts like a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

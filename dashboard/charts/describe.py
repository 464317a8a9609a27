"""Plain-text summaries of charts: the text alternative for screen readers.

These return unescaped text for the page's templates (which autoescape); the figure builders
put an escaped copy in ``layout.meta.description``.
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboard.charts.series import RunSeries, best_point
from dashboard.charts.text import format_number, format_step
from dashboard.charts.traces import METRIC_LABELS

AXIS_TITLES: dict[str, str] = {"step": "step", "epoch": "epoch", "tokens": "tokens seen"}


def _metric_sentence(run: RunSeries, metric: str) -> str | None:
    points = run.metric(metric)
    if not points:
        return None
    (first_step, first), (last_step, last) = points[0], points[-1]
    label = METRIC_LABELS[metric]
    if len(points) == 1:
        return f"{label} {format_number(first)} at step {format_step(first_step)}"
    return (
        f"{label} from {format_number(first)} at step {format_step(first_step)} to "
        f"{format_number(last)} at step {format_step(last_step)} ({len(points):,} points)"
    )


def run_description(run: RunSeries, kind: str, axis: str = "step") -> str:
    """E.g. "Loss of run-a by step: train loss from 2.3100 at step 1 to 0.4100 at step 300
    (300 points); …; best full-valid loss 0.5230 at step 200; 3 checkpoints."."""
    parts = [
        sentence
        for metric in (f"train_{kind}", f"valid_{kind}", f"full_valid_{kind}")
        if (sentence := _metric_sentence(run, metric))
    ]
    title = f"{kind.capitalize()} of {run.label} by {AXIS_TITLES[axis]}"
    if not parts:
        return f"{title}: no {kind} metrics yet."
    best = best_point(run, "loss" if kind == "loss" else "accuracy")
    if best is not None:
        parts.append(
            f"best {METRIC_LABELS[best.metric]} {format_number(best.value)} "
            f"at step {format_step(best.step)}"
        )
    if run.checkpoints:
        parts.append(f"{len(run.checkpoints)} checkpoints")
    return f"{title}: " + "; ".join(parts) + "."


def compare_description(runs: Sequence[RunSeries], kind: str, axis: str = "step") -> str:
    """One clause per run: its final training value and best validation point."""
    clauses = []
    for run in runs:
        bits = []
        train = run.metric(f"train_{kind}")
        if train:
            bits.append(f"final train {kind} {format_number(train[-1][1])}")
        best = best_point(run, "loss" if kind == "loss" else "accuracy")
        if best is not None:
            bits.append(
                f"best {METRIC_LABELS[best.metric]} {format_number(best.value)} "
                f"at step {format_step(best.step)}"
            )
        clauses.append(f"{run.label}: {', '.join(bits) if bits else f'no {kind} metrics'}")
    title = f"{kind.capitalize()} of {len(runs)} runs by {AXIS_TITLES[axis]}"
    return f"{title}: " + "; ".join(clauses) + "." if clauses else f"{title}."

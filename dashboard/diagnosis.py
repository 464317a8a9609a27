"""Fit diagnosis of a fine-tuning run from its curves: plain data in, a ``Diagnosis`` out.

The rules (``RULE_TEXT``, shown on the page) are checked in order and the first that holds
gives the verdict; the thresholds are the module constants below. The advice follows OpenAI's
fine-tuning guide ("Iterating on hyperparameters"): more epochs when the model does not follow
the training data, fewer when it overfits or loses diversity, a higher learning-rate
multiplier when it does not converge; plus the usual remedy for instability (a lower
multiplier or a larger batch) and, when it overfits, using the best checkpoint.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from dashboard.charts.series import BestPoint, Point, RunSeries, best_point, finite_number
from dashboard.charts.smoothing import ema
from dashboard.charts.text import format_number, format_step

Verdict = Literal["underfitting", "good_fit", "overfitting", "unstable", "insufficient_data"]

MIN_POINTS = 10  # training points needed before any verdict
SPIKE_WINDOW = 10  # a spike is judged against the median of this many previous steps
SPIKE_FACTOR = 1.5  # … and must exceed it by this factor
SPIKE_SIGMAS = 3.0  # … and by this many robust standard deviations of the run's scatter
MIN_SPIKES = 3
MIN_SPIKE_SHARE = 0.01  # … or 1 % of the steps, whichever is more
OVERFIT_RISE = 0.05  # validation counts as "up" when above its minimum by more than 5 %
OVERFIT_POINTS = 2  # … for at least this many epoch-end points in a row, up to the end
TREND_TAIL = 0.25  # the share of training whose validation trend is examined
TREND_WEIGHT = 0.6  # EMA weight smoothing the mini-batch validation trend
TREND_RISE = 0.10  # the smoothed trend must end this far above its minimum (noisier data)
TREND_MIN_POINTS = 8  # fewer validation points cannot tell a trend from noise
TRAIN_STILL_FALLING = 0.05  # train loss must end ≥ 5 % below its value at the best point
FINAL_WINDOW = 0.10  # the final loss is the mean of the last 10 % of the points (≥ 2)
SLOPE_WINDOW = 0.20  # the late slope is fitted to the last 20 % of the points (≥ 5)
SLOPE_MIN_POINTS = 5
UNDERFIT_SLOPE = 0.05  # still falling: the fitted line drops > 5 % of the loss per 10 % of steps
UNDERFIT_RATIO = 0.6  # barely learned: final train loss > 60 % of the initial loss
# Still improving: a line through the last 30 % of the validation points drops > 3 % of the
# loss per 10 % of steps. Validation is measured on held-out data, so a fall there is the
# direct evidence that more training would still help, whatever the noisy training loss shows.
VALID_SLOPE_WINDOW = 0.30
VALID_STILL_FALLING = 0.03
HEAD_POINTS = 5  # the initial loss is the mean of the first (up to) five points
CHECKPOINTS_KEPT = 3  # OpenAI keeps the checkpoints of the last three epochs

RULE_TEXT = f"""\
Rules, checked in this order (the first that holds decides):
1. Insufficient data: fewer than {MIN_POINTS} training-loss points.
2. Unstable: at least {MIN_SPIKES} spikes, or {MIN_SPIKE_SHARE:.0%} of the steps when that is more — \
steps whose training loss exceeds {SPIKE_FACTOR:g}× the median of the previous {SPIKE_WINDOW} steps \
and is also more than {SPIKE_SIGMAS:g} robust standard deviations of the run's usual \
step-to-step scatter above it (on log ratios to that median; the scatter is estimated from the \
steps below the median, which spikes do not inflate), so ordinary batch-to-batch noise does not \
count.
3. Overfitting: while training loss kept falling (it ends at least \
{TRAIN_STILL_FALLING:.0%} below its value at the best validation point), validation loss went \
up for a sustained stretch: either the last {OVERFIT_POINTS} or more epoch-end validation \
points (full validation, else validation at epoch ends) are all more than {OVERFIT_RISE:.0%} \
above the minimum, or the validation trend (EMA {TREND_WEIGHT:g} of at least \
{TREND_MIN_POINTS} points) rose over the last {TREND_TAIL:.0%} of training and ends more than \
{TREND_RISE:.0%} above its minimum, confirmed, when there is full validation, by a last \
full-validation point more than {OVERFIT_RISE:.0%} above the lowest.
4. Underfitting: training loss is still falling steeply — a straight line fitted to the last \
{SLOPE_WINDOW:.0%} of the points drops by more than {UNDERFIT_SLOPE:.0%} of the loss level per \
10% of training (and by more than twice that figure's standard error, so noise alone does not \
count), and validation, if any, is lowest in the last {TREND_TAIL:.0%} of training — \
or it barely fell: the final loss (mean of the last {FINAL_WINDOW:.0%} of the points) is above \
{UNDERFIT_RATIO:g}× the initial loss (mean of the first {HEAD_POINTS} points) — \
or validation loss is still falling when training stops: a line fitted to the last \
{VALID_SLOPE_WINDOW:.0%} of the validation points (at least {SLOPE_MIN_POINTS}; the denser of \
validation and full validation) drops by more than {VALID_STILL_FALLING:.0%} of the loss level \
per 10% of training (and by more than twice its standard error), and the last full-validation \
point, if there are two or more, is the lowest.
5. Good fit otherwise.
Best checkpoint: the lowest full-validation loss (validation loss when there is no full \
validation). OpenAI keeps only the checkpoints of the last {CHECKPOINTS_KEPT} epochs, so the \
best point may not be an available checkpoint."""


@dataclass(frozen=True)
class Diagnosis:
    verdict: Verdict
    summary: str
    evidence: list[str]
    suggestion: str
    best_step: int | None
    best_value: float | None
    best_is_available_checkpoint: bool
    rule_text: str = RULE_TEXT
    best_metric: str | None = None  # "full_valid_loss", or "valid_loss" as the fallback
    # When the best point has no checkpoint: the available one with the lowest loss.
    best_available_step: int | None = None


# --- curve statistics -------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _share(n: int, share: float, minimum: int) -> int:
    return min(n, max(minimum, round(share * n)))


def spike_steps(train: Sequence[Point]) -> list[int]:
    """Steps whose loss exceeds the median of the previous ``SPIKE_WINDOW`` steps by
    ``SPIKE_FACTOR``× and by ``SPIKE_SIGMAS`` robust standard deviations of the run's own
    step-to-step scatter.

    Why the scatter term: with small batches of mixed examples a healthy run's loss routinely
    jumps 1.5× from one step to the next, so only a jump far outside the run's usual scatter is
    a spike. The scatter is measured on r = ln(loss / that median), from the values below the
    median r only (1.4826 × their median distance to it): spikes are one-sided, so they barely
    inflate it, while symmetric noise sets it fully. Non-positive losses are skipped."""
    ratios: list[tuple[int, float]] = []
    # The previous SPIKE_WINDOW values kept sorted as the window slides (one removal and one
    # insertion per step, instead of sorting every window).
    window = sorted(value for _, value in train[:SPIKE_WINDOW])
    middle, odd = divmod(SPIKE_WINDOW, 2)
    for i in range(SPIKE_WINDOW, len(train)):
        median = window[middle] if odd else (window[middle - 1] + window[middle]) / 2
        step, value = train[i]
        if median > 0 and value > 0:
            ratios.append((step, math.log(value / median)))
        del window[bisect.bisect_left(window, train[i - SPIKE_WINDOW][1])]
        bisect.insort(window, value)
    if not ratios:
        return []
    centre = statistics.median(ratio for _, ratio in ratios)
    below = [centre - ratio for _, ratio in ratios if ratio < centre]
    scatter = 1.4826 * statistics.median(below) if below else 0.0
    threshold = max(math.log(SPIKE_FACTOR), centre + SPIKE_SIGMAS * scatter)
    return [step for step, ratio in ratios if ratio > threshold]


def min_spikes(n_points: int) -> int:
    """Spikes needed for "unstable": a few, or a small share of a long run (rare outliers
    accumulate over thousands of steps without the run being unstable)."""
    return max(MIN_SPIKES, math.ceil(MIN_SPIKE_SHARE * n_points))


def late_drop(train: Sequence[Point], *, window: float = SLOPE_WINDOW) -> tuple[float, float]:
    """How fast a loss curve still falls at the end, and the standard error of that figure.

    A least-squares line through the last ``window`` of the points, as the drop per 10 %
    of training's steps relative to the window's mean loss (0.05 = still 5 % lower every tenth
    of the run). Step noise makes the fitted slope uncertain; the error lets the rule require a
    fall that stands out from it."""
    tail = train[-_share(len(train), window, SLOPE_MIN_POINTS) :]
    steps = [float(step) for step, _ in tail]
    values = [value for _, value in tail]
    mean_step, level = _mean(steps), _mean(values)
    spread = sum((step - mean_step) ** 2 for step in steps)
    if spread == 0 or level <= 0 or len(tail) < 3:
        return 0.0, 0.0
    slope = sum((s - mean_step) * (v - level) for s, v in zip(steps, values, strict=True)) / spread
    residuals = [v - level - slope * (s - mean_step) for s, v in zip(steps, values, strict=True)]
    slope_error = math.sqrt(sum(r * r for r in residuals) / (len(tail) - 2) / spread)
    scale = 0.1 * (train[-1][0] - train[0][0]) / level
    return -slope * scale, slope_error * scale


def _final(train: Sequence[Point]) -> float:
    return _mean([value for _, value in train[-_share(len(train), FINAL_WINDOW, 2) :]])


def _initial(train: Sequence[Point]) -> float:
    return _mean([value for _, value in train[:HEAD_POINTS]])


def _train_near(train: Sequence[Point], step: int) -> float:
    """Training loss around ``step``: the mean of the final-window-sized run of points
    centred on it (a single step is too noisy to compare with)."""
    half = _share(len(train), FINAL_WINDOW, 2) // 2
    index = min(range(len(train)), key=lambda i: abs(train[i][0] - step))
    return _mean([value for _, value in train[max(0, index - half) : index + half + 1]])


def _lowest(points: Sequence[Point]) -> Point:
    return min(points, key=lambda point: (point[1], point[0]))


# --- the rules --------------------------------------------------------------------------


def _epoch_end_validation(run: RunSeries) -> tuple[str, list[Point]]:
    if run.full_valid_loss:
        return "full-validation", run.full_valid_loss
    ends = set(run.epoch_end_steps())
    return "validation", [point for point in run.valid_loss if point[0] in ends]


def _rise_at_epoch_ends(run: RunSeries) -> tuple[int, str] | None:
    """Rule 3a: the last epoch-end validation points all sit above the minimum."""
    name, ends = _epoch_end_validation(run)
    if len(ends) <= OVERFIT_POINTS:
        return None
    low_step, low = _lowest(ends)
    above = 0
    for _, value in reversed(ends):
        if value <= (1 + OVERFIT_RISE) * low:
            break
        above += 1
    if above < OVERFIT_POINTS:
        return None
    last = ends[-1][1]
    return low_step, (
        f"{name.capitalize()} loss bottomed at {format_number(low)} (step "
        f"{format_step(low_step)}); the last {above} epoch-end points are all more than "
        f"{OVERFIT_RISE:.0%} above it, ending at {format_number(last)} ({last / low - 1:+.0%})."
    )


def _rising_trend(run: RunSeries) -> tuple[int, str] | None:
    """Rule 3b: the smoothed validation trend rose over the last quarter of training."""
    # The mini-batch series is denser; full validation stands in when it is all there is.
    points = max(run.valid_loss, run.full_valid_loss, key=len)
    if len(points) < TREND_MIN_POINTS:
        return None
    full = run.full_valid_loss
    if len(full) >= 2 and full[-1][1] <= (1 + OVERFIT_RISE) * _lowest(full)[1]:
        return None  # the accurate measurement does not confirm the noisy trend
    steps = [step for step, _ in points]
    # Every point is finite (RunSeries drops the rest), so nothing comes back as None.
    trend = [
        value for value in ema([value for _, value in points], TREND_WEIGHT) if value is not None
    ]
    tail_start = steps[-1] - TREND_TAIL * (steps[-1] - steps[0])
    first_tail = next(i for i, step in enumerate(steps) if step >= tail_start)
    low = min(range(len(trend)), key=trend.__getitem__)
    if low >= first_tail or trend[-1] <= trend[first_tail]:
        return None  # lowest inside the last quarter, or not rising over it
    if trend[-1] <= (1 + TREND_RISE) * trend[low]:
        return None
    return steps[low], (
        f"The smoothed validation loss bottomed at {format_number(trend[low])} (step "
        f"{format_step(steps[low])}) and rose over the last {TREND_TAIL:.0%} of training to "
        f"{format_number(trend[-1])} ({trend[-1] / trend[low] - 1:+.0%})."
    )


def _validation_near(run: RunSeries, step: int) -> float:
    points = run.full_valid_loss or run.valid_loss
    return min(points, key=lambda point: abs(point[0] - step))[1]


def _overfitting(run: RunSeries) -> list[str] | None:
    """Rule 3: evidence sentences, or None."""
    if not (run.full_valid_loss or run.valid_loss):
        return None
    found = _rise_at_epoch_ends(run) or _rising_trend(run)
    if found is None:
        return None
    low_step, sentence = found
    train = run.train_loss
    train_low, train_end = _train_near(train, low_step), _final(train)
    if train_end > (1 - TRAIN_STILL_FALLING) * train_low:
        return None  # training stalled too: that is not the overfitting signature
    valid_low = _validation_near(run, low_step)
    valid_end = (run.full_valid_loss or run.valid_loss)[-1][1]
    return [
        sentence,
        f"Meanwhile training loss kept falling, from {format_number(train_low)} to "
        f"{format_number(train_end)}: the gap between validation and training loss widened "
        f"from {format_number(valid_low - train_low)} at step {format_step(low_step)} "
        f"(validation {format_number(valid_low)}) to {format_number(valid_end - train_end)} at "
        f"the end (validation {format_number(valid_end)}).",
    ]


def _validation_still_improving(run: RunSeries) -> bool:
    """True without validation; otherwise validation is lowest in the last quarter."""
    points = run.full_valid_loss if len(run.full_valid_loss) >= 2 else run.valid_loss
    if len(points) < 2:
        return True
    first, last = points[0][0], points[-1][0]
    return _lowest(points)[0] >= last - TREND_TAIL * (last - first)


def validation_still_falling(run: RunSeries) -> float | None:
    """How fast validation loss still falls at the end (see ``late_drop``), when it clearly
    does; None otherwise."""
    points = max(run.valid_loss, run.full_valid_loss, key=len)
    if len(points) < SLOPE_MIN_POINTS:
        return None
    full = run.full_valid_loss
    if len(full) >= 2 and _lowest(full)[0] != full[-1][0]:
        return None  # the accurate measurement says the improvement has already stopped
    drop, error = late_drop(points, window=VALID_SLOPE_WINDOW)
    return drop if drop > VALID_STILL_FALLING and drop > 2 * error else None


@dataclass(frozen=True)
class _Underfit:
    evidence: list[str]
    falling: bool  # training loss still falling steeply
    barely: bool  # training loss barely fell
    valid_falling: bool  # validation loss still falling at the end


def _underfitting(run: RunSeries) -> _Underfit | None:
    """Rule 4, or None."""
    train = run.train_loss
    initial, final = _initial(train), _final(train)
    drop, error = late_drop(train)
    falling = drop > UNDERFIT_SLOPE and drop > 2 * error and _validation_still_improving(run)
    barely = final > UNDERFIT_RATIO * initial
    valid_drop = validation_still_falling(run)
    if not (falling or barely or valid_drop is not None):
        return None
    evidence = []
    if falling:
        evidence.append(
            f"Training loss is still falling steeply at the end: about {drop:.0%} of its level "
            f"per 10% of training (a line through the last {SLOPE_WINDOW:.0%} of the points)."
        )
    if barely:
        evidence.append(
            f"Training loss ends at {format_number(final)}, {final / initial:.0%} of its initial "
            f"{format_number(initial)}: the model has learned little of the training data."
        )
    if valid_drop is not None:
        evidence.append(
            f"Validation loss is still falling at the end: about {valid_drop:.0%} of its level "
            f"per 10% of training (a line through the last {VALID_SLOPE_WINDOW:.0%} of the "
            "validation points), so the model was still improving on unseen examples."
        )
    return _Underfit(evidence, falling, barely, valid_drop is not None)


# --- advice -----------------------------------------------------------------------------


def _hyperparameter(run: RunSeries, name: str) -> float | None:
    return finite_number(run.hyperparameters.get(name))


def _currently(run: RunSeries, name: str) -> str:
    value = _hyperparameter(run, name)
    return f" (currently {value:g})" if value is not None else ""


def _n_epochs(run: RunSeries) -> int | None:
    value = _hyperparameter(run, "n_epochs")
    return int(value) if value is not None else run.n_epochs


def _more_epochs(run: RunSeries) -> str:
    n_epochs = _n_epochs(run)
    return f"e.g. n_epochs = {n_epochs + 2} instead of {n_epochs}" if n_epochs else "1–2 more"


def _fewer_epochs(run: RunSeries, best_step: int | None) -> str:
    n_epochs = _n_epochs(run)
    best_epoch = run.epoch_of(best_step) if best_step is not None else None
    if n_epochs and best_epoch and best_epoch < n_epochs:
        return (
            f"e.g. n_epochs = {best_epoch} instead of {n_epochs}: validation loss was lowest then"
        )
    if n_epochs and n_epochs > 1:
        return f"e.g. n_epochs = {max(1, n_epochs - 2)} instead of {n_epochs}"
    return "1–2 fewer"


def _best_available(run: RunSeries, metric: str, available: list[int]) -> int | None:
    """The available checkpoint whose step has the lowest ``metric`` (from the curves, else
    from the checkpoint's own metrics)."""
    scored = []
    for step in available:
        value = run.value_at(metric, step)
        if value is None:
            marks = [mark for mark in run.checkpoints if mark.step == step]
            value = finite_number(marks[0].metrics.get(metric)) if marks else None
        if value is not None:
            scored.append((value, step))
    return min(scored)[1] if scored else None


def _checkpoint_notes(
    run: RunSeries, best: BestPoint, available: list[int], alt: int | None
) -> list[str]:
    label = "full-validation" if best.metric == "full_valid_loss" else "validation"
    notes = [f"Lowest {label} loss: {format_number(best.value)} at step {format_step(best.step)}."]
    if best.step in available:
        return notes
    epoch = run.epoch_of(best.step)
    where = f"step {format_step(best.step)}" + (f" (epoch {epoch})" if epoch else "")
    if not available:
        return [*notes, f"The best point, {where}, has no checkpoint available."]
    kept = ", ".join(format_step(step) for step in available)
    note = (
        f"The best point, {where}, is not an available checkpoint: OpenAI keeps only the "
        f"checkpoints of the last {CHECKPOINTS_KEPT} epochs (available: steps {kept})."
    )
    if alt is not None:
        note += f" Of those, step {format_step(alt)} has the lowest {label} loss."
    return [*notes, note]


# --- entry point ------------------------------------------------------------------------


def _unstable(run: RunSeries, spikes: list[int]) -> tuple[str, list[str], str]:
    shown = ", ".join(format_step(step) for step in spikes[:8])
    more = f" and {len(spikes) - 8} more" if len(spikes) > 8 else ""
    return (
        f"Unstable: the training loss spiked at {len(spikes)} steps.",
        [f"Loss spikes (above {SPIKE_FACTOR:g}× the recent median) at steps {shown}{more}."],
        "Lower the learning-rate multiplier"
        + _currently(run, "learning_rate_multiplier")
        + ", e.g. halve it, or raise the batch size"
        + _currently(run, "batch_size")
        + " so each update averages more examples; also look for outliers (very long, malformed "
        "or contradictory examples) in the training file.",
    )


def diagnose(run: RunSeries, *, checkpoint_steps_available: list[int]) -> Diagnosis:
    """Judge a run's fit from its curves (see ``RULE_TEXT``) and name its best checkpoint.

    ``checkpoint_steps_available`` are the steps whose checkpoints can still be used (for
    OpenAI, those of the last three epochs)."""
    available = sorted(set(checkpoint_steps_available))
    best = best_point(run, "loss")
    alt = None
    if best is not None and best.step not in available:
        alt = _best_available(run, best.metric, available)
    use = best.step if best and best.step in available else alt

    def verdict(kind: Verdict, summary: str, evidence: list[str], suggestion: str) -> Diagnosis:
        notes = list(evidence)
        if best is not None:
            notes += _checkpoint_notes(run, best, available, alt)
        elif kind != "insufficient_data":
            notes.append(
                "No validation metrics, so overfitting cannot be judged: add a validation file."
            )
        last = run.last_step
        if run.total_steps and last is not None and last < run.total_steps:
            notes.append(
                f"Only {format_step(last)} of {format_step(run.total_steps)} steps so far: "
                "the verdict may change."
            )
        return Diagnosis(
            verdict=kind,
            summary=summary,
            evidence=notes,
            suggestion=suggestion,
            best_step=best.step if best else None,
            best_value=best.value if best else None,
            best_is_available_checkpoint=best is not None and best.step in available,
            best_metric=best.metric if best else None,
            best_available_step=alt,
        )

    train = run.train_loss
    if len(train) < MIN_POINTS:
        return verdict(
            "insufficient_data",
            f"Only {len(train)} training-loss points: too few to judge the fit.",
            [],
            f"Wait until at least {MIN_POINTS} steps have reported metrics.",
        )
    spikes = spike_steps(train)
    if len(spikes) >= min_spikes(len(train)):
        return verdict("unstable", *_unstable(run, spikes))
    overfit = _overfitting(run)
    if overfit is not None:
        checkpoint = (
            f"Use the checkpoint at step {format_step(use)} rather than the final model. "
            if use is not None and use != run.last_step
            else ""
        )
        return verdict(
            "overfitting",
            "Overfitting: validation loss rose while training loss kept falling.",
            overfit,
            checkpoint
            + f"Next time train for fewer epochs ({_fewer_epochs(run, best.step if best else None)})"
            " — OpenAI's advice when the model overfits or becomes less diverse — or add more, "
            "more varied training examples.",
        )
    under = _underfitting(run)
    if under is not None:
        advice = []
        if under.falling:
            advice.append(
                f"Train for more epochs ({_more_epochs(run)}): OpenAI suggests 1–2 more when "
                "the model does not follow the training data as much as expected."
            )
        elif under.valid_falling:
            advice.append(
                f"Train for more epochs ({_more_epochs(run)}): validation loss had not stopped "
                "falling, so the model would still have improved."
            )
        if under.barely:
            advice.append(
                "Raise the learning-rate multiplier"
                + _currently(run, "learning_rate_multiplier")
                + ", e.g. double it: OpenAI's advice when the model does not appear to converge."
            )
        summary = (
            "Underfitting: validation loss was still falling when training stopped, so more "
            "epochs would help."
            if under.valid_falling and not (under.falling or under.barely)
            else "Underfitting: the model has not finished learning the training data."
        )
        return verdict("underfitting", summary, under.evidence, " ".join(advice))
    flat = "Training loss flattened" + (
        " and validation loss did not turn up." if best is not None else "."
    )
    tip = (
        f" The lowest validation loss is at step {format_step(best.step)}."
        if best is not None and best.step != run.last_step
        else ""
    )
    return verdict(
        "good_fit",
        "Good fit: training converged without signs of overfitting or instability.",
        [flat],
        "No change needed: the final model is a good choice." + tip,
    )

"""Reads for evaluations: the list, the summary per model, the results grid (filtered, sorted,
paginated) and the latest scores shown on run and compare pages."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from core.params import whole_number
from evals import graders as grading
from evals import stats
from evals.examples import content_text, prompt_preview
from evals.models import JUDGE_METRIC, EvalExample, EvalModel, EvalOutput, Evaluation
from evals.services import price
from evals.textdiff import word_diff
from jobs.models import Job
from jobs.selectors import catalog, catalog_model_for

ROWS_PER_PAGE = 25
PROMPT_MESSAGES_SHOWN = 20
PROMPT_CHARS_SHOWN = 4000
JUDGE = JUDGE_METRIC  # the judge's score, as a pseudo grader id
FILTERS = ("all", "disagree", "fails")


def evaluations_recent() -> QuerySet[Evaluation]:
    return Evaluation.objects.select_related("dataset", "created_by").order_by("-created_at", "-id")


def evaluation_get(pk: int) -> Evaluation | None:
    return (
        Evaluation.objects.select_related("dataset", "created_by", "judge_connection")
        .filter(pk=pk)
        .first()
    )


def columns(evaluation: Evaluation) -> list[EvalModel]:
    return list(evaluation.columns.select_related("connection", "job").order_by("position"))


def grader_specs(evaluation: Evaluation) -> list[grading.GraderSpec]:
    return grading.parse_specs(evaluation.graders) if evaluation.graders else []


@dataclass(frozen=True)
class Metric:
    """A score column of the summary: a grader, or the judge."""

    id: str
    label: str


def metrics(evaluation: Evaluation) -> list[Metric]:
    out = [Metric(s.id, s.label) for s in grader_specs(evaluation)]
    if evaluation.has_judge:
        out.append(Metric(JUDGE, "LLM judge"))
    return out


def win_metric(evaluation: Evaluation, mets: Sequence[Metric]) -> Metric | None:
    """The score the win rate compares row by row, when no pairwise judge decides it: the
    chosen one, else the first (a choice no longer among the scores falls back to it too)."""
    if evaluation.judge_pairwise or not mets:
        return None
    return next((m for m in mets if m.id == evaluation.win_grader), mets[0])


def _score(row: dict[str, Any], metric: str) -> float | None:
    if row["status"] != EvalOutput.Status.SUCCEEDED:
        return None
    if metric == JUDGE:
        return row["judge_score"]
    value = (row["scores"] or {}).get(metric)
    return float(value) if isinstance(value, int | float) else None


# --- summary --------------------------------------------------------------------------------


@dataclass
class ColumnSummary:
    column: EvalModel
    scores: dict[str, stats.Interval | None]
    win: stats.WinRate | None
    pairwise: stats.WinRate | None
    done: int
    failed: int
    pending: int
    mean_latency_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal | None
    best: set[str] = field(default_factory=set)
    # Metrics whose top score this column shares within the 95% intervals: a tie, not a best.
    tied: set[str] = field(default_factory=set)


@dataclass
class Summary:
    metrics: list[Metric]
    columns: list[ColumnSummary]
    primary: str | None
    cost: Decimal | None
    prompt_tokens: int
    completion_tokens: int
    # What "win rate vs baseline" counts, in words the page shows.
    win_basis: str = ""
    # The score the win rate compares (None: the pairwise judge decides, or no score).
    win_metric: str | None = None

    def chart_data(self) -> dict[str, Any]:
        """Mean score per model per metric, for the bar chart (and its text alternative)."""
        return {
            "models": [c.column.label for c in self.columns],
            "metrics": [
                {
                    "label": m.label,
                    "means": [
                        round(c.scores[m.id].mean, 4) if c.scores.get(m.id) else None
                        for c in self.columns
                    ],
                    "low": [
                        round(c.scores[m.id].low, 4) if c.scores.get(m.id) else None
                        for c in self.columns
                    ],
                    "high": [
                        round(c.scores[m.id].high, 4) if c.scores.get(m.id) else None
                        for c in self.columns
                    ],
                }
                for m in self.metrics
            ],
        }


_LIGHT = (
    "id", "example_id", "column_id", "status", "scores", "judge_score", "pairwise_score",
    "latency_ms", "prompt_tokens", "completion_tokens",
)  # fmt: skip


def light_rows(evaluation: Evaluation) -> list[dict[str, Any]]:
    return list(EvalOutput.objects.filter(evaluation=evaluation).values(*_LIGHT))


def summary(
    evaluation: Evaluation,
    cols: Sequence[EvalModel] | None = None,
    rows: list[dict[str, Any]] | None = None,
) -> Summary:
    """``rows``: the cells' light rows when the caller already read them (``light_rows``)."""
    cols = list(cols) if cols is not None else columns(evaluation)
    mets = metrics(evaluation)
    primary = mets[0].id if mets else None
    chosen = win_metric(evaluation, mets)
    rows = rows if rows is not None else light_rows(evaluation)
    by_column: dict[int, list[dict[str, Any]]] = {c.pk: [] for c in cols}
    for row in rows:
        by_column.setdefault(row["column_id"], []).append(row)
    baseline = next((c for c in cols if c.position == evaluation.baseline_position), None)
    baseline_scores: dict[int, float | None] = {}
    if baseline is not None and chosen is not None:
        baseline_scores = {r["example_id"]: _score(r, chosen.id) for r in by_column[baseline.pk]}
    models = catalog()
    out = []
    for column in cols:
        mine = sorted(by_column[column.pk], key=lambda r: r["example_id"])
        succeeded = [r for r in mine if r["status"] == EvalOutput.Status.SUCCEEDED]
        latencies = [r["latency_ms"] for r in succeeded if r["latency_ms"] is not None]
        prompt_tokens = sum(r["prompt_tokens"] or 0 for r in succeeded)
        completion_tokens = sum(r["completion_tokens"] or 0 for r in succeeded)
        win = pairwise = None
        if baseline is not None and column.pk != baseline.pk:
            if evaluation.judge_pairwise:
                # A pairwise judgement says which reply is better; it defines the win rate.
                pairwise = stats.pairwise_rate([r["pairwise_score"] for r in mine])
                win = pairwise
            elif chosen is not None:
                win = stats.win_rate(
                    [_score(r, chosen.id) for r in mine],
                    [baseline_scores.get(r["example_id"]) for r in mine],
                )
        out.append(
            ColumnSummary(
                column=column,
                scores={
                    m.id: stats.mean_interval(
                        [s for s in (_score(r, m.id) for r in mine) if s is not None]
                    )
                    for m in mets
                },
                win=win,
                pairwise=pairwise,
                done=len(succeeded),
                failed=sum(1 for r in mine if r["status"] == EvalOutput.Status.FAILED),
                pending=sum(1 for r in mine if r["status"] == EvalOutput.Status.PENDING),
                mean_latency_ms=sum(latencies) / len(latencies) if latencies else None,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost=price(
                    catalog_model_for(column.model_name, models), prompt_tokens, completion_tokens
                ),
            )
        )
    _mark_best(out, mets)
    costs = [c.cost for c in out]
    if evaluation.judge_pairwise:
        basis = (
            f"Win rate vs baseline is the LLM judge's pairwise verdict ({evaluation.judge_model}"
            " picks reply A, reply B or a tie)"
        )
    elif chosen is not None:
        what = "the LLM judge's score" if chosen.id == JUDGE else f"the grader “{chosen.label}”"
        basis = (
            f"Win rate vs baseline compares {what} row by row: a higher score wins, an equal "
            "score is a tie"
        )
    else:
        basis = "No win rate: the evaluation has no grader and no pairwise judge"
    return Summary(
        win_basis=basis,
        win_metric=chosen.id if chosen is not None else None,
        metrics=mets,
        columns=out,
        primary=primary,
        cost=None if any(c is None for c in costs) else sum(costs, Decimal(0)),  # type: ignore[arg-type]
        prompt_tokens=sum(c.prompt_tokens for c in out),
        completion_tokens=sum(c.completion_tokens for c in out),
    )


def _mark_best(out: list[ColumnSummary], mets: list[Metric]) -> None:
    """Highlight the best value of each summary column (ties all highlighted)."""
    candidates: dict[str, list[tuple[float, ColumnSummary]]] = {}
    for c in out:
        for m in mets:
            if c.scores.get(m.id) is not None:
                candidates.setdefault(m.id, []).append((c.scores[m.id].mean, c))  # type: ignore[union-attr]
        if c.win is not None and c.win.rate is not None:
            candidates.setdefault("win", []).append((c.win.rate, c))
        if c.pairwise is not None and c.pairwise.rate is not None:
            candidates.setdefault("pairwise", []).append((c.pairwise.rate, c))
        if c.mean_latency_ms is not None:
            candidates.setdefault("latency", []).append((-c.mean_latency_ms, c))
        if c.cost is not None and c.done:
            candidates.setdefault("cost", []).append((-float(c.cost), c))
    scored = {m.id for m in mets}
    for key, values in candidates.items():
        if len(values) < 2:
            continue
        top = max(v for v, _ in values)
        if key in scored:
            _mark_best_score(key, [c for _, c in values])
            continue
        for value, c in values:
            if value == top:
                c.best.add(key)


def _mark_best_score(key: str, columns: list[ColumnSummary]) -> None:
    """A score is "best" only when its interval lies wholly above every other column's; else
    the columns whose intervals reach the top interval are tied."""
    intervals = [(c.scores[key], c) for c in columns]
    top, leader = max(((i, c) for i, c in intervals if i is not None), key=lambda t: t[0].mean)
    others = [(i, c) for i, c in intervals if c is not leader and i is not None]
    if all(top.low > i.high for i, _ in others):
        leader.best.add(key)
        return
    leader.tied.add(key)
    for interval, c in others:
        if interval.high >= top.low:
            c.tied.add(key)


# --- grid -----------------------------------------------------------------------------------


@dataclass
class GridCell:
    output: EvalOutput
    scores: list[tuple[str, float | None]]
    diff: list[tuple[str, str]]
    exact: bool


@dataclass
class GridRow:
    example: EvalExample
    cells: list[GridCell | None]
    preview: str

    @property
    def prompt_messages(self) -> list[tuple[str, str]]:
        # A test line may hold thousands of messages or megabytes of text: a row shows a
        # bounded part of it (the run itself sent it all).
        messages = self.example.messages
        shown = [
            (str(m.get("role", ""))[:40], _clip(content_text(m.get("content")) or ""))
            for m in messages[-PROMPT_MESSAGES_SHOWN:]
        ]
        if len(messages) > PROMPT_MESSAGES_SHOWN:
            hidden = len(messages) - PROMPT_MESSAGES_SHOWN
            shown.insert(0, ("…", f"{hidden:,} earlier messages not shown"))
        return shown


def _clip(text: str) -> str:
    if len(text) <= PROMPT_CHARS_SHOWN:
        return text
    return f"{text[:PROMPT_CHARS_SHOWN]}… ({len(text) - PROMPT_CHARS_SHOWN:,} more characters)"


@dataclass
class Grid:
    rows: list[GridRow]
    page: Page
    total: int
    matching: int
    metric: str | None


def _normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


def _row_facts(
    rows: Iterable[dict[str, Any]], contents: dict[int, str], positions: dict[int, int]
) -> dict[int, list[dict[str, Any]]]:
    by_example: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        row = {**row, "position": positions[row["column_id"]], "text": contents.get(row["id"])}
        by_example.setdefault(row["example_id"], []).append(row)
    return by_example


def grid(
    evaluation: Evaluation,
    cols: Sequence[EvalModel],
    *,
    show: str = "all",
    column: int | None = None,
    metric: str | None = None,
    sort: int | None = None,
    descending: bool = True,
    page: int | str = 1,
    rows: list[dict[str, Any]] | None = None,
) -> Grid:
    """One row per example, one cell per column (``rows``: the light rows, when read already). ``show="disagree"`` keeps rows where the
    answered cells differ (in text or in score), ``show="fails"`` rows where the ``column``
    (or any column) failed or scored below 1; ``sort`` orders by that column's score."""
    mets = [m.id for m in metrics(evaluation)]
    metric = metric if metric in mets else (mets[0] if mets else None)
    positions = {c.pk: c.position for c in cols}
    light = rows if rows is not None else light_rows(evaluation)
    contents: dict[int, str] = {}
    if show == "disagree":  # the texts are only needed to tell whether answers differ
        contents = dict(
            EvalOutput.objects.filter(evaluation=evaluation, status=EvalOutput.Status.SUCCEEDED)
            .values_list("id", "content")
        )  # fmt: skip
    by_example = _row_facts(light, contents, positions)
    order = list(
        EvalExample.objects.filter(evaluation=evaluation)
        .order_by("position")
        .values_list("id", flat=True)
    )

    def score(row: dict[str, Any]) -> float | None:
        return _score(row, metric) if metric else None

    def keep(example_id: int) -> bool:
        cells = by_example.get(example_id, [])
        if show == "disagree":
            answered = [c for c in cells if c["status"] == EvalOutput.Status.SUCCEEDED]
            texts = {_normalised(c["text"] or "") for c in answered}
            scores = {score(c) for c in answered}
            return len(texts) > 1 or len(scores) > 1
        if show == "fails":
            chosen = [c for c in cells if column is None or c["position"] == column]
            return any(
                c["status"] == EvalOutput.Status.FAILED
                or (c["status"] == EvalOutput.Status.SUCCEEDED and (score(c) or 0.0) < 1.0)
                for c in chosen
            )
        return True

    kept = [e for e in order if keep(e)]
    if sort is not None:

        def sort_key(example_id: int) -> tuple[int, float]:
            cell = next((c for c in by_example.get(example_id, []) if c["position"] == sort), None)
            value = score(cell) if cell else None
            if value is None:
                return (1, 0.0)  # unscored rows last either way
            return (0, -value if descending else value)

        kept.sort(key=sort_key)
    paginator = Paginator(kept, ROWS_PER_PAGE)
    current = paginator.get_page(page)
    ids = list(current.object_list)
    examples = EvalExample.objects.in_bulk(ids)
    outputs: dict[tuple[int, int], EvalOutput] = {
        (o.example_id, positions[o.column_id]): o
        for o in EvalOutput.objects.filter(example_id__in=ids)
    }
    specs = grader_specs(evaluation)
    grid_rows = []
    for example_id in ids:
        example = examples[example_id]
        cells: list[GridCell | None] = []
        for c in cols:
            output = outputs.get((example_id, c.position))
            if output is None:
                cells.append(None)
                continue
            answered = output.status == EvalOutput.Status.SUCCEEDED
            scores = [(s.label, (output.scores or {}).get(s.id)) for s in specs]
            cells.append(
                GridCell(
                    output=output,
                    scores=scores,
                    diff=word_diff(example.reference, output.content) if answered else [],
                    exact=answered and output.content == example.reference,
                )
            )
        grid_rows.append(GridRow(example, cells, prompt_preview(example.messages)))
    return Grid(grid_rows, current, len(order), len(kept), metric)


# --- scores on run and compare pages ------------------------------------------------------


@dataclass(frozen=True)
class RunScore:
    evaluation: Evaluation
    metric: str
    columns: list[tuple[EvalModel, stats.Interval | None]]


def latest_for_run(job_id: uuid.UUID) -> RunScore | None:
    """The latest finished evaluation with a column of this run, every column's primary score."""
    evaluation = (
        Evaluation.objects.filter(columns__job_id=job_id, status=Evaluation.Status.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .first()
    )
    if evaluation is None:
        return None
    result = summary(evaluation)
    if result.primary is None:
        return None
    label = next(m.label for m in result.metrics if m.id == result.primary)
    return RunScore(
        evaluation, label, [(c.column, c.scores.get(result.primary)) for c in result.columns]
    )


def latest_final_scores(
    job_ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, tuple[Evaluation, str, stats.Interval | None]]:
    """Per run: the latest finished evaluation of its final model (or, lacking one, its latest
    checkpoint) and that column's primary score."""
    found: dict[uuid.UUID, tuple[Evaluation, str, stats.Interval | None]] = {}
    candidates = (
        EvalModel.objects.filter(job_id__in=job_ids, evaluation__status=Evaluation.Status.SUCCEEDED)
        .select_related("evaluation")
        .order_by("-evaluation__finished_at", "-evaluation_id", "-step")
    )
    by_job: dict[uuid.UUID, EvalModel] = {}
    for column in candidates:
        current = by_job.get(column.job_id)  # type: ignore[arg-type]
        if current is None or (
            current.evaluation_id == column.evaluation_id
            and current.kind != EvalModel.Kind.FINE_TUNED
            and column.kind == EvalModel.Kind.FINE_TUNED
        ):
            by_job[column.job_id] = column  # type: ignore[index]
    summaries: dict[int, Summary] = {}
    for job_id, column in by_job.items():
        evaluation = column.evaluation
        if evaluation.pk not in summaries:
            summaries[evaluation.pk] = summary(evaluation)
        result = summaries[evaluation.pk]
        if result.primary is None:
            continue
        label = next(m.label for m in result.metrics if m.id == result.primary)
        interval = next(
            (c.scores.get(result.primary) for c in result.columns if c.column.pk == column.pk),
            None,
        )
        found[job_id] = (evaluation, label, interval)
    return found


# --- results page ----------------------------------------------------------------------------

SHOW_LABELS = {"all": "All rows", "disagree": "Models disagree", "fails": "A model fails"}


def grid_params(query: Mapping[str, Any], column_count: int) -> dict[str, Any]:
    """The results grid's filter, sort and page from a query string (anything invalid is
    ignored); ``column_count`` bounds the column positions."""
    show = query.get("show", "all")
    if show not in FILTERS:
        show = "all"

    def position(name: str) -> int | None:
        number = whole_number(query.get(name, ""))
        return number if number is not None and number < column_count else None

    return {
        "show": show,
        "column": position("column"),
        "metric": query.get("metric") or None,
        "sort": position("sort"),
        "descending": query.get("order", "desc") != "asc",
        "page": query.get("page", 1),
    }


def results_context(
    evaluation: Evaluation, params: dict[str, Any], *, outputs: bool = True
) -> dict[str, Any]:
    """What the results page (and an evaluation's share page) shows: summary, chart and, with
    ``outputs``, the grid."""
    column_list = columns(evaluation)
    rows = light_rows(evaluation)  # read once for the summary and the grid
    result = summary(evaluation, column_list, rows)
    context: dict[str, Any] = {
        "evaluation": evaluation,
        "columns": column_list,
        "summary": result,
        "chart": result.chart_data(),
        "params": params,
        "show_labels": SHOW_LABELS,
    }
    if outputs:
        context["grid"] = grid(evaluation, column_list, rows=rows, **params)
    return context


def run_evaluations(job: Job) -> dict[str, Any]:
    """What a run page shows about evaluations: the latest finished one with a column of this
    run (every column's primary score), and whether "Evaluate checkpoints" can start one."""
    evaluable = (
        job.connection.usable
        and job.model_deleted_at is None
        and bool(job.fine_tuned_model or job.checkpoints.exists())
    )
    return {"latest": latest_for_run(job.pk), "evaluable": evaluable}

"""Writes for evaluations: create (materialise rows, cells and the cost estimate), cancel,
re-run failed cells, share. Running them is ``evals.running``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core import leases, queue
from core.services import audit_record
from datasets.models import BaseModel, Dataset
from datasets.validation import TokenizerError
from datasets.validation.tokens import count_tokens
from evals import graders as grading
from evals.choices import ModelChoice, choice_for_key
from evals.examples import TestExample, message_tokens, read_examples
from evals.models import (
    JUDGE_METRIC,
    MAX_COLUMNS,
    EvalExample,
    EvalModel,
    EvalOutput,
    Evaluation,
)
from jobs.selectors import catalog, catalog_model_for

ENCODING_FALLBACK = "o200k_base"
Status = Evaluation.Status
EVALUABLE_STATUSES = (Dataset.Status.VALID, Dataset.Status.INVALID)
Cell = EvalOutput.Status


class EvaluationError(Exception):
    """A request that cannot become an evaluation; the message is meant for the user."""


# --- cost -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnEstimate:
    label: str
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal | None


@dataclass(frozen=True)
class Estimate:
    examples: int
    skipped: int
    columns: list[ColumnEstimate]

    @property
    def prompt_tokens(self) -> int:
        return sum(c.prompt_tokens for c in self.columns)

    @property
    def cost(self) -> Decimal | None:
        """Total when every column's prices are known."""
        costs = [c.cost for c in self.columns]
        return None if any(c is None for c in costs) else sum(costs, Decimal(0))  # type: ignore[arg-type]


def price(model: BaseModel | None, prompt_tokens: int, completion_tokens: int) -> Decimal | None:
    if model is None or model.input_price_per_1m is None or model.output_price_per_1m is None:
        return None
    million = Decimal(1_000_000)
    return (
        model.input_price_per_1m * prompt_tokens + model.output_price_per_1m * completion_tokens
    ) / million


def _encoding(model: BaseModel | None) -> str:
    return model.encoding if model is not None else ENCODING_FALLBACK


@contextmanager
def _counting_tokens() -> Iterator[None]:
    """Token counts need the tokenizer: when its files are missing or damaged, say so (the
    same words as a dataset validation), never a server error or a fault of the dataset."""
    try:
        yield
    except TokenizerError as exc:
        raise EvaluationError(
            f"The tokenizer could not be loaded, so the prompts cannot be counted and no "
            f"evaluation can be estimated or started: {exc}."
        ) from exc


def estimate(
    examples: Sequence[TestExample], skipped: int, choices: Sequence[ModelChoice]
) -> Estimate:
    """Prompt tokens × models at catalog prices; the references' length stands in for the
    replies' (the best guess before any model answered)."""
    models = catalog()
    counted: dict[str, tuple[int, int]] = {}
    columns = []
    for choice in choices:
        model = catalog_model_for(choice.model_name, models)
        encoding = _encoding(model)
        if encoding not in counted:
            with _counting_tokens():
                counted[encoding] = (
                    sum(message_tokens(e.messages, encoding) for e in examples),
                    sum(grading_tokens(e.reference, encoding) for e in examples),
                )
        prompt, completion = counted[encoding]
        columns.append(
            ColumnEstimate(choice.label, prompt, completion, price(model, prompt, completion))
        )
    return Estimate(len(examples), skipped, columns)


def grading_tokens(text: str, encoding: str) -> int:
    return count_tokens(text, encoding) if text else 0


# --- create ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationRequest:
    name: str
    dataset: Dataset
    model_keys: Sequence[str]
    graders: Sequence[dict[str, Any]]
    temperature: float = 0.0
    max_tokens: int | None = None
    seed: int | None = None
    max_examples: int | None = None
    baseline_position: int = 0
    judge_key: str = ""
    judge_prompt: str = ""
    judge_pairwise: bool = False
    judge_pairwise_prompt: str = ""
    # The score the win rate compares (a grader id, or "judge"); empty: the first grader.
    win_grader: str = ""


def resolve_models(keys: Sequence[str]) -> list[ModelChoice]:
    if not keys:
        raise EvaluationError("Choose at least one model.")
    if len(keys) > MAX_COLUMNS:
        raise EvaluationError(f"Choose at most {MAX_COLUMNS} models.")
    if len(set(keys)) != len(keys):
        raise EvaluationError("Each model can be chosen once.")
    choices = []
    for key in keys:
        choice = choice_for_key(key)
        if choice is None:
            raise EvaluationError(
                f"The model “{key}” cannot be called: its connection is archived, disabled or "
                "has no key, or the model was deleted."
            )
        choices.append(choice)
    return choices


def load_examples(dataset: Dataset, limit: int | None) -> tuple[list[TestExample], int]:
    # Training rules (e.g. "at least 10 examples") do not apply to a test set: any validated
    # chat dataset will do, lines that are not a usable example are skipped and counted.
    if dataset.status not in EVALUABLE_STATUSES:
        raise EvaluationError(
            f"The dataset “{dataset.name}” is {dataset.get_status_display().lower()}; "
            "evaluate on a validated chat dataset."
        )
    if dataset.format not in (Dataset.Format.CHAT, Dataset.Format.CHAT_TOOLS):
        raise EvaluationError(
            f"The dataset “{dataset.name}” is not in chat format ({dataset.get_format_display()})."
        )
    cap = min(limit or settings.EVAL_MAX_EXAMPLES, settings.EVAL_MAX_EXAMPLES)
    with dataset.file.open("rb") as fh:
        examples, skipped = read_examples(fh, limit=cap)
    if not examples:
        raise EvaluationError(
            f"The dataset “{dataset.name}” has no example ending with an assistant reply."
        )
    return examples, skipped


def _judge(request: EvaluationRequest) -> tuple[ModelChoice | None, str, str]:
    if not request.judge_key:
        return None, "", ""
    judge = resolve_models([request.judge_key])[0]
    prompt = request.judge_prompt.strip() or grading.JUDGE_PROMPT
    pairwise = request.judge_pairwise_prompt.strip() or grading.PAIRWISE_PROMPT
    try:
        grading.check_template(prompt, pairwise=False)
        if request.judge_pairwise:
            grading.check_template(pairwise, pairwise=True)
    except grading.GraderError as exc:
        raise EvaluationError(str(exc)) from exc
    return judge, prompt, pairwise if request.judge_pairwise else ""


def evaluation_create(
    *, request: EvaluationRequest, user: AbstractBaseUser | None, enqueue: bool = True
) -> Evaluation:
    """Check the request, materialise rows, columns and pending cells, and queue the run."""
    choices = resolve_models(request.model_keys)
    try:
        specs = grading.parse_specs(list(request.graders))
    except grading.GraderError as exc:
        raise EvaluationError(str(exc)) from exc
    if not 0 <= request.baseline_position < len(choices):
        raise EvaluationError("The baseline must be one of the chosen models.")
    if not 0 <= request.temperature <= 2:
        raise EvaluationError("Temperature must be between 0 and 2.")
    judge, judge_prompt, pairwise_prompt = _judge(request)
    scores = [s.id for s in specs] + ([JUDGE_METRIC] if judge else [])
    if request.win_grader and request.win_grader not in scores:
        raise EvaluationError("The win rate can only be counted on one of the chosen graders.")
    examples, skipped = load_examples(request.dataset, request.max_examples)
    cost = estimate(examples, skipped, choices)
    encoding = _encoding(catalog_model_for(choices[0].model_name, catalog()))
    with _counting_tokens():  # before the transaction: a failure leaves nothing half-written
        prompt_tokens = [message_tokens(e.messages, encoding) for e in examples]
    judge_cells = len(examples) * len(choices) if judge else 0
    if judge and request.judge_pairwise:
        judge_cells += len(examples) * (len(choices) - 1)
    with transaction.atomic():
        evaluation = Evaluation.objects.create(
            name=request.name.strip()[:200] or f"{request.dataset.name} × {len(choices)} models",
            dataset=request.dataset,
            created_by=user if user is not None and user.is_authenticated else None,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            seed=request.seed,
            graders=[s.to_dict() for s in specs],
            baseline_position=request.baseline_position,
            win_grader=request.win_grader,
            judge_connection_id=judge.connection_id if judge else None,
            judge_model=judge.model_name if judge else "",
            judge_prompt=judge_prompt,
            judge_pairwise=bool(judge and request.judge_pairwise),
            judge_pairwise_prompt=pairwise_prompt,
            examples_skipped=skipped,
            **leases.queued_fields(),
            cells_total=len(examples) * len(choices),
            judge_total=judge_cells,
            estimated_cost=cost.cost,
            estimated_prompt_tokens=cost.prompt_tokens,
        )
        columns = EvalModel.objects.bulk_create(
            EvalModel(
                evaluation=evaluation,
                position=i,
                label=c.label,
                kind=c.kind,
                connection_id=c.connection_id,
                model_name=c.model_name,
                job_id=c.job_id,
                checkpoint_id=c.checkpoint_id,
                step=c.step,
            )
            for i, c in enumerate(choices)
        )
        rows = EvalExample.objects.bulk_create(
            (
                EvalExample(
                    evaluation=evaluation,
                    position=i,
                    line_number=e.line_number,
                    messages=e.messages,
                    reference=e.reference,
                    prompt_tokens=tokens,
                )
                for i, (e, tokens) in enumerate(zip(examples, prompt_tokens, strict=True))
            ),
            batch_size=500,
        )
        EvalOutput.objects.bulk_create(
            (
                EvalOutput(evaluation=evaluation, example=row, column=column)
                for row in rows
                for column in columns
            ),
            batch_size=1000,
        )
        audit_record(
            actor=user,
            action="evaluation_created",
            obj=evaluation,
            detail={"models": [c.model_name for c in choices], "examples": len(examples)},
        )
        if enqueue:
            enqueue_step(evaluation.pk)
    return evaluation


def enqueue_step(evaluation_id: int, countdown: float = 0) -> None:
    queue.enqueue("evals.tasks.evaluation_run_task", evaluation_id, countdown=countdown)


# --- controls -------------------------------------------------------------------------------


def evaluation_cancel(*, evaluation: Evaluation, user: AbstractBaseUser | None) -> bool:
    cancelled = Evaluation.objects.filter(
        pk=evaluation.pk, status__in=(Status.QUEUED, Status.RUNNING)
    ).update(status=Status.CANCELLED, finished_at=timezone.now())
    if cancelled:
        audit_record(actor=user, action="evaluation_cancelled", obj=evaluation)
    return bool(cancelled)


def evaluation_set_win_grader(
    *, evaluation: Evaluation, grader: str, user: AbstractBaseUser | None
) -> None:
    """Count the win rate vs baseline on another of the evaluation's scores (it is computed
    when shown, so nothing else changes). A pairwise judge's verdict, when there is one, still
    decides it."""
    if grader not in evaluation.score_ids:
        raise EvaluationError("Choose one of this evaluation's graders.")
    if evaluation.judge_pairwise:
        raise EvaluationError("The pairwise judge's verdict defines this evaluation's win rate.")
    previous = evaluation.win_grader
    Evaluation.objects.filter(pk=evaluation.pk).update(win_grader=grader)
    evaluation.win_grader = grader
    audit_record(
        actor=user,
        action="evaluation_win_grader",
        obj=evaluation,
        detail={"from": previous, "to": grader},
    )


def evaluation_rerun_failed(
    *,
    evaluation: Evaluation,
    user: AbstractBaseUser | None,
    output_ids: Sequence[int] | None = None,
) -> int:
    """Put failed cells (all, or those of ``output_ids``) and failed judgements back to
    pending and run the evaluation again."""
    with transaction.atomic():
        locked = Evaluation.objects.select_for_update().get(pk=evaluation.pk)
        outputs = EvalOutput.objects.filter(evaluation=locked)
        if output_ids is not None:
            outputs = outputs.filter(pk__in=output_ids)
        cells = outputs.filter(status=Cell.FAILED).update(
            status=Cell.PENDING, attempts=0, error="", completed_at=None
        )
        judged = outputs.exclude(judge_error="").update(judge_error="", judge_attempts=0)
        if not cells and not judged:
            return 0
        Evaluation.objects.filter(pk=locked.pk).update(
            status=Status.QUEUED,
            finished_at=None,
            cells_failed=F("cells_failed") - cells,
            cells_done=F("cells_done") - cells,
            last_error="",
            **_judge_progress(locked),
            **leases.queued_fields(),
        )
        audit_record(
            actor=user, action="evaluation_rerun", obj=locked, detail={"cells": cells + judged}
        )
        enqueue_step(locked.pk)
    return cells + judged


def _judge_progress(evaluation: Evaluation) -> dict[str, int]:
    """Judgements made, and to make if every cell not failed gets its judgements."""
    if not evaluation.has_judge:
        return {}
    outputs = EvalOutput.objects.filter(evaluation=evaluation)
    done = outputs.exclude(judge_reply="").count()
    cells = outputs.exclude(status=Cell.FAILED).count()
    total = cells
    if evaluation.judge_pairwise:
        done += outputs.exclude(pairwise_reply="").count()
        total += (
            outputs.exclude(status=Cell.FAILED)
            .exclude(column__position=evaluation.baseline_position)
            .count()
        )
    return {"judge_done": done, "judge_total": total}

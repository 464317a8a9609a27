"""Writes for evaluations: create (materialise rows, cells and the cost estimate), run in steps,
cancel, re-run failed cells.

Running. A step holds a PostgreSQL advisory lock for the evaluation (session level: it dies
with a killed worker, and nothing waits on it), claims the evaluation with a conditional
UPDATE, then fills pending cells (``evals.runner``) until they are done or its time budget is
spent, and queues the next step. A cell whose call failed transiently stays pending for a
later step until ``EVAL_MAX_ATTEMPTS``; a permanent failure (a 4xx: unknown model, bad
request) fails the cell with the provider's message. Failed cells are shown, never fatal.
Then the LLM judge, when chosen, grades each answered cell the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from dashboard.services import audit_record
from datasets.models import BaseModel, Dataset
from evals import graders as grading
from evals.choices import ModelChoice, choice_for_key
from evals.examples import TestExample, message_tokens, read_examples
from evals.models import MAX_COLUMNS, EvalExample, EvalModel, EvalOutput, Evaluation
from evals.runner import Answer, Call, run_calls
from jobs.locks import AdvisoryLock
from jobs.selectors import catalog, catalog_model_for

log = logging.getLogger("tuneboard.evals")

RUN_LOCK = "evals.run"
STEP_BUDGET_SECONDS = 60.0
RETRY_DELAY_SECONDS = 10.0
BUSY_RECHECK_SECONDS = 15.0
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
    from datasets.validation.tokens import count_tokens

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
    examples, skipped = load_examples(request.dataset, request.max_examples)
    cost = estimate(examples, skipped, choices)
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
            judge_connection_id=judge.connection_id if judge else None,
            judge_model=judge.model_name if judge else "",
            judge_prompt=judge_prompt,
            judge_pairwise=bool(judge and request.judge_pairwise),
            judge_pairwise_prompt=pairwise_prompt,
            examples_skipped=skipped,
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
        encoding = _encoding(catalog_model_for(choices[0].model_name, catalog()))
        rows = EvalExample.objects.bulk_create(
            (
                EvalExample(
                    evaluation=evaluation,
                    position=i,
                    line_number=e.line_number,
                    messages=e.messages,
                    reference=e.reference,
                    prompt_tokens=message_tokens(e.messages, encoding),
                )
                for i, e in enumerate(examples)
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
            _enqueue(evaluation.pk)
    return evaluation


def _enqueue(evaluation_id: int, countdown: float = 0) -> None:
    from evals.tasks import evaluation_run_task

    transaction.on_commit(
        lambda: evaluation_run_task.apply_async((evaluation_id,), countdown=countdown or None)
    )


# --- controls -------------------------------------------------------------------------------


def evaluation_cancel(*, evaluation: Evaluation, user: AbstractBaseUser | None) -> bool:
    cancelled = Evaluation.objects.filter(
        pk=evaluation.pk, status__in=(Status.QUEUED, Status.RUNNING)
    ).update(status=Status.CANCELLED, finished_at=timezone.now())
    if cancelled:
        audit_record(actor=user, action="evaluation_cancelled", obj=evaluation)
    return bool(cancelled)


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
        )
        audit_record(
            actor=user, action="evaluation_rerun", obj=locked, detail={"cells": cells + judged}
        )
        _enqueue(locked.pk)
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


# --- share links ----------------------------------------------------------------------------


def evaluation_share_create(
    *,
    evaluation: Evaluation,
    user: AbstractBaseUser,
    label: str = "",
    expires_at: Any = None,
    include_outputs: bool = False,
) -> tuple[Any, str]:
    """A read-only public link to the evaluation's summary (and, when ``include_outputs``,
    its prompts, references and outputs). Returns the link and its token, shown once."""
    from dashboard import share
    from dashboard.models import ShareLink

    token = share.new_token()
    link = ShareLink.objects.create(
        token_hash=share.token_hash(token),
        kind=ShareLink.Kind.EVALUATION,
        evaluation=evaluation,
        include_outputs=include_outputs,
        label=(label.strip() or evaluation.name)[:200],
        created_by=user,
        expires_at=expires_at,
    )
    audit_record(
        actor=user,
        action="share_link_created",
        obj=link,
        detail={"kind": "evaluation", "evaluation": evaluation.pk, "outputs": include_outputs},
    )
    return link, token


# --- running --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """ "done", "continue" (budget spent), "retry" (transient failures, in ``delay`` s) or "busy"."""

    state: str
    delay: float = 0.0


def evaluation_step_and_continue(*, evaluation_id: int) -> Step:
    """The task's body: one step, then the next one (or a retry) as a new task."""
    step = evaluation_step(evaluation_id=evaluation_id)
    if step.state == "continue":
        _enqueue(evaluation_id)
    elif step.state in ("retry", "busy"):
        # Busy: another worker holds the run. Look again later rather than drop this
        # delivery: if that worker dies, its own delivery may already be acknowledged.
        _enqueue(evaluation_id, countdown=step.delay)
    return step


def evaluation_step(*, evaluation_id: int, budget: float | None = STEP_BUDGET_SECONDS) -> Step:
    evaluation = Evaluation.objects.filter(pk=evaluation_id).first()
    if evaluation is None or evaluation.is_terminal:
        return Step("done")
    with AdvisoryLock(RUN_LOCK, evaluation_id) as held:
        if not held:
            return Step("busy", delay=BUSY_RECHECK_SECONDS)
        now = timezone.now()
        claimed = Evaluation.objects.filter(
            pk=evaluation_id, status__in=(Status.QUEUED, Status.RUNNING)
        ).update(
            status=Status.RUNNING,
            started_at=Coalesce(F("started_at"), Value(now)),
            heartbeat_at=now,
        )
        if not claimed:
            return Step("done")
        evaluation.refresh_from_db()
        deadline = None if budget is None else time.monotonic() + budget
        return _Run(evaluation, deadline).work()


class _Run:
    def __init__(self, evaluation: Evaluation, deadline: float | None) -> None:
        self.evaluation = evaluation
        self.deadline = deadline
        self.specs = grading.parse_specs(evaluation.graders) if evaluation.graders else []
        self.max_attempts = settings.EVAL_MAX_ATTEMPTS
        self.transient = 0
        self._last_beat = time.monotonic()

    # --- bookkeeping

    def cancelled(self) -> bool:
        self._beat()
        return (
            Evaluation.objects.filter(pk=self.evaluation.pk)
            .values_list("status", flat=True)
            .first()
            != Status.RUNNING
        )

    def _beat(self) -> None:
        if time.monotonic() - self._last_beat > 5:
            self._last_beat = time.monotonic()
            Evaluation.objects.filter(pk=self.evaluation.pk).update(heartbeat_at=timezone.now())

    def _count(self, **increments: int) -> None:
        Evaluation.objects.filter(pk=self.evaluation.pk).update(
            heartbeat_at=timezone.now(), **{k: F(k) + v for k, v in increments.items() if v}
        )

    # --- phases

    def work(self) -> Step:
        complete = run_calls(
            self._output_calls(),
            on_answer=self._store_output,
            should_stop=self.cancelled,
            deadline=self.deadline,
        )
        if complete and self.evaluation.has_judge and not self._pending_outputs():
            complete = run_calls(
                self._judge_calls(),
                on_answer=self._store_judgement,
                should_stop=self.cancelled,
                deadline=self.deadline,
            )
        if self.cancelled():
            return Step("done")
        if not complete:
            return Step("continue")
        if self._pending_outputs() or (self.evaluation.has_judge and self._pending_judgements()):
            return Step("retry", delay=RETRY_DELAY_SECONDS)
        self._finish()
        return Step("done")

    def _finish(self) -> None:
        # Failed cells and uncomparable rows were never judged: the judge part is complete.
        Evaluation.objects.filter(pk=self.evaluation.pk, status=Status.RUNNING).update(
            status=Status.SUCCEEDED, finished_at=timezone.now(), judge_total=F("judge_done")
        )
        log.info("evaluation %s finished", self.evaluation.pk)

    def _pending_outputs(self) -> bool:
        return EvalOutput.objects.filter(evaluation=self.evaluation, status=Cell.PENDING).exists()

    # --- outputs

    def _output_calls(self) -> list[Call]:
        e = self.evaluation
        cells = (
            EvalOutput.objects.filter(evaluation=e, status=Cell.PENDING)
            .select_related("column", "example")
            .order_by("example__position", "column__position")
        )
        return [
            Call(
                key=cell.pk,
                connection_id=cell.column.connection_id,
                model=cell.column.model_name,
                messages=cell.example.messages,
                temperature=e.temperature,
                max_tokens=e.max_tokens,
                seed=e.seed,
            )
            for cell in cells
        ]

    def _store_output(self, answer: Answer) -> None:
        now = timezone.now()
        pending = EvalOutput.objects.filter(pk=answer.call.key, status=Cell.PENDING)
        if answer.result is not None:
            result = answer.result
            reference = EvalExample.objects.filter(outputs__pk=answer.call.key).values_list(
                "reference", flat=True
            )[0]
            content = result.content or ""
            written = pending.update(
                status=Cell.SUCCEEDED,
                content=content,
                finish_reason=result.finish_reason or "",
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                latency_ms=round(result.latency_seconds * 1000),
                scores=grading.grade_all(self.specs, output=content, reference=reference),
                attempts=F("attempts") + 1,
                error="",
                completed_at=now,
            )
            self._count(cells_done=written)
            return
        message = str(answer.error)[:2000]
        if answer.transient:
            # Worth another try in a later step, unless it has had its tries.
            retried = pending.filter(attempts__lt=self.max_attempts - 1).update(
                attempts=F("attempts") + 1, error=message
            )
            if retried:
                return
        written = pending.update(
            status=Cell.FAILED, error=message, attempts=F("attempts") + 1, completed_at=now
        )
        self._count(cells_done=written, cells_failed=written)

    # --- the judge

    def _pending_judgements(self) -> bool:
        return self._judge_queryset().exists()

    def _judge_queryset(self) -> Any:
        e = self.evaluation
        needs_score = Q(judge_reply="")
        if e.judge_pairwise:
            # Rows whose baseline has no answer cannot be compared with it.
            answered = EvalOutput.objects.filter(
                evaluation=e, column__position=e.baseline_position, status=Cell.SUCCEEDED
            ).values("example_id")
            needs_score = needs_score | (
                Q(pairwise_reply="")
                & ~Q(column__position=e.baseline_position)
                & Q(example_id__in=answered)
            )
        return EvalOutput.objects.filter(
            needs_score, evaluation=e, status=Cell.SUCCEEDED, judge_error=""
        )

    def _judge_calls(self) -> list[Call]:
        e = self.evaluation
        baseline = dict(
            EvalOutput.objects.filter(
                evaluation=e, column__position=e.baseline_position, status=Cell.SUCCEEDED
            ).values_list("example_id", "content")
        )
        calls = []
        for cell in self._judge_queryset().select_related("example", "column"):
            question = grading.prompt_text(cell.example.messages)
            if not cell.judge_reply:
                calls.append(self._judge_call(cell, "score", e.judge_prompt, question, None))
            if (
                e.judge_pairwise
                and not cell.pairwise_reply
                and cell.column.position != e.baseline_position
                and cell.example_id in baseline
            ):
                calls.append(
                    self._judge_call(
                        cell, "pairwise", e.judge_pairwise_prompt, question,
                        baseline[cell.example_id],
                    )
                )  # fmt: skip
        return calls

    def _judge_call(
        self, cell: EvalOutput, kind: str, template: str, question: str, baseline: str | None
    ) -> Call:
        e = self.evaluation
        return Call(
            key=(cell.pk, kind),
            connection_id=e.judge_connection_id,  # type: ignore[arg-type]
            model=e.judge_model,
            messages=grading.judge_messages(
                template,
                prompt_text=question,
                reference=cell.example.reference,
                output=cell.content,
                baseline=baseline,
            ),
            temperature=0.0,
            max_tokens=None,
            seed=e.seed,
        )

    def _store_judgement(self, answer: Answer) -> None:
        pk, kind = answer.call.key
        cell = EvalOutput.objects.filter(pk=pk)
        if answer.result is not None:
            reply = (answer.result.content or "").strip() or "(empty reply)"
            if kind == "score":
                written = cell.filter(judge_reply="").update(
                    judge_reply=reply[:2000], judge_score=grading.parse_judge_score(reply)
                )
            else:
                written = cell.filter(pairwise_reply="").update(
                    pairwise_reply=reply[:2000], pairwise_score=grading.parse_pairwise(reply)
                )
            self._count(judge_done=written)
            return
        message = f"Judge: {answer.error}"[:2000]
        if answer.transient and cell.filter(judge_attempts__lt=self.max_attempts - 1).update(
            judge_attempts=F("judge_attempts") + 1
        ):
            return
        # The judgements of a cell fail together: one error, both counted as done.
        undone = int(not cell.values_list("judge_reply", flat=True)[0]) + int(
            bool(self.evaluation.judge_pairwise)
            and not cell.values_list("pairwise_reply", flat=True)[0]
            and cell.exclude(column__position=self.evaluation.baseline_position).exists()
        )
        written = cell.filter(judge_error="").update(judge_error=message)
        self._count(judge_done=undone if written else 0)

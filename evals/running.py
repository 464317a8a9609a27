"""Running an evaluation in steps.

A step holds a PostgreSQL advisory lock for the evaluation (session level: it dies with a
killed worker, and nothing waits on it), claims the evaluation with a conditional UPDATE, then
fills pending cells (``evals.runner``) until they are done or its time budget is spent, and
queues the next step. A cell whose call failed transiently stays pending for a later step until
``EVAL_MAX_ATTEMPTS``; a permanent failure (a 4xx: unknown model, bad request) fails the cell
with the provider's message. Failed cells are shown, never fatal. Then the LLM judge, when
chosen, grades each answered cell the same way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import leases
from evals import graders as grading
from evals.models import EvalExample, EvalModel, EvalOutput, Evaluation
from evals.runner import Answer, Call, run_calls
from evals.services import enqueue_step
from jobs.locks import AdvisoryLock
from jobs.providers import NotFoundError
from jobs.services import checkpoint_mark_deleted, checkpoints_check_served

log = logging.getLogger("tuneboard.evals")

GONE_CHECKPOINT = (
    "Not requested: the provider no longer serves this checkpoint model (deleted, or pruned "
    "after the job finished)."
)

RUN_LOCK = "evals.run"
STEP_BUDGET_SECONDS = 60.0
RETRY_DELAY_SECONDS = 10.0
BUSY_RECHECK_SECONDS = 15.0
Status = Evaluation.Status
Cell = EvalOutput.Status


@dataclass(frozen=True)
class Step:
    """ "done", "continue" (budget spent), "retry" (transient failures, in ``delay`` s) or "busy"."""

    state: str
    delay: float = 0.0


def evaluation_step_and_continue(*, evaluation_id: int) -> Step:
    """The task's body: one step, then the next one (or a retry) as a new task."""
    step = evaluation_step(evaluation_id=evaluation_id)
    if step.state == "continue":
        enqueue_step(evaluation_id)
    elif step.state in ("retry", "busy"):
        # Busy: another worker holds the run. Look again later rather than drop this
        # delivery: if that worker dies, its own delivery may already be acknowledged.
        enqueue_step(evaluation_id, countdown=step.delay)
    return step


def evaluation_step(*, evaluation_id: int, budget: float | None = STEP_BUDGET_SECONDS) -> Step:
    evaluation = Evaluation.objects.filter(pk=evaluation_id).first()
    if evaluation is None or evaluation.is_terminal:
        return Step("done")
    with AdvisoryLock(RUN_LOCK, evaluation_id) as held:
        if not held:
            return Step("busy", delay=BUSY_RECHECK_SECONDS)
        now = timezone.now()
        # Holding the lock, this session is the only runner: the lease is taken whoever held
        # it (that session is gone), and tells the reaper who works on the evaluation.
        unfinished = Evaluation.objects.filter(
            pk=evaluation_id, status__in=(Status.QUEUED, Status.RUNNING)
        )
        claimed = unfinished.update(
            status=Status.RUNNING,
            started_at=Coalesce(F("started_at"), Value(now)),
            heartbeat_at=now,
            **leases.held_fields(),
        )
        if not claimed:
            return Step("done")
        evaluation.refresh_from_db()
        deadline = None if budget is None else time.monotonic() + budget
        step = Step("retry", delay=0.0)
        try:
            step = _Run(evaluation, deadline).work()
        finally:
            # Between steps it waits in the queue (the next step, or a retry later).
            unfinished.update(**leases.queued_fields(delay=step.delay))
            Evaluation.objects.filter(pk=evaluation_id).exclude(
                status__in=(Status.QUEUED, Status.RUNNING)
            ).update(**leases.done_fields())
        return step


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
            Evaluation.objects.filter(pk=self.evaluation.pk).update(
                heartbeat_at=timezone.now(), **leases.held_fields()
            )

    def _count(self, **increments: int) -> None:
        Evaluation.objects.filter(pk=self.evaluation.pk).update(
            heartbeat_at=timezone.now(),
            **leases.held_fields(),
            **{k: F(k) + v for k, v in increments.items() if v},
        )

    # --- phases

    def work(self) -> Step:
        self._skip_gone_checkpoints()
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
            status=Case(
                When(cells_failed__gt=0, then=Value(Status.PARTIAL)),
                default=Value(Status.SUCCEEDED),
            ),
            finished_at=timezone.now(),
            judge_total=F("judge_done"),
        )
        log.info("evaluation %s finished", self.evaluation.pk)

    def _pending_outputs(self) -> bool:
        return EvalOutput.objects.filter(evaluation=self.evaluation, status=Cell.PENDING).exists()

    # --- checkpoints the provider deleted

    def _skip_gone_checkpoints(self) -> None:
        """Before a checkpoint column's first call, ask the provider whether it still serves
        the checkpoint: a finished job is no longer synced, so one deleted since would only
        show as a 404 per cell. Columns whose checkpoint is gone (known already, or answered
        404 now) fail their pending cells with that reason instead of sending requests."""
        e = self.evaluation
        answered = EvalOutput.objects.filter(column=OuterRef("pk"), status=Cell.SUCCEEDED)
        waiting = EvalOutput.objects.filter(column=OuterRef("pk"), status=Cell.PENDING)
        columns = list(
            EvalModel.objects.filter(evaluation=e, checkpoint__isnull=False)
            .filter(Exists(waiting))
            .exclude(Exists(answered))  # it answered before: the 404 of a call will tell
            .select_related("checkpoint", "connection")
        )
        gone = {c.pk for c in columns if c.checkpoint.deleted_at is not None}  # type: ignore[union-attr]
        unknown: dict[int, list[EvalModel]] = {}
        for column in columns:
            if column.pk not in gone:
                unknown.setdefault(column.connection_id, []).append(column)
        for group in unknown.values():
            deleted = checkpoints_check_served(
                connection=group[0].connection, model_names=[c.model_name for c in group]
            )
            gone |= {c.pk for c in group if c.model_name in deleted}
        if not gone:
            return
        written = EvalOutput.objects.filter(
            evaluation=e, column_id__in=gone, status=Cell.PENDING
        ).update(status=Cell.FAILED, error=GONE_CHECKPOINT, completed_at=timezone.now())
        self._count(cells_done=written, cells_failed=written)
        log.info("evaluation %s: %s cells of deleted checkpoints not requested", e.pk, written)

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
        if isinstance(answer.error, NotFoundError):
            # Only checkpoints match: a deleted checkpoint stops being offered at once.
            checkpoint_mark_deleted(
                model_name=answer.call.model, connection_id=answer.call.connection_id
            )

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

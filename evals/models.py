"""Evaluations: the outputs of up to eight models (base models, checkpoints, fine-tuned models)
on the examples of a test dataset, graded per cell.

An evaluation is materialised when it is created: one ``EvalExample`` per usable example (the
prompt and its reference answer), one ``EvalModel`` per column and one pending ``EvalOutput``
per cell. Running it only fills pending cells, so a redelivered or restarted task never asks
for a cell twice once it has an answer.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import Leased

MAX_COLUMNS = 8
JUDGE_METRIC = "judge"  # the judge's score, as a pseudo grader id


class Evaluation(Leased):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        # Finished, but some cells have no answer (a deleted model, errors past their retries).
        PARTIAL = "partial", "Finished with failed cells"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    TERMINAL = frozenset({Status.SUCCEEDED, Status.PARTIAL, Status.FAILED, Status.CANCELLED})

    name = models.CharField(max_length=200)
    dataset = models.ForeignKey(
        "datasets.Dataset", on_delete=models.PROTECT, related_name="evaluations"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    temperature = models.FloatField(default=0.0)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    # [{"id", "kind", "label", "options"}] as evals.graders.GraderSpec.to_dict() makes them.
    graders = models.JSONField(default=list, blank=True)
    baseline_position = models.PositiveSmallIntegerField(
        default=0, help_text="The column others are compared with (win rate, pairwise judge)."
    )
    # Without a pairwise judge, the win rate compares this score row by row (a grader's id, or
    # "judge" for the judge's score); empty or no longer a score of this evaluation: the first.
    win_grader = models.CharField(
        max_length=40,
        blank=True,
        help_text="The grader whose row-by-row scores define the win rate vs the baseline "
        "(unless a pairwise judge decides it); empty: the first grader.",
    )
    # The optional LLM judge: a model that grades every output against the reference (score)
    # and, when ``judge_pairwise``, against the baseline column's output (win/tie/loss).
    judge_connection = models.ForeignKey(
        "jobs.ProviderConnection",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    judge_model = models.CharField(max_length=300, blank=True)
    judge_prompt = models.TextField(blank=True)
    judge_pairwise = models.BooleanField(default=False)
    judge_pairwise_prompt = models.TextField(blank=True)

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    examples_skipped = models.PositiveIntegerField(
        default=0, help_text="Dataset lines that are not a chat ending in an assistant reply."
    )
    cells_total = models.PositiveIntegerField(default=0)
    cells_done = models.PositiveIntegerField(default=0)
    cells_failed = models.PositiveIntegerField(default=0)
    judge_total = models.PositiveIntegerField(default=0)
    judge_done = models.PositiveIntegerField(default=0)
    estimated_cost = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    estimated_prompt_tokens = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["dataset", "-created_at"], name="evaluation_by_dataset"),
            models.Index(fields=["status", "-created_at"], name="evaluation_by_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(temperature__gte=0) & Q(temperature__lte=2),
                name="evaluation_temperature_range",
            ),
            models.CheckConstraint(
                condition=Q(cells_done__lte=models.F("cells_total")),
                name="evaluation_cells_done_le_total",
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"evaluation {self.pk}"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def has_judge(self) -> bool:
        return bool(self.judge_model) and self.judge_connection_id is not None

    @property
    def score_ids(self) -> list[str]:
        """The scores of each cell, in the order the page shows them: the graders', then the
        judge's."""
        ids = [str(g["id"]) for g in self.graders if isinstance(g, dict) and "id" in g]
        return ids + ([JUDGE_METRIC] if self.has_judge else [])

    @property
    def progress_percent(self) -> float:
        total = self.cells_total + self.judge_total
        if not total:
            return 100.0 if self.is_terminal else 0.0
        return min(100.0, 100.0 * (self.cells_done + self.judge_done) / total)


class EvalModel(models.Model):
    """One column: a model called through one provider connection."""

    class Kind(models.TextChoices):
        BASE = "base", "Base model"
        CHECKPOINT = "checkpoint", "Checkpoint"
        FINE_TUNED = "fine_tuned", "Fine-tuned model"

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="columns")
    position = models.PositiveSmallIntegerField()
    label = models.CharField(max_length=300)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    connection = models.ForeignKey(
        "jobs.ProviderConnection", on_delete=models.PROTECT, related_name="+"
    )
    model_name = models.CharField(max_length=300)
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="eval_columns"
    )
    checkpoint = models.ForeignKey(
        "jobs.Checkpoint", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    step = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["evaluation", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["evaluation", "position"], name="evalmodel_one_per_position"
            ),
            models.CheckConstraint(
                condition=Q(position__lt=MAX_COLUMNS), name="evalmodel_at_most_eight"
            ),
        ]
        indexes = [models.Index(fields=["model_name"], name="evalmodel_by_model")]

    def __str__(self) -> str:
        return self.label


class EvalExample(models.Model):
    """One row: the prompt (every message before the last assistant reply) and the reference."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="examples")
    position = models.PositiveIntegerField()
    line_number = models.PositiveIntegerField(help_text="Line of the dataset file (1-based).")
    messages = models.JSONField()
    reference = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["evaluation", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["evaluation", "position"], name="evalexample_one_per_position"
            )
        ]

    def __str__(self) -> str:
        return f"example {self.position + 1} (line {self.line_number})"


class EvalOutput(models.Model):
    """One cell: a model's reply to one example, its usage, latency and scores."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="outputs")
    example = models.ForeignKey(EvalExample, on_delete=models.CASCADE, related_name="outputs")
    column = models.ForeignKey(EvalModel, on_delete=models.CASCADE, related_name="outputs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    content = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=40, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    # {grader id: score in [0, 1] or None}
    scores = models.JSONField(default=dict, blank=True)
    judge_score = models.FloatField(null=True, blank=True)
    judge_reply = models.TextField(blank=True)
    pairwise_score = models.FloatField(
        null=True, blank=True, help_text="1 win, 0.5 tie, 0 loss against the baseline column."
    )
    pairwise_reply = models.TextField(blank=True)
    judge_error = models.TextField(blank=True)
    judge_attempts = models.PositiveSmallIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["example__position", "column__position"]
        constraints = [
            models.UniqueConstraint(fields=["example", "column"], name="evaloutput_one_per_cell"),
        ]
        indexes = [
            models.Index(
                fields=["evaluation", "column"],
                condition=Q(status="pending"),
                name="evaloutput_pending",
            ),
            models.Index(fields=["evaluation", "status"], name="evaloutput_by_status"),
        ]

    def __str__(self) -> str:
        return f"{self.column_id} × {self.example_id}: {self.status}"

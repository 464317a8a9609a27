from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin_tools import SavesOnlyItsFields
from evals import services
from evals.models import EvalExample, EvalModel, EvalOutput, Evaluation
from jobs.admin import ReadOnlyAdmin


class EvalModelInline(admin.TabularInline):
    model = EvalModel
    fields = ("position", "label", "kind", "connection", "model_name", "job", "step")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Evaluation)
class EvaluationAdmin(SavesOnlyItsFields):
    list_display = (
        "name",
        "status",
        "dataset",
        "cells_done",
        "cells_total",
        "cells_failed",
        "judge_model",
        "created_by",
        "created_at",
    )
    list_filter = ("status", "judge_pairwise", "created_at")
    search_fields = ("name", "dataset__name", "columns__model_name", "judge_model")
    readonly_fields = (
        "dataset", "created_by", "created_at", "temperature", "max_tokens", "seed", "graders",
        "baseline_position", "win_grader", "judge_connection", "judge_model", "judge_prompt",
        "judge_pairwise", "judge_pairwise_prompt", "status", "examples_skipped", "cells_total",
        "cells_done", "cells_failed", "judge_total", "judge_done", "estimated_cost",
        "estimated_prompt_tokens", "started_at", "heartbeat_at", "finished_at", "last_error",
        "lease_owner", "lease_expires_at", "lease_heartbeat_at",
    )  # fmt: skip
    inlines = (EvalModelInline,)
    actions = ("rerun_failed", "cancel")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # evaluations are created from the dataset page or a run page

    @admin.action(description="Re-run failed cells")
    def rerun_failed(self, request: HttpRequest, queryset: QuerySet[Evaluation]) -> None:
        total = sum(
            services.evaluation_rerun_failed(evaluation=e, user=request.user) for e in queryset
        )
        self.message_user(request, f"{total} failed cell(s) queued again.", messages.SUCCESS)

    @admin.action(description="Cancel")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Evaluation]) -> None:
        done = sum(services.evaluation_cancel(evaluation=e, user=request.user) for e in queryset)
        self.message_user(request, f"Cancelled {done} evaluation(s).", messages.SUCCESS)


@admin.register(EvalExample)
class EvalExampleAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "evaluation", "line_number", "prompt_tokens")
    list_filter = ("evaluation",)
    search_fields = ("reference", "evaluation__name")


@admin.register(EvalOutput)
class EvalOutputAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "evaluation",
        "column",
        "example",
        "status",
        "latency_ms",
        "completion_tokens",
        "judge_score",
        "completed_at",
    )
    list_filter = ("status", "evaluation")
    search_fields = ("content", "error", "column__model_name", "evaluation__name")
    list_select_related = ("evaluation", "column", "example")
    actions = ("rerun_failed",)

    @admin.action(description="Re-run these cells if they failed")
    def rerun_failed(self, request: HttpRequest, queryset: QuerySet[EvalOutput]) -> None:
        failed = queryset.exclude(status=EvalOutput.Status.PENDING)
        by_evaluation: dict[int, list[int]] = {}
        for pk, evaluation_id in failed.values_list("pk", "evaluation_id"):
            by_evaluation.setdefault(evaluation_id, []).append(pk)
        total = sum(
            services.evaluation_rerun_failed(evaluation=e, user=request.user, output_ids=ids)
            for e, ids in (
                (Evaluation.objects.get(pk=pk), ids) for pk, ids in by_evaluation.items()
            )
        )
        self.message_user(request, f"{total} failed cell(s) queued again.", messages.SUCCESS)

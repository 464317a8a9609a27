"""Evaluating base model vs checkpoints vs final model of a sandbox run, over real HTTP: the
sandbox's fine-tuned models recall trained replies more faithfully as training goes on, so
exact match rises from the base model through the checkpoints to the final model."""

from __future__ import annotations

import itertools
import time

import pytest

from evals import selectors
from evals.choices import base_choice, run_choices
from evals.models import EvalOutput, Evaluation
from evals.running import evaluation_step
from evals.services import (
    EvaluationError,
    EvaluationRequest,
    evaluation_create,
    evaluation_rerun_failed,
)
from tests.conftest import LiveRequests, Sandbox
from tests.evals.conftest import Trained
from tests.permissions import client_for

pytestmark = pytest.mark.django_db(transaction=True)

EXACT = {"kind": "exact_match", "options": {}}
F1 = {"kind": "token_f1", "options": {}}


def run_to_end(evaluation: Evaluation, limit: int = 20) -> Evaluation:
    for _ in range(limit):
        if evaluation_step(evaluation_id=evaluation.pk, budget=None).state == "done":
            break
    evaluation.refresh_from_db()
    return evaluation


def create(trained: Trained, keys: list[str], **kwargs) -> Evaluation:  # type: ignore[no-untyped-def]
    kwargs.setdefault("graders", [EXACT, F1])
    return evaluation_create(
        request=EvaluationRequest(name="e", dataset=trained.dataset, model_keys=keys, **kwargs),
        user=None,
        enqueue=False,
    )


def test_fine_tuned_models_beat_the_base_model_and_improve_over_checkpoints(
    trained: Trained,
) -> None:
    choices = run_choices(trained.job)
    kinds = [c.kind for c in choices]
    assert kinds == ["base", "checkpoint", "checkpoint", "checkpoint", "fine_tuned"]
    steps = [c.step for c in choices[1:4]]
    assert steps == sorted(steps) and steps[-1] == trained.job.total_steps == 36

    evaluation = create(trained, [c.key for c in choices], seed=1)
    assert (evaluation.cells_total, evaluation.cells_done) == (12 * 5, 0)
    assert evaluation.estimated_prompt_tokens > 0
    assert evaluation.estimated_cost is not None and evaluation.estimated_cost > 0

    evaluation = run_to_end(evaluation)
    assert evaluation.status == "succeeded" and evaluation.finished_at
    assert (evaluation.cells_done, evaluation.cells_failed) == (60, 0)
    outputs = EvalOutput.objects.filter(evaluation=evaluation)
    assert outputs.filter(status="succeeded").count() == 60
    assert not outputs.filter(latency_ms__isnull=True).exists()
    assert not outputs.filter(prompt_tokens__isnull=True).exists()

    summary = selectors.summary(evaluation)
    exact = [c.scores["exact_match"].mean for c in summary.columns]
    f1 = [c.scores["token_f1"].mean for c in summary.columns]
    base, *checkpoints, final = exact
    # The sandbox is deterministic for a seeded run: these are the numbers it gives.
    assert exact == [0.0, 0.75, 1.0, 1.0, 1.0]
    assert base == 0.0  # a base model never produces the trained replies
    assert final == 1.0  # the final model recalls every trained reply
    assert all(c > base for c in checkpoints[1:])
    # Monotone-ish: each checkpoint at least as good as the one before, within one example.
    assert all(b >= a - 1 / 12 for a, b in itertools.pairwise(exact[1:]))
    assert checkpoints[0] < final
    assert f1[0] < min(f1[1:]) and f1[-1] == 1.0
    # The base column is the baseline: every fine-tuned column wins on some rows, loses none.
    final_column = summary.columns[-1]
    assert final_column.win is not None
    assert (final_column.win.wins, final_column.win.losses) == (12, 0)
    assert final_column.win.rate == 1.0
    # 12 examples: 0.75 and the three 1.0 columns overlap within their 95% intervals, so
    # none is "best" and those four are tied; the base model is clearly below them.
    assert not any("exact_match" in c.best for c in summary.columns)
    assert [("exact_match" in c.tied) for c in summary.columns] == [False, True, True, True, True]
    assert "compares the grader “Exact match” row by row" in summary.win_basis
    assert summary.cost is not None and summary.prompt_tokens > 0


def test_provider_errors_fail_cells_not_the_evaluation(trained: Trained, sdk) -> None:  # type: ignore[no-untyped-def]
    choices = run_choices(trained.job)
    keys = [choices[0].key, choices[-1].key]
    evaluation = create(trained, keys)
    # The fine-tuned model is deleted at the provider after the evaluation was set up.
    assert sdk.models.delete(trained.job.fine_tuned_model).deleted
    evaluation = run_to_end(evaluation)
    # Finished, but not "Succeeded": half its cells have no answer.
    assert evaluation.status == "partial"
    assert evaluation.get_status_display() == "Finished with failed cells"
    assert (evaluation.cells_done, evaluation.cells_failed) == (24, 12)
    html = client_for("viewer").get(f"/evaluations/{evaluation.pk}/").content.decode()
    assert ">Finished with failed cells</span>" in html
    assert (
        "12 of 24 cells failed (no answer): scores and win rates cover answered cells only." in html
    )
    failed = EvalOutput.objects.filter(evaluation=evaluation, status="failed")
    assert set(failed.values_list("column__position", flat=True)) == {1}
    assert all("404" in o.error and o.attempts == 1 for o in failed)  # a 4xx is not retried
    summary = selectors.summary(evaluation)
    assert summary.columns[1].failed == 12 and summary.columns[1].scores["exact_match"] is None
    assert summary.columns[0].done == 12


def test_transient_failures_are_retried_in_a_later_step(
    settings, sandbox: Sandbox, trained: Trained
) -> None:  # type: ignore[no-untyped-def]
    settings.PROVIDER_MAX_RETRIES = 0
    settings.EVAL_MAX_ATTEMPTS = 3
    choices = run_choices(trained.job)
    evaluation = create(trained, [choices[-1].key])
    sandbox.control("faults", {"kinds": ["503"], "path": "chat/completions", "count": 5})
    first = evaluation_step(evaluation_id=evaluation.pk, budget=None)
    assert first.state == "retry"
    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.cells_done, evaluation.cells_failed) == ("running", 7, 0)
    waiting = EvalOutput.objects.filter(evaluation=evaluation, status="pending")
    assert waiting.count() == 5 and all("503" in o.error for o in waiting)
    evaluation = run_to_end(evaluation)
    assert (evaluation.status, evaluation.cells_done, evaluation.cells_failed) == (
        "succeeded",
        12,
        0,
    )
    assert selectors.summary(evaluation).columns[0].scores["exact_match"].mean == 1.0


def test_cells_out_of_tries_fail_and_can_be_run_again(
    settings, sandbox: Sandbox, trained: Trained
) -> None:  # type: ignore[no-untyped-def]
    settings.PROVIDER_MAX_RETRIES = 0
    settings.EVAL_MAX_ATTEMPTS = 1
    choices = run_choices(trained.job)
    evaluation = create(trained, [choices[-1].key])
    sandbox.control("faults", {"kinds": ["500"], "path": "chat/completions", "count": 3})
    evaluation = run_to_end(evaluation)
    assert (evaluation.status, evaluation.cells_failed) == ("partial", 3)
    assert evaluation_rerun_failed(evaluation=evaluation, user=None) == 3
    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.cells_done, evaluation.cells_failed) == ("queued", 9, 0)
    evaluation = run_to_end(evaluation)
    assert (evaluation.status, evaluation.cells_done, evaluation.cells_failed) == (
        "succeeded",
        12,
        0,
    )


def test_llm_judge_scores_and_pairwise_against_the_baseline(trained: Trained) -> None:
    choices = run_choices(trained.job)
    base, final = choices[0], choices[-1]
    evaluation = create(
        trained, [base.key, final.key], graders=[EXACT], judge_key=base.key, judge_pairwise=True
    )
    assert evaluation.judge_total == 12 * 2 + 12
    evaluation = run_to_end(evaluation)
    assert evaluation.status == "succeeded" and evaluation.judge_done == evaluation.judge_total
    finals = EvalOutput.objects.filter(evaluation=evaluation, column__position=1)
    # The final model's answers equal the references: the judge gives them 10/10 and prefers
    # them to the base model's every time.
    assert {o.judge_reply for o in finals} == {"Score: 10"}
    assert {o.judge_score for o in finals} == {1.0}
    assert {o.pairwise_reply for o in finals} == {"A"}
    bases = EvalOutput.objects.filter(evaluation=evaluation, column__position=0)
    assert all(o.judge_score is not None and o.judge_score < 0.5 for o in bases)
    assert all(o.pairwise_reply == "" for o in bases)  # the baseline is not compared with itself
    summary = selectors.summary(evaluation)
    assert summary.columns[1].scores["judge"].mean == 1.0
    assert summary.columns[1].pairwise.rate == 1.0 and summary.columns[1].pairwise.wins == 12
    # With a pairwise judge, its verdicts (not the grader) are the win rate, and the page says so.
    assert summary.columns[1].win == summary.columns[1].pairwise
    assert "the LLM judge's pairwise verdict" in summary.win_basis
    html = client_for("viewer").get(f"/evaluations/{evaluation.pk}/").content.decode()
    assert "Win rate vs baseline is the LLM judge&#x27;s pairwise verdict" in html


def test_requests_that_cannot_be_evaluated_are_refused(
    trained: Trained, sandbox_connection, make_dataset
) -> None:  # type: ignore[no-untyped-def]
    base = run_choices(trained.job)[0].key
    # A base model the form does not offer (not in the catalog, no run trained from it).
    with pytest.raises(EvaluationError, match="cannot be called"):
        create(trained, [base_choice(sandbox_connection, "made-up-model").key])
    with pytest.raises(EvaluationError, match="at most 8"):
        create(trained, [f"{base}{i}" for i in range(9)])
    with pytest.raises(EvaluationError, match="once"):
        create(trained, [base, base])
    with pytest.raises(EvaluationError, match="cannot be called"):
        create(trained, ["ft:00000000-0000-0000-0000-000000000000"])
    with pytest.raises(EvaluationError, match="Regex"):
        create(trained, [base], graders=[{"kind": "regex", "options": {"pattern": "("}}])
    no_reference = make_dataset(
        [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "?"}]}] * 12,
        name="no-reference",
    )  # fmt: skip
    with pytest.raises(EvaluationError, match="no example ending with an assistant reply"):
        evaluation_create(
            request=EvaluationRequest(name="x", dataset=no_reference, model_keys=[base], graders=[EXACT]),
            user=None, enqueue=False,
        )  # fmt: skip
    assert not Evaluation.objects.exists()


@pytest.mark.parametrize("concurrency", [1, 3])
def test_requests_in_flight_per_connection_are_bounded(
    settings, sandbox: Sandbox, trained: Trained, concurrency: int, live_requests: LiveRequests
) -> None:  # type: ignore[no-untyped-def]
    settings.PROVIDER_MAX_RETRIES = 0
    settings.EVAL_CONCURRENCY_PER_CONNECTION = concurrency
    evaluation = create(trained, [run_choices(trained.job)[-1].key])
    # The first six requests are each held for a second (they fail as 504s and are asked again
    # in a later step), so those in flight together overlap: the sandbox sees at most N at once,
    # and exactly N when N are allowed. Held a second each, six take at least 6/N seconds.
    sandbox.control(
        "faults", {"kinds": ["hang"], "path": "chat/completions", "count": 6, "hang_seconds": 1}
    )
    started = time.monotonic()
    assert evaluation_step(evaluation_id=evaluation.pk, budget=None).state == "retry"
    elapsed = time.monotonic() - started
    assert live_requests.peak(sandbox.key, "/chat/completions") == concurrency
    assert elapsed >= 6 / concurrency
    assert (
        EvalOutput.objects.filter(
            evaluation=evaluation, status="pending", error__contains="504"
        ).count()
        == 6
    )
    assert run_to_end(evaluation).cells_done == 12

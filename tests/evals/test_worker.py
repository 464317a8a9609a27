"""Evaluations through the queue: a real worker runs one started from the page, and a worker
killed mid-run hands over to another that asks the provider for no answered cell again
(counted at the sandbox, which logs every chat completion it serves)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest

from evals.choices import run_choices
from evals.models import EvalOutput, Evaluation
from evals.services import EvaluationRequest, evaluation_create
from evals.tasks import evaluation_run_task
from sandbox.models import SandboxCompletion
from tests.conftest import Sandbox, wait_until
from tests.evals.conftest import Trained
from tests.evals.test_run import EXACT
from tests.permissions import client_for
from tests.sandbox.data import chat_examples

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def prompt_sha(messages: list[dict]) -> str:
    canonical = json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def finished(pk: int, timeout: float = 90) -> Evaluation:
    assert wait_until(
        lambda: Evaluation.objects.get(pk=pk).status in Evaluation.TERMINAL, timeout=timeout
    ), Evaluation.objects.filter(pk=pk).values().first()
    return Evaluation.objects.get(pk=pk)


def test_started_from_the_page_and_run_by_a_worker(trained: Trained, celery_worker) -> None:  # type: ignore[no-untyped-def]
    choices = run_choices(trained.job)
    member = client_for("member")
    response = member.post("/evaluations/new/", {
        "dataset": trained.dataset.pk, "models": [choices[0].key, choices[-1].key],
        "temperature": "0", "exact_match": "on", "exact_ignore_whitespace": "on",
        "action": "start",
    })  # fmt: skip
    assert response.status_code == 302
    evaluation = finished(Evaluation.objects.get().pk)
    assert evaluation.status == "succeeded" and evaluation.cells_done == 24
    status = member.get(f"/evaluations/{evaluation.pk}/status.json").json()
    assert status["percent"] == 100.0 and status["terminal"]
    html = member.get(f"/evaluations/{evaluation.pk}/").content.decode()
    assert 'data-metric="exact_match" data-mean="1.0"' in html
    # Every cell was asked for exactly once (other tests' leftovers may call other models).
    models = [c.model_name for c in evaluation.columns.all()]
    served = SandboxCompletion.objects.filter(status_code=200, model__in=models)
    assert served.count() == 24
    assert set(served.values_list("prompt_sha256", flat=True)) == {
        prompt_sha(m) for m in evaluation.examples.values_list("messages", flat=True)
    }


@pytest.mark.slow
def test_worker_killed_mid_run_requests_no_answered_cell_twice(
    sandbox: Sandbox, trained: Trained, make_dataset, spawn
) -> None:  # type: ignore[no-untyped-def]
    choices = run_choices(trained.job)
    dataset = make_dataset(chat_examples(120, seed=77), name="held-out")
    evaluation = evaluation_create(
        request=EvaluationRequest(
            name="kill", dataset=dataset, model_keys=[choices[0].key, choices[-1].key],
            graders=[EXACT],
        ),
        user=None, enqueue=False,
    )  # fmt: skip
    queues = "default,polling,validation,provider,doomed"
    env = {"CELERY_VISIBILITY_TIMEOUT": "2", "EVAL_CONCURRENCY_PER_CONNECTION": "1"}
    doomed = spawn("worker", "doomed", queues=queues, PROVIDER_READ_TIMEOUT="30", **env)
    evaluation_run_task.apply_async((evaluation.pk,), queue="doomed")
    assert wait_until(
        lambda: Evaluation.objects.get(pk=evaluation.pk).cells_done >= 30, timeout=60
    ), doomed.tail()
    # The next chat completion hangs; the worker is killed while it waits for it.
    sandbox.control(
        "faults", {"kinds": ["hang"], "count": 1, "hang_seconds": 20, "path": "chat/completions"}
    )
    columns = list(evaluation.columns.all())

    def hanging() -> bool:
        # Claimed as the request arrives (the completion log records it only once the hold
        # is over, when the worker would already be retrying).
        return sandbox.control("faults", method="GET")["data"][0]["injected"] == 1

    assert wait_until(hanging, timeout=30), doomed.tail()
    doomed.kill()  # the worker and its pool processes, at once
    answered = {
        (model, prompt_sha(messages))
        for model, messages in EvalOutput.objects.filter(
            evaluation=evaluation, status="succeeded"
        ).values_list("column__model_name", "example__messages")
    }
    interrupted = Evaluation.objects.get(pk=evaluation.pk)
    assert interrupted.status == "running" and 30 <= len(answered) < 240

    heir = spawn("worker", "heir", queues=queues, **env)
    # The unacknowledged task comes back once its visibility timeout passes; should the
    # broker not give it back (the dead worker may hold kombu's restore lock), the reaper on
    # beat sends the work again once its lease expires, as in production.
    spawn("beat", HEARTBEAT_INTERVAL="1")
    assert wait_until(
        lambda: Evaluation.objects.get(pk=evaluation.pk).status in Evaluation.TERMINAL,
        timeout=180,
    ), (Evaluation.objects.filter(pk=evaluation.pk).values().first(), heir.tail())
    evaluation.refresh_from_db()
    assert evaluation.status == "succeeded", heir.tail()
    assert (evaluation.cells_done, evaluation.cells_failed) == (240, 0)
    ours = SandboxCompletion.objects.filter(model__in=[c.model_name for c in columns])
    served = Counter(ours.filter(status_code=200).values_list("model", "prompt_sha256"))
    # Cells answered before the kill were not asked again; every cell got exactly one answer.
    assert all(served[cell] == 1 for cell in answered)
    assert sum(served.values()) == 240 and set(served.values()) == {1}
    hung = ours.exclude(status_code=200)
    assert wait_until(hung.exists, timeout=60)  # logged once the 20 s hold is over
    assert hung.count() == 1 and served[(hung[0].model, hung[0].prompt_sha256)] == 1

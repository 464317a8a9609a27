"""A whole worker killed in the middle of an evaluation: the reaper on beat sends the
evaluation again once it sees the worker's session gone (the visibility timeout is far
away), and no answered cell is asked for again."""

from __future__ import annotations

from collections import Counter

import pytest

from evals.choices import run_choices
from evals.models import EvalOutput, Evaluation
from evals.services import EvaluationRequest, evaluation_create
from sandbox.models import SandboxCompletion
from tests.conftest import APP_QUEUES, Sandbox, wait_until
from tests.evals.conftest import Trained
from tests.evals.test_run import EXACT
from tests.evals.test_worker import prompt_sha
from tests.sandbox.data import chat_examples

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]


def test_worker_killed_mid_evaluation_reaper_sends_it_again(
    sandbox: Sandbox, trained: Trained, make_dataset, spawn
) -> None:  # type: ignore[no-untyped-def]
    choices = run_choices(trained.job)
    dataset = make_dataset(chat_examples(20, seed=78), name="held-out")
    env = {"EVAL_CONCURRENCY_PER_CONNECTION": "1"}
    doomed = spawn("worker", "doomed", queues="provider", PROVIDER_READ_TIMEOUT="30", **env)
    evaluation = evaluation_create(
        request=EvaluationRequest(
            name="reaped", dataset=dataset, model_keys=[choices[0].key, choices[-1].key],
            graders=[EXACT],
        ),
        user=None,
    )  # fmt: skip
    assert wait_until(
        lambda: Evaluation.objects.get(pk=evaluation.pk).cells_done >= 10, timeout=60
    ), doomed.tail()
    sandbox.control(
        "faults", {"kinds": ["hang"], "count": 1, "hang_seconds": 10, "path": "chat/completions"}
    )
    models = [c.model_name for c in evaluation.columns.all()]
    ours = SandboxCompletion.objects.filter(model__in=models)

    def hanging() -> bool:
        # Claimed as the request arrives (the completion log records it only once the hold
        # is over, when the worker would already be retrying).
        return sandbox.control("faults", method="GET")["data"][0]["injected"] == 1

    assert wait_until(hanging, timeout=30), doomed.tail()
    doomed.kill()
    answered = {
        (model, prompt_sha(messages))
        for model, messages in EvalOutput.objects.filter(
            evaluation=evaluation, status="succeeded"
        ).values_list("column__model_name", "example__messages")
    }
    assert Evaluation.objects.get(pk=evaluation.pk).lease_owner

    heir = spawn("worker", "heir", queues=",".join(APP_QUEUES), **env)
    spawn("beat", HEARTBEAT_INTERVAL="1")
    assert wait_until(
        lambda: Evaluation.objects.get(pk=evaluation.pk).status in Evaluation.TERMINAL,
        timeout=90,
    ), (Evaluation.objects.filter(pk=evaluation.pk).values().first(), heir.tail())
    evaluation.refresh_from_db()
    assert evaluation.status == "succeeded" and evaluation.cells_done == 40
    assert evaluation.lease_owner == ""
    served = Counter(ours.filter(status_code=200).values_list("model", "prompt_sha256"))
    assert all(served[cell] == 1 for cell in answered)
    assert sum(served.values()) == 40 and set(served.values()) == {1}

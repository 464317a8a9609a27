from __future__ import annotations

import io
from dataclasses import dataclass

import openai
import pytest

from datasets.models import Dataset
from jobs import history
from jobs.models import Job, ProviderConnection
from jobs.services import connection_save
from tests.history.conftest import _catalog  # noqa: F401 - the same autouse fixture
from tests.history.helpers import settle_datasets
from tests.jobs.conftest import make_dataset  # noqa: F401 - fixture
from tests.sandbox.conftest import make_client
from tests.sandbox.data import chat_examples, jsonl


@pytest.fixture
def sdk(sandbox_url: str, sandbox_key: str) -> openai.OpenAI:
    return make_client(sandbox_url, key=sandbox_key)


@pytest.fixture
def sandbox_connection(sandbox_url: str, sandbox_key: str) -> ProviderConnection:
    return connection_save(
        name="Sandbox", kind="sandbox", base_url=sandbox_url, api_key=sandbox_key
    )


@dataclass
class Trained:
    job: Job
    dataset: Dataset  # what it was trained on: the sandbox's models recall these replies
    examples: list[dict]


def train(
    sdk: openai.OpenAI, connection: ProviderConnection, n: int = 12, epochs: int = 3
) -> Trained:
    """A finished sandbox run (made at the provider, imported like history: no worker needed)
    with its training file as a valid dataset and one checkpoint per epoch."""
    examples = chat_examples(n, seed=31)
    file_id = sdk.files.create(
        file=("eval-train.jsonl", io.BytesIO(jsonl(examples))), purpose="fine-tune"
    ).id
    job_id = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=file_id, hyperparameters={"n_epochs": epochs},
        suffix="evals", seed=5,
    ).id  # fmt: skip
    assert sdk.fine_tuning.jobs.retrieve(job_id).status == "succeeded"
    run = history.import_now(connection=connection, user=None)
    assert run.status == "succeeded", run.last_error
    settle_datasets()
    job = Job.objects.select_related("training_dataset").get(provider_job_id=job_id)
    assert job.training_dataset is not None and job.training_dataset.status == "valid"
    return Trained(job, job.training_dataset, examples)


@pytest.fixture
def trained(sdk: openai.OpenAI, sandbox_connection: ProviderConnection) -> Trained:
    return train(sdk, sandbox_connection)


XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def finished(trained: Trained):  # type: ignore[no-untyped-def]
    """A finished evaluation of the trained run: base, its three checkpoints and final model,
    graded by exact match and token F1 (its name carries an XSS probe)."""
    from evals.choices import run_choices
    from evals.services import EvaluationRequest, evaluation_create
    from tests.evals.test_run import EXACT, F1, run_to_end

    keys = [c.key for c in run_choices(trained.job)]
    evaluation = evaluation_create(
        request=EvaluationRequest(
            name=f"checkpoints {XSS}", dataset=trained.dataset, model_keys=keys, graders=[EXACT, F1]
        ),
        user=None,
        enqueue=False,
    )
    return run_to_end(evaluation)

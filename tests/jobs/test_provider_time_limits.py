"""A provider that hangs holds a worker only until the provider tasks' own soft time limit
(PROVIDER_TASK_SOFT_TIME_LIMIT, far below the global one), and the stopped launch is retried
like after a timeout: it ends launched, with one file and one job at the provider."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import settings

from datasets.models import Dataset
from jobs import tasks
from jobs.connections import provider_for_connection
from jobs.models import Job, ProviderConnection
from jobs.services import LaunchRequest, job_launch
from tests.conftest import wait_until
from tests.jobs.test_launch_once import UNSETTLED, marked_jobs
from tests.jobs.test_views import _catalog  # noqa: F401 - autouse: job_launch reads the catalog
from tests.permissions import make_user
from tests.sandbox.data import chat_examples
from tests.support.proxy import FaultProxy, Rule


def test_provider_tasks_have_their_own_shorter_limits() -> None:
    provider_tasks = [
        tasks.job_launch_task,
        tasks.job_sync_task,
        tasks.import_run_task,
        tasks.job_control_task,
    ]
    from evals.tasks import evaluation_run_task

    for task in [*provider_tasks, evaluation_run_task]:
        assert task.soft_time_limit == settings.PROVIDER_TASK_SOFT_TIME_LIMIT, task.name
        assert task.time_limit == settings.PROVIDER_TASK_TIME_LIMIT, task.name
    assert settings.PROVIDER_TASK_SOFT_TIME_LIMIT < settings.PROVIDER_TASK_TIME_LIMIT
    assert settings.PROVIDER_TASK_TIME_LIMIT < settings.CELERY_TASK_SOFT_TIME_LIMIT
    # Validations and the heartbeat keep the global limits.
    from datasets.tasks import dataset_validate

    assert dataset_validate.soft_time_limit == settings.CELERY_TASK_SOFT_TIME_LIMIT


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.parametrize("held", [r"/fine_tuning/jobs$", r"/files$"], ids=["create", "upload"])
def test_a_launch_stopped_by_the_soft_limit_is_retried_and_duplicates_nothing(
    sandbox_connection: ProviderConnection,
    proxied_connection: ProviderConnection,
    fault_proxy: FaultProxy,
    make_dataset: Callable[..., Dataset],
    spawn,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    held: str,
) -> None:
    """The proxy holds the provider's answer (after it acted) far past a 2 s soft limit; the
    worker's read timeout is longer still, so only the time limit can end the wait."""
    # Held longer than the wait below: only the soft limit lets the launch finish in time.
    fault_proxy.add(Rule(action="delay", seconds=300, method="POST", path=held, count=1))
    # The sender writes the task's limits into the message (the worker obeys those), so both
    # this process and the worker run with a 2 s soft limit, as one environment would give.
    monkeypatch.setattr(tasks.job_launch_task, "soft_time_limit", 2)
    monkeypatch.setattr(tasks.job_launch_task, "time_limit", 30)
    # Celery caches a task's send options on first use (an earlier test may have sent one).
    monkeypatch.setattr(tasks.job_launch_task, "_exec_options", None)
    worker = spawn(
        "worker",
        "limited",
        queues="provider",
        PROVIDER_TASK_SOFT_TIME_LIMIT="2",
        PROVIDER_TASK_TIME_LIMIT="30",
        PROVIDER_READ_TIMEOUT="600",
    )
    dataset = make_dataset(chat_examples(12))
    job = job_launch(
        request=LaunchRequest(
            connection=proxied_connection, base_model="gpt-4o-mini", training_dataset=dataset
        ),
        user=make_user("member", username="limited"),
    )
    settled = wait_until(
        # The lease is let go just after the status is written: wait for both.
        lambda: (
            Job.objects.filter(pk=job.pk, lease_owner="").exclude(status__in=UNSETTLED).exists()
        ),
        timeout=60,
    )
    assert settled, (
        Job.objects.filter(pk=job.pk).values("status", "launch_error", "poll_failures").first(),
        fault_proxy.exchanges,
        worker.tail()[-3000:],
    )
    job = Job.objects.get(pk=job.pk)
    assert job.status != Job.Status.LAUNCH_FAILED, job.launch_error
    assert job.poll_failures == 0 and job.lease_owner == ""
    direct = provider_for_connection(sandbox_connection)
    assert marked_jobs(direct) == {str(job.pk): [job.provider_job_id]}
    assert [f.id for f in direct.list_files(purpose="fine-tune", limit=100).data] == [
        job.training_file_id
    ]
    assert fault_proxy.rules[0].fired == 1
    assert len(fault_proxy.handled("POST", held)) == 1  # looked up on the retry, not resent

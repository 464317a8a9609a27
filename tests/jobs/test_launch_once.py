"""A launch makes exactly one provider job, and only ever adopts its own.

The sandbox's faults fire before a job exists; a loopback proxy (tests/support/proxy.py)
loses the answer after the sandbox created the job, or plays a provider that ignores the
metadata filter of the launch's lookup."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from datasets.models import Dataset
from jobs.connections import provider_for_connection
from jobs.models import Job, ProviderConnection
from jobs.providers import JobSpec, Provider
from jobs.services import METADATA_KEY, LaunchRequest, job_launch, job_launch_run
from tests.conftest import wait_until
from tests.jobs.test_views import _catalog  # noqa: F401 - autouse: job_launch reads the catalog
from tests.permissions import make_user
from tests.sandbox.data import chat_examples
from tests.support.proxy import FaultProxy, Rule, metadata_value

pytestmark = pytest.mark.django_db(transaction=True)

CREATE = r"/fine_tuning/jobs$"
UNSETTLED = (Job.Status.PENDING, Job.Status.LAUNCHING)


def marked_jobs(provider: Provider) -> dict[str, list[str]]:
    """``tuneboard_job_id`` → ids of the provider jobs carrying it, straight from the sandbox."""
    jobs: dict[str, list[str]] = {}
    for info in provider.list_jobs(limit=100).data:
        jobs.setdefault((info.metadata or {}).get(METADATA_KEY, ""), []).append(info.id)
    return jobs


def new_job(connection: ProviderConnection, dataset: Dataset) -> Job:
    # As job_launch records it, without queueing the task: these tests run the launch here.
    return Job.objects.create(
        connection=connection, base_model="gpt-4o-mini", training_dataset=dataset
    )


@pytest.mark.parametrize(
    "fault",
    [
        Rule(action="drop", method="POST", path=CREATE, count=1),
        Rule(action="answer_after", status=500, method="POST", path=CREATE, count=1),
        Rule(action="delay", seconds=30, method="POST", path=CREATE, count=1),
    ],
    ids=["dropped", "5xx-after-acting", "read-timeout"],
)
def test_a_lost_create_answer_makes_one_provider_job(
    settings,  # type: ignore[no-untyped-def]
    sandbox_connection: ProviderConnection,
    proxied_connection: ProviderConnection,
    fault_proxy: FaultProxy,
    make_dataset: Callable[..., Dataset],
    fault: Rule,
) -> None:
    settings.PROVIDER_READ_TIMEOUT = 1  # the held answer times out at once
    job = new_job(proxied_connection, make_dataset(chat_examples(12)))
    fault_proxy.add(fault)
    job = job_launch_run(job_id=job.pk)
    assert fault.fired == 1
    theirs = marked_jobs(provider_for_connection(sandbox_connection))
    assert theirs == {str(job.pk): [job.provider_job_id]}, (job.status, job.launch_error)
    assert job.status not in (*UNSETTLED, Job.Status.LAUNCH_FAILED)
    assert len(fault_proxy.handled("POST", CREATE)) == 1


def test_a_launch_never_adopts_a_strangers_job(
    sandbox_connection: ProviderConnection,
    proxied_connection: ProviderConnection,
    fault_proxy: FaultProxy,
    make_dataset: Callable[..., Dataset],
) -> None:
    """Through a provider that ignores the lookup's metadata filter, the lookup lists jobs
    that are not the launch's: one nobody here knows, then one another launch made."""
    direct = provider_for_connection(sandbox_connection)
    dataset = make_dataset(chat_examples(12))
    stranger = direct.create_job(
        JobSpec(
            model="gpt-4o-mini",
            training_file=direct.upload_file(
                filename="s.jsonl", stream=dataset.file.open("rb"), size=dataset.size
            ).id,
            metadata={"team": "elsewhere"},
        )
    ).id
    fault_proxy.add(Rule(action="rewrite", drop_params=r"^metadata\[", method="GET", path=CREATE))
    first = job_launch_run(job_id=new_job(proxied_connection, dataset).pk)
    # The newest listed job is now `first`'s, which Tuneboard already records.
    second = job_launch_run(job_id=new_job(proxied_connection, dataset).pk)
    theirs = marked_jobs(direct)
    assert theirs == {
        "": [stranger],
        str(first.pk): [first.provider_job_id],
        str(second.pk): [second.provider_job_id],
    }
    for job in (first, second):
        assert job.status not in (*UNSETTLED, Job.Status.LAUNCH_FAILED), job.launch_error
        assert job.training_file_id  # its own upload, not the stranger's file


def test_a_job_of_ours_already_recorded_elsewhere_ends_the_launch_cleanly(
    sandbox_connection: ProviderConnection,
    make_dataset: Callable[..., Dataset],
) -> None:
    """The provider lists a job carrying this launch's id that another row already records
    (imported meanwhile, say): the launch neither dies on the unique constraint nor stays
    "launching", and creates no second job."""
    provider = provider_for_connection(sandbox_connection)
    dataset = make_dataset(chat_examples(12))
    job = new_job(sandbox_connection, dataset)
    with dataset.file.open("rb") as stream:
        training = provider.upload_file(filename="t.jsonl", stream=stream, size=dataset.size).id
    created = provider.create_job(
        JobSpec(model="gpt-4o-mini", training_file=training, metadata={METADATA_KEY: str(job.pk)})
    )
    other = Job.objects.create(
        connection=sandbox_connection, provider_job_id=created.id, origin=Job.Origin.IMPORTED,
        base_model="gpt-4o-mini", status="queued",
    )  # fmt: skip
    job = job_launch_run(job_id=job.pk)
    assert job.status == Job.Status.LAUNCH_FAILED and job.provider_job_id is None
    assert created.id in job.launch_error and str(other.pk)[:8] in job.launch_error
    assert marked_jobs(provider) == {str(job.pk): [created.id]}


@pytest.mark.worker
def test_eight_launches_through_a_proxy_losing_each_first_create_answer(
    sandbox_connection: ProviderConnection,
    proxied_connection: ProviderConnection,
    fault_proxy: FaultProxy,
    make_dataset: Callable[..., Dataset],
    celery_worker: str,
) -> None:
    """The issue's reproduction, with a real worker: each launch's first successful create
    answer is thrown away after the sandbox made the job (8 launches made 16 jobs)."""
    fault_proxy.add(
        Rule(action="drop", method="POST", path=CREATE, once_per=metadata_value(METADATA_KEY))
    )
    dataset = make_dataset(chat_examples(12))
    user = make_user("member", username="launcher")
    jobs = [
        job_launch(
            request=LaunchRequest(
                connection=proxied_connection, base_model="gpt-4o-mini", training_dataset=dataset
            ),
            user=user,
        )
        for _ in range(8)
    ]
    assert wait_until(lambda: not Job.objects.filter(status__in=UNSETTLED).exists(), timeout=90), (
        list(Job.objects.values_list("status", "launch_error"))
    )
    theirs = marked_jobs(provider_for_connection(sandbox_connection))
    assert theirs == {str(job.pk): [Job.objects.get(pk=job.pk).provider_job_id] for job in jobs}, (
        list(Job.objects.values_list("status", "launch_error"))
    )
    assert len(fault_proxy.handled("POST", CREATE)) == 8
    assert {e.action for e in fault_proxy.handled("POST", CREATE)} == {"drop"}

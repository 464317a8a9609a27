"""A launch makes exactly one provider job, and only ever adopts its own.

The sandbox's faults fire before a job exists; a loopback proxy (tests/support/proxy.py)
loses the answer after the sandbox created the job, or plays a provider that ignores the
metadata filter of the launch's lookup."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from datasets.models import Dataset
from jobs.connections import provider_for_connection
from jobs.models import Job, ProviderConnection, ProviderFile
from jobs.providers import JobSpec, Provider
from jobs.providers.uploads import content_filename
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


# --- uploads: one file per dataset, whatever happens to the upload's answer ----------------------

FILES = r"/files$"


def files_named(provider: Provider, name: str) -> list[tuple[str, int | None]]:
    """(id, bytes) of the files called ``name`` at the sandbox, newest first."""
    return [(f.id, f.bytes) for f in provider.list_files(limit=100).data if f.filename == name]


def test_a_lost_upload_answer_makes_one_provider_file(
    sandbox_connection: ProviderConnection,
    proxied_connection: ProviderConnection,
    fault_proxy: FaultProxy,
    make_dataset: Callable[..., Dataset],
) -> None:
    """The proxy drops the first successful ``POST /files`` answer after the sandbox stored
    the file: the launch finds it by its content-marked name and uploads nothing more."""
    dataset = make_dataset(chat_examples(12))
    fault = fault_proxy.add(Rule(action="drop", method="POST", path=FILES, count=1))
    job = job_launch_run(job_id=new_job(proxied_connection, dataset).pk)
    assert fault.fired == 1
    assert job.status not in (*UNSETTLED, Job.Status.LAUNCH_FAILED), job.launch_error
    direct = provider_for_connection(sandbox_connection)
    stored = direct.list_files(purpose="fine-tune", limit=100).data
    assert [(f.id, f.filename, f.bytes) for f in stored] == [
        (
            job.training_file_id,
            content_filename(dataset.download_name, dataset.sha256),
            dataset.size,
        )
    ]
    assert ProviderFile.objects.get(connection=proxied_connection).provider_file_id == (
        job.training_file_id
    )
    assert len(fault_proxy.handled("POST", FILES)) == 1


def test_a_lost_upload_never_adopts_a_file_of_another_name_or_size(
    sandbox_connection: ProviderConnection,
    proxied_connection: ProviderConnection,
    fault_proxy: FaultProxy,
    make_dataset: Callable[..., Dataset],
) -> None:
    """The first ``POST /files`` fails with a 503 the provider did not act on (the client
    cannot tell), and the provider ignores the listing's filters and cursor: the lookup lists
    a file of the very name with other bytes and one of the same size with another name. The
    launch takes neither and uploads its file again."""
    dataset = make_dataset(chat_examples(12))
    name = content_filename(dataset.download_name, dataset.sha256)
    direct = provider_for_connection(sandbox_connection)
    with dataset.file.open("rb") as stream:
        content = stream.read()
    strangers = [
        direct.upload_file(filename=name, stream=io.BytesIO(content[:-1]), size=len(content) - 1).id,
        direct.upload_file(filename="other.jsonl", stream=io.BytesIO(content), size=len(content)).id,
    ]  # fmt: skip
    fault_proxy.add(Rule(action="refuse", status=503, method="POST", path=FILES, count=1))
    fault_proxy.add(
        Rule(action="rewrite", drop_params=r"^(purpose|order|after)$", method="GET", path=FILES)
    )
    job = job_launch_run(job_id=new_job(proxied_connection, dataset).pk)
    assert job.status not in (*UNSETTLED, Job.Status.LAUNCH_FAILED), job.launch_error
    assert job.training_file_id not in strangers
    ours = [file_id for file_id, size in files_named(direct, name) if size == dataset.size]
    assert ours == [job.training_file_id]
    assert len(fault_proxy.handled("POST", FILES)) == 2  # refused, then stored
    assert len(fault_proxy.handled("GET", FILES)) == 2  # before the upload, and after the 503

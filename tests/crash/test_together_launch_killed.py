"""A Together launch whose worker is killed right after Together made the job (its answer held
by a proxy until the worker is gone) is sent again by the reaper, and the new attempt finds
the job by the marker in its suffix instead of creating a second one: Together jobs carry no
metadata."""

from __future__ import annotations

import pytest

from jobs.catalogs import catalog_refresh
from jobs.connections import provider_for_connection
from jobs.models import Job
from jobs.services import connection_save
from tests.conftest import APP_QUEUES, wait_until
from tests.jobs.test_launch_and_poll import launched
from tests.sandbox.data import chat_examples
from tests.support.proxy import FaultProxy, Rule

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

QUEUES = ",".join((*APP_QUEUES, "doomed"))
CREATE = r"/fine-tunes$"


def test_worker_killed_after_the_together_create_leaves_one_job(
    live_server, sandbox_url: str, sandbox_key: str, make_dataset, spawn
) -> None:  # type: ignore[no-untyped-def]
    dataset = make_dataset(chat_examples(20))
    with FaultProxy(live_server.url) as proxy:
        connection = connection_save(
            name="Together", kind="together", api_key=sandbox_key,
            base_url=proxy.url + "/sandbox/together/v1",
        )  # fmt: skip
        catalog_refresh(connection_id=connection.pk)
        # Together makes the job; its answer is held past the worker's life.
        proxy.add(Rule(action="delay", seconds=60, method="POST", path=CREATE, count=1))
        doomed = spawn("worker", "doomed", queues="provider", PROVIDER_READ_TIMEOUT="90")
        job = launched(
            connection, dataset, base_model="meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
        )
        assert wait_until(lambda: len(proxy.handled("POST", CREATE)) == 1, timeout=60), (
            doomed.tail()
        )
        doomed.kill()
        interrupted = Job.objects.get(pk=job.pk)
        assert interrupted.status == Job.Status.LAUNCHING and interrupted.provider_job_id is None

        heir = spawn("worker", "heir", queues=QUEUES)
        spawn("beat", HEARTBEAT_INTERVAL="1")
        assert wait_until(
            lambda: Job.objects.filter(
                pk=job.pk,
                provider_job_id__isnull=False,
                lease_owner="",
                lease_expires_at__isnull=True,
            ).exists(),
            timeout=90,
        ), (Job.objects.filter(pk=job.pk).values().first(), heir.tail())
        job.refresh_from_db()
        theirs = provider_for_connection(connection).list_jobs(limit=100).data
        assert [j.id for j in theirs] == [job.provider_job_id]  # one job, no duplicate
        assert len(proxy.handled("POST", CREATE)) == 1  # the heir looked it up, never created

"""The test suite's own plumbing: the shared worker (tests/conftest.py, SharedWorker) takes
tasks only in the tests that ask for it, and the broker is emptied between tests."""

from __future__ import annotations

import pytest

from config.celery import app
from core.models import TaskProbe
from core.services import probe_request
from tests.conftest import (
    APP_QUEUES,
    TEST_QUEUES,
    SharedWorker,
    broker_channel,
    purge_broker,
    queue_lengths,
    wait_until,
)
from tests.permissions import make_user

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def done(probe: TaskProbe) -> bool:
    return TaskProbe.objects.get(pk=probe.pk).completed_at is not None


def test_the_worker_takes_no_task_outside_the_tests_that_use_it(
    shared_worker: SharedWorker,
) -> None:
    user = make_user("member")
    # As after another test used it: a running worker, released.
    shared_worker.consume()
    shared_worker.release()
    assert shared_worker.alive()
    assert shared_worker.consumed_queues() == {shared_worker.private_queue}

    left = probe_request(user=user)  # enqueued on commit: autocommit commits at once
    # The worker has read the broker since (a marker sent after the probe came back done),
    # and the probe is still waiting in its queue, untouched.
    shared_worker.marker_round_trip()
    assert queue_lengths()["default"] == 1 and not done(left)

    # Asked for, the same process takes this test's tasks; released, none any more.
    shared_worker.consume()
    try:
        assert shared_worker.consumed_queues() == {shared_worker.private_queue, *APP_QUEUES}
        taken = probe_request(user=user)
        assert wait_until(lambda: done(taken), timeout=30)
        assert TaskProbe.objects.get(pk=taken.pk).worker == shared_worker.hostname
    finally:
        shared_worker.release()
    assert not done(left)  # the earlier one was dropped with the queue, never run
    assert queue_lengths() == dict.fromkeys(TEST_QUEUES, 0)


def test_purging_empties_every_queue_and_forgets_unacknowledged_deliveries() -> None:
    purge_broker()  # tests without a worker may have left tasks waiting
    for queue in TEST_QUEUES:
        app.send_task("core.tasks.probe_complete", args=(0,), queue=queue)
    assert queue_lengths() == dict.fromkeys(TEST_QUEUES, 1)
    conn, channel = broker_channel()
    with conn:
        # What a worker killed mid-task leaves behind (kombu's Redis transport).
        channel.client.hset(channel.unacked_key, "tag", "{}")
        channel.client.zadd(channel.unacked_index_key, {"tag": 1})
        purge_broker()
        assert not channel.client.exists(channel.unacked_key, channel.unacked_index_key)
    assert queue_lengths() == dict.fromkeys(TEST_QUEUES, 0)

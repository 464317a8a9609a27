"""A job create reaches the provider once, whatever happens to its answer; a lookup by our
metadata marker finds our job and only ours.

The sandbox's own faults fire before a job exists, so these tests put a loopback proxy
(tests/support/proxy.py) between the client and the sandbox that loses the answer after the
sandbox has acted."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable

import pytest

from jobs.providers import (
    JobSpec,
    OpenAICompatibleProvider,
    OutcomeUnknownError,
    TransientProviderError,
)
from tests.sandbox.data import chat_examples, jsonl
from tests.support.proxy import FaultProxy, Rule, metadata_value

pytestmark = pytest.mark.django_db(transaction=True)

MARKER = "tuneboard_job_id"
CREATE = r"/fine_tuning/jobs$"


def spec(training_file: str, marker: str | None) -> JobSpec:
    return JobSpec(
        model="gpt-4o-mini",
        training_file=training_file,
        metadata={MARKER: marker} if marker is not None else None,
    )


@pytest.fixture
def proxied(
    make_provider: Callable[..., OpenAICompatibleProvider], fault_proxy: FaultProxy
) -> OpenAICompatibleProvider:
    return make_provider(base_url=fault_proxy.url + "/sandbox/v1")


def marked_jobs(provider: OpenAICompatibleProvider) -> dict[str, list[str]]:
    """marker value → ids of the jobs carrying it, straight from the sandbox."""
    jobs: dict[str, list[str]] = {}
    for info in provider.list_jobs(limit=100).data:
        jobs.setdefault((info.metadata or {}).get(MARKER, ""), []).append(info.id)
    return jobs


@pytest.mark.parametrize(
    "fault",
    [
        Rule(action="drop", method="POST", path=CREATE, count=1),
        Rule(action="answer_after", status=502, method="POST", path=CREATE, count=1),
    ],
    ids=["dropped", "5xx-after-acting"],
)
def test_a_lost_create_answer_is_looked_up_not_repeated(
    provider: OpenAICompatibleProvider,
    proxied: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
    training_file: str,
    fault: Rule,
) -> None:
    fault_proxy.add(fault)
    info = proxied.create_job(spec(training_file, "launch-1"), marker=MARKER)
    assert fault.fired == 1
    assert marked_jobs(provider) == {"launch-1": [info.id]}
    assert len(fault_proxy.handled("POST", CREATE)) == 1  # one create, then a lookup
    assert len(fault_proxy.handled("GET", CREATE)) == 1


def test_a_read_timeout_after_the_create_is_looked_up(
    make_provider: Callable[..., OpenAICompatibleProvider],
    provider: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
    training_file: str,
) -> None:
    proxied = make_provider(base_url=fault_proxy.url + "/sandbox/v1", timeout_read=0.5)
    fault_proxy.add(Rule(action="delay", seconds=30, method="POST", path=CREATE, count=1))
    info = proxied.create_job(spec(training_file, "launch-2"), marker=MARKER)
    assert marked_jobs(provider) == {"launch-2": [info.id]}
    assert len(fault_proxy.handled("POST", CREATE)) == 1


def test_a_create_that_did_not_happen_is_sent_again_after_the_lookup(
    provider: OpenAICompatibleProvider,
    proxied: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
    training_file: str,
) -> None:
    # A 503 without forwarding: the provider did not act, but the client cannot know that.
    fault_proxy.add(Rule(action="refuse", status=503, method="POST", path=CREATE, count=2))
    info = proxied.create_job(spec(training_file, "launch-3"), marker=MARKER)
    assert marked_jobs(provider) == {"launch-3": [info.id]}
    assert len(fault_proxy.handled("POST", CREATE)) == 3
    assert len(fault_proxy.handled("GET", CREATE)) == 2  # looked up before each resend


def test_answers_that_say_not_done_are_retried_without_a_lookup(
    provider: OpenAICompatibleProvider,
    proxied: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
    training_file: str,
) -> None:
    fault_proxy.add(Rule(action="refuse", status=429, method="POST", path=CREATE, count=1))
    info = proxied.create_job(spec(training_file, "launch-4"), marker=MARKER)
    assert marked_jobs(provider) == {"launch-4": [info.id]}
    assert len(fault_proxy.handled("POST", CREATE)) == 2
    assert fault_proxy.handled("GET", CREATE) == []


def test_without_a_marker_an_unknown_outcome_is_reported_not_retried(
    provider: OpenAICompatibleProvider,
    proxied: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
    training_file: str,
) -> None:
    fault_proxy.add(Rule(action="drop", method="POST", path=CREATE, count=1))
    with pytest.raises(OutcomeUnknownError) as error:
        proxied.create_job(spec(training_file, None))
    assert isinstance(error.value, TransientProviderError)  # tasks retry it like any such error
    assert "may have acted" in str(error.value)
    assert len(fault_proxy.handled("POST", CREATE)) == 1
    assert sum(map(len, marked_jobs(provider).values())) == 1  # it was created, once


def test_a_create_that_cannot_connect_is_retried_as_usual(
    make_provider: Callable[..., OpenAICompatibleProvider],
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    offline = make_provider(base_url=f"http://127.0.0.1:{port}/v1", max_retries=2)
    with pytest.raises(TransientProviderError) as error:
        offline.create_job(spec("file-x", "launch-5"), marker=MARKER)
    assert not isinstance(error.value, OutcomeUnknownError)
    assert offline.request_count == 3  # nothing was sent, so sending again is safe


# --- the lookup -------------------------------------------------------------------------------


def test_the_lookup_matches_the_marker_itself(
    provider: OpenAICompatibleProvider,
    proxied: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
    training_file: str,
) -> None:
    """A provider that ignores the metadata filter lists strangers: none is taken for ours."""
    mine = provider.create_job(spec(training_file, "mine")).id
    for other in ("someone-else", None):
        provider.create_job(spec(training_file, other))
    fault_proxy.add(Rule(action="rewrite", drop_params=r"^metadata\[", method="GET", path=CREATE))
    assert proxied.find_job(metadata_key=MARKER, value="absent") is None
    assert proxied.find_job(metadata_key=MARKER, value="mine", page_size=1).id == mine  # type: ignore[union-attr]
    assert proxied.find_job(metadata_key=MARKER, value="someone-else") is not None


def test_the_lookup_pages_a_bounded_number_of_times(
    provider: OpenAICompatibleProvider,
    proxied: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
    training_file: str,
) -> None:
    for other in ("a", "b", "c"):
        provider.create_job(spec(training_file, other))
    # Filter and cursor both ignored: every request answers the same first page, has_more.
    fault_proxy.add(
        Rule(action="rewrite", drop_params=r"^(metadata\[|after$)", method="GET", path=CREATE)
    )
    assert proxied.find_job(metadata_key=MARKER, value="absent", page_size=1) is None
    assert len(fault_proxy.handled("GET", CREATE)) == 2  # the second page brought nothing new
    fault_proxy.clear()
    fault_proxy.add(Rule(action="rewrite", drop_params=r"^metadata\[", method="GET", path=CREATE))
    before = len(fault_proxy.handled("GET", CREATE))
    assert proxied.find_job(metadata_key=MARKER, value="a", page_size=1, max_pages=2) is None
    assert len(fault_proxy.handled("GET", CREATE)) - before == 2  # "a" is the oldest: third page


def test_every_launch_gets_exactly_one_job_through_a_proxy_losing_each_first_answer(
    provider: OpenAICompatibleProvider,
    proxied: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
    training_file: str,
) -> None:
    fault_proxy.add(
        Rule(action="drop", method="POST", path=CREATE, once_per=metadata_value(MARKER))
    )
    created = {
        f"launch-{n}": proxied.create_job(spec(training_file, f"launch-{n}"), marker=MARKER).id
        for n in range(8)
    }
    assert marked_jobs(provider) == {marker: [job_id] for marker, job_id in created.items()}
    assert len(fault_proxy.handled("POST", CREATE)) == 8


# --- uploads ----------------------------------------------------------------------------------


def test_a_lost_upload_completion_is_retried_not_failed(
    make_provider: Callable[..., OpenAICompatibleProvider],
    fault_proxy: FaultProxy,
) -> None:
    """The completion's answer is lost after the sandbox completed the upload: completing it
    again is refused (no longer pending). That is no reason to fail a launch for good: the
    error is transient (the launch retries and uploads again; one unused file remains)."""
    content = jsonl(chat_examples(200))
    proxied = make_provider(
        base_url=fault_proxy.url + "/sandbox/v1",
        adapter={"multipart_threshold": 1000, "part_size": 16 * 1024},
    )
    fault_proxy.add(Rule(action="drop", method="POST", path=r"/complete$", count=1))
    with pytest.raises(TransientProviderError) as error:
        proxied.upload_file(filename="d.jsonl", stream=io.BytesIO(content), size=len(content))
    assert "may have completed" in str(error.value)
    assert len(fault_proxy.handled("POST", r"/complete$")) == 2
    info = proxied.upload_file(filename="d.jsonl", stream=io.BytesIO(content), size=len(content))
    assert proxied.download_file(info.id) == content


def test_an_upload_completion_that_did_not_happen_is_sent_again(
    make_provider: Callable[..., OpenAICompatibleProvider],
    fault_proxy: FaultProxy,
) -> None:
    content = jsonl(chat_examples(200))
    proxied = make_provider(
        base_url=fault_proxy.url + "/sandbox/v1",
        adapter={"multipart_threshold": 1000, "part_size": 16 * 1024},
    )
    fault_proxy.add(Rule(action="refuse", status=500, method="POST", path=r"/complete$", count=1))
    info = proxied.upload_file(filename="d.jsonl", stream=io.BytesIO(content), size=len(content))
    assert proxied.download_file(info.id) == content
    assert len(fault_proxy.handled("POST", r"/complete$")) == 2

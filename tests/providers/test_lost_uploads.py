"""A file reaches the provider once, whatever happens to the upload's answer.

Uploads given the content's SHA-256 carry it in their name; after an answer whose outcome is
unknown the client looks for a file of that name and size before sending it again. A
loopback proxy (tests/support/proxy.py) loses the answer after the sandbox stored the file,
or plays a provider that ignores the listing's filters and cursor."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

import pytest

from jobs.providers import FileInfo, OpenAICompatibleProvider
from jobs.providers.uploads import content_filename
from tests.sandbox.data import chat_examples, jsonl
from tests.support.proxy import FaultProxy, Rule

pytestmark = pytest.mark.django_db(transaction=True)

FILES = r"/files$"
COMPLETE = r"/uploads/[^/]+/complete$"
CONTENT = jsonl(chat_examples(20))
SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def proxied(
    make_provider: Callable[..., OpenAICompatibleProvider], fault_proxy: FaultProxy
) -> OpenAICompatibleProvider:
    return make_provider(base_url=fault_proxy.url + "/sandbox/v1")


def files_at_the_sandbox(provider: OpenAICompatibleProvider) -> list[FileInfo]:
    return provider.list_files(limit=100).data


def upload(provider: OpenAICompatibleProvider, content: bytes = CONTENT) -> FileInfo:
    return provider.upload_file(
        filename="train.jsonl",
        stream=io.BytesIO(content),
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )


def test_the_upload_name_carries_the_content_marker() -> None:
    assert content_filename("train.jsonl", SHA) == f"train.{SHA[:12]}.jsonl"
    assert content_filename(f"train.{SHA[:12]}.jsonl", SHA) == f"train.{SHA[:12]}.jsonl"
    assert content_filename("a/../b", SHA) == f"a_.._b.{SHA[:12]}.jsonl"
    long = content_filename("x" * 300 + ".jsonl", SHA)
    assert len(long) == 255 and long.endswith(f".{SHA[:12]}.jsonl")
    with pytest.raises(ValueError, match="SHA-256"):
        content_filename("train.jsonl", "not-a-digest")


@pytest.mark.parametrize(
    "fault",
    [
        Rule(action="drop", method="POST", path=FILES, count=1),
        Rule(action="answer_after", status=502, method="POST", path=FILES, count=1),
    ],
    ids=["dropped", "5xx-after-storing"],
)
def test_a_lost_upload_answer_is_looked_up_not_sent_again(
    provider: OpenAICompatibleProvider,
    proxied: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
    fault: Rule,
) -> None:
    fault_proxy.add(fault)
    info = upload(proxied)
    assert fault.fired == 1
    stored = files_at_the_sandbox(provider)
    assert [(f.id, f.filename, f.bytes) for f in stored] == [
        (info.id, f"train.{SHA[:12]}.jsonl", len(CONTENT))
    ]
    assert len(fault_proxy.handled("POST", FILES)) == 1
    assert len(fault_proxy.handled("GET", FILES)) == 1


def test_a_read_timeout_after_the_upload_is_looked_up(
    make_provider: Callable[..., OpenAICompatibleProvider],
    provider: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
) -> None:
    proxied = make_provider(base_url=fault_proxy.url + "/sandbox/v1", timeout_read=0.5)
    fault_proxy.add(Rule(action="delay", seconds=30, method="POST", path=FILES, count=1))
    info = upload(proxied)
    assert [f.id for f in files_at_the_sandbox(provider)] == [info.id]
    assert len(fault_proxy.handled("POST", FILES)) == 1


def test_an_upload_that_did_not_happen_is_sent_again_after_the_lookup(
    provider: OpenAICompatibleProvider,
    proxied: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
) -> None:
    fault_proxy.add(Rule(action="refuse", status=503, method="POST", path=FILES, count=2))
    info = upload(proxied)
    assert [f.id for f in files_at_the_sandbox(provider)] == [info.id]
    assert len(fault_proxy.handled("POST", FILES)) == 3
    assert len(fault_proxy.handled("GET", FILES)) == 2  # looked up before each resend


def test_the_lookup_adopts_only_a_file_of_the_same_name_and_size(
    provider: OpenAICompatibleProvider,
    proxied: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
) -> None:
    """Through a provider that ignores the listing's purpose and order, files of another
    name, of the same name but another size, and of another purpose are listed: none is
    taken for the lost upload, which is found although it is not the newest."""
    name = content_filename("train.jsonl", SHA)
    shorter = CONTENT[: len(CONTENT) // 2]
    fault_proxy.add(Rule(action="drop", method="POST", path=FILES, count=1))
    fault_proxy.add(
        Rule(action="rewrite", drop_params=r"^(purpose|order)$", method="GET", path=FILES)
    )
    mine = upload(proxied)
    strangers = [
        provider.upload_file(filename=name, stream=io.BytesIO(shorter), size=len(shorter)),
        provider.upload_file(filename="other.jsonl", stream=io.BytesIO(CONTENT), size=len(CONTENT)),
        provider.upload_file(
            filename=name, stream=io.BytesIO(CONTENT), size=len(CONTENT), purpose="assistants"
        ),
    ]
    assert proxied.find_file(filename=name, size=len(CONTENT), page_size=1) == mine
    assert proxied.find_file(filename=name, size=len(CONTENT) + 1) is None
    assert proxied.find_file(filename="train.jsonl", size=len(CONTENT)) is None
    assert mine.id not in {s.id for s in strangers}
    assert len(files_at_the_sandbox(provider)) == 4


def test_the_lookup_pages_a_bounded_number_of_times(
    provider: OpenAICompatibleProvider,
    proxied: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
) -> None:
    for n in range(3):
        upload(provider, jsonl(chat_examples(5 + n)))
    # Filters and cursor all ignored: every request answers the same first page, has_more.
    fault_proxy.add(
        Rule(action="rewrite", drop_params=r"^(purpose|order|after)$", method="GET", path=FILES)
    )
    assert proxied.find_file(filename="absent.jsonl", size=1, page_size=1) is None
    assert len(fault_proxy.handled("GET", FILES)) == 2  # the second page brought nothing new
    fault_proxy.clear()
    before = len(fault_proxy.handled("GET", FILES))
    assert proxied.find_file(filename="absent.jsonl", size=1, page_size=1, max_pages=2) is None
    assert len(fault_proxy.handled("GET", FILES)) - before == 2


@pytest.mark.parametrize(
    "fault",
    [
        Rule(action="drop", method="POST", path=COMPLETE, count=1),
        Rule(action="answer_after", status=500, method="POST", path=COMPLETE, count=1),
    ],
    ids=["dropped", "5xx-after-completing"],
)
def test_a_lost_completion_of_an_upload_in_parts_is_looked_up(
    make_provider: Callable[..., OpenAICompatibleProvider],
    provider: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
    fault: Rule,
) -> None:
    proxied = make_provider(
        base_url=fault_proxy.url + "/sandbox/v1",
        adapter={"multipart_threshold": 1024, "part_size": 1024},
    )
    fault_proxy.add(fault)
    info = upload(proxied)
    assert fault.fired == 1
    stored = files_at_the_sandbox(provider)
    assert [(f.id, f.filename, f.bytes) for f in stored] == [
        (info.id, f"train.{SHA[:12]}.jsonl", len(CONTENT))
    ]
    assert provider.download_file(info.id) == CONTENT
    assert len(fault_proxy.handled("POST", COMPLETE)) == 1  # found, not completed again
    assert len(fault_proxy.handled("POST", r"/uploads$")) == 1


def test_a_completion_that_did_not_happen_is_sent_again(
    make_provider: Callable[..., OpenAICompatibleProvider],
    provider: OpenAICompatibleProvider,
    fault_proxy: FaultProxy,
) -> None:
    proxied = make_provider(
        base_url=fault_proxy.url + "/sandbox/v1",
        adapter={"multipart_threshold": 1024, "part_size": 1024},
    )
    fault_proxy.add(Rule(action="refuse", status=503, method="POST", path=COMPLETE, count=1))
    info = upload(proxied)
    assert [f.id for f in files_at_the_sandbox(provider)] == [info.id]
    assert len(fault_proxy.handled("POST", COMPLETE)) == 2

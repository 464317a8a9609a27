"""Uploads through the page (and the admin): streamed to storage, checked, deduplicated, and
never leaving anything behind when refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from datasets.models import Dataset
from tests.datasets.helpers import (
    GPT4O,
    GPT4O_MINI,
    chat_file,
    media_files,
    multipart,
    upload,
)
from tests.permissions import make_user

pytestmark = pytest.mark.django_db


def test_upload_stores_the_file_and_its_facts(member: Client) -> None:
    content = chat_file(30) + b'{"messages": []}'  # last line without a newline
    response = upload(
        member,
        content,
        file_name="support-v2.jsonl",
        description="first try",
        tags="Support, v2 ,v2",
        model=GPT4O,
    )
    dataset = Dataset.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/datasets/{dataset.pk}/"
    assert dataset.name == "support-v2"  # defaults to the file name
    assert dataset.original_filename == "support-v2.jsonl"
    assert dataset.description == "first try"
    assert dataset.tags == ["support", "v2"]
    assert dataset.size == len(content)
    assert dataset.sha256 == hashlib.sha256(content).hexdigest()
    assert dataset.line_count == 31
    assert dataset.status == Dataset.Status.UPLOADED
    assert dataset.progress_total == len(content) and dataset.progress_bytes == 0
    assert dataset.requested_model_id == GPT4O
    assert dataset.uploaded_by.username == "member-user"
    assert dataset.file.name == f"datasets/{dataset.sha256[:2]}/{dataset.sha256}.jsonl"
    # Exactly one file on disk, the dataset itself: the temporary file was moved, not copied.
    assert media_files() == [Path(dataset.file.path)]
    assert Path(dataset.file.path).read_bytes() == content


def test_default_model_and_explicit_name(member: Client) -> None:
    upload(member, chat_file(12), file_name="a.jsonl")
    response = upload(member, chat_file(12, start=100), file_name="b.JSONL", name="My data")
    assert response.status_code == 302
    names = set(Dataset.objects.values_list("name", "requested_model_id"))
    assert names == {("a", GPT4O_MINI), ("My data", GPT4O_MINI)}


def test_xhr_upload_answers_json(member: Client) -> None:
    ok = member.post(
        "/datasets/upload/",
        {"file": _file(chat_file(12))},
        headers={"X-Requested-With": "XMLHttpRequest"},
    )
    dataset = Dataset.objects.get()
    assert ok.status_code == 200
    assert ok.json() == {"redirect": f"/datasets/{dataset.pk}/", "created": True}
    bad = member.post(
        "/datasets/upload/",
        {"file": _file(b"", "empty.jsonl")},
        headers={"X-Requested-With": "XMLHttpRequest"},
    )
    assert bad.status_code == 400
    assert bad.json() == {"errors": {"file": ["The file is empty."]}}


def _file(content: bytes, name: str = "t.jsonl"):  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content)


def test_same_content_twice_links_to_the_first(member: Client) -> None:
    content = chat_file(20)
    first = upload(member, content, file_name="one.jsonl")
    again = upload(member, content, file_name="two.jsonl", name="another name")
    dataset = Dataset.objects.get()
    assert first["Location"] == again["Location"] == f"/datasets/{dataset.pk}/"
    assert dataset.name == "one"
    texts = [str(m) for m in get_messages(again.wsgi_request)]
    assert any("uploaded before" in t for t in texts), texts
    assert media_files() == [Path(dataset.file.path)]


@pytest.mark.parametrize(
    ("file_name", "content", "message"),
    [
        ("empty.jsonl", b"", "The file is empty."),
        ("blank.jsonl", b" \n\n\t\n", "only whitespace"),
        ("latin1.jsonl", '{"text": "caf\u00e9"}\n'.encode("latin-1"), "not UTF-8 text"),
        ("utf16.jsonl", '{"a": 1}\n'.encode("utf-16"), "UTF-16 encoded"),
        ("nul.jsonl", b'{"a": 1}\x00\n', "NUL bytes"),
        ("data.jsonl", b"\x1f\x8b\x08\x00rest-of-gzip", "gzip-compressed"),
        ("data.json", chat_file(12), "Only JSON Lines files ending in .jsonl"),
        ("data.txt", chat_file(12), "Only JSON Lines files ending in .jsonl"),
        (".jsonl", chat_file(12), "Only JSON Lines files ending in .jsonl"),
    ],
)
def test_bad_files_are_refused_and_leave_nothing(
    member: Client, file_name: str, content: bytes, message: str
) -> None:
    response = upload(member, content, file_name=file_name)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Dataset.objects.count() == 0
    assert media_files() == []


@pytest.mark.parametrize(
    ("file_name", "message"),
    [
        ("../x.jsonl", "looks like a path"),
        ("../../etc/passwd.jsonl", "looks like a path"),
        ("dir/x.jsonl", "looks like a path"),
        ("..\\\\x.jsonl", "looks like a path"),
        ("x\\u0000y.jsonl", "control characters"),
        ("x\\u202ey.jsonl", "control characters"),
    ],
)
def test_path_like_names_are_refused(member: Client, file_name: str, message: str) -> None:
    file_name = file_name.encode().decode("unicode_escape")
    body, content_type = multipart({"name": "n"}, file_name=file_name, content=chat_file(12))
    response = member.post("/datasets/upload/", body, content_type=content_type)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Dataset.objects.count() == 0
    assert media_files() == []


def test_over_the_limit_while_streaming(member: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DATASET_MAX_UPLOAD_BYTES = 5000
    response = upload(member, chat_file(200))
    assert response.status_code == 400
    assert "larger than the 4.9\xa0KB limit" in response.content.decode()
    assert Dataset.objects.count() == 0
    assert media_files() == []
    # Exactly at the limit is fine.
    content = chat_file(200)[:5000]
    content = content[: content.rindex(b"\n") + 1]
    assert upload(member, content.ljust(5000, b"\n")).status_code == 302


def test_over_the_limit_by_declared_length_reads_nothing(member: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DATASET_MAX_UPLOAD_BYTES = 1000
    body, content_type = multipart({}, file_name="big.jsonl", content=b"x" * (2 << 20))
    response = member.post("/datasets/upload/", body, content_type=content_type)
    assert response.status_code == 413
    assert "larger than the 1000\xa0bytes limit" in response.content.decode()
    assert response.wsgi_request._read_started is False  # refused before reading the body
    assert Dataset.objects.count() == 0
    assert media_files() == []


def test_only_the_start_is_checked_for_utf8(member: Client) -> None:
    # A bad byte deep in the file is a validation finding (with its line), not a refusal.
    content = chat_file(2000) + b'{"x": "\xff"}\n'
    assert len(content) > 64 * 1024
    assert upload(member, content).status_code == 302
    assert Dataset.objects.count() == 1


def test_missing_file_and_bad_fields(member: Client) -> None:
    response = member.post("/datasets/upload/", {"name": "x"})
    assert response.status_code == 400
    assert "Choose a .jsonl file to upload." in response.content.decode()
    too_many = ", ".join(f"t{i}" for i in range(21))
    response = upload(member, chat_file(12), tags=too_many)
    assert response.status_code == 400
    assert "At most 20 tags." in response.content.decode()
    response = upload(member, chat_file(12), model="no-such-model")
    assert response.status_code == 400
    assert Dataset.objects.count() == 0
    assert media_files() == []


def test_csrf_is_enforced_after_streaming_and_cleans_up() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("member"))
    response = upload(client, chat_file(12))
    assert response.status_code == 403
    assert Dataset.objects.count() == 0
    assert media_files() == []


def test_csrf_token_in_form_or_header_is_accepted() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("member"))
    page = client.get("/datasets/upload/")
    token = page.context["csrf_token"]
    assert upload(client, chat_file(12), csrfmiddlewaretoken=str(token)).status_code == 302
    response = client.post(
        "/datasets/upload/",
        {"file": _file(chat_file(12, start=50))},
        headers={"X-CSRFToken": str(token), "X-Requested-With": "XMLHttpRequest"},
    )
    assert response.status_code == 200
    assert Dataset.objects.count() == 2


def test_second_file_field_is_ignored(member: Client) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = member.post(
        "/datasets/upload/",
        {
            "file": SimpleUploadedFile("a.jsonl", chat_file(12)),
            "other": SimpleUploadedFile("b.jsonl", b"zz"),
        },
    )
    assert response.status_code == 302
    assert len(media_files()) == 1


def test_upload_page_shows_the_form_and_limit(member: Client) -> None:
    page = member.get("/datasets/upload/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert 'data-max-bytes="1073741824"' in html
    assert "js/dataset_upload.js" in html
    assert "plotly" not in html


def test_a_character_cut_by_the_check_limit_is_not_an_error(member: Client) -> None:
    from datasets.incoming import HEAD_CHECK_BYTES

    line = '{"messages": [{"role": "user", "content": "' + "x" * 100
    prefix = (line * 1000).encode()[: HEAD_CHECK_BYTES - 1]
    content = prefix + "€".encode() + b'"}]}\n'  # the 3-byte euro sign straddles the limit
    assert content[HEAD_CHECK_BYTES - 1 : HEAD_CHECK_BYTES + 2] == "€".encode()
    assert upload(member, content).status_code == 302


def test_emoji_names_are_fine_direction_overrides_are_not(member: Client) -> None:
    assert (
        upload(member, chat_file(12), file_name="fam-👨\u200d👩\u200d👧.jsonl").status_code == 302
    )
    body, content_type = multipart({}, file_name="evil\u202elnosj.jsonl", content=chat_file(12, 50))
    response = member.post("/datasets/upload/", body, content_type=content_type)
    assert response.status_code == 400 and b"control characters" in response.content


def test_malformed_multipart_is_a_400(member: Client) -> None:
    response = member.post(
        "/datasets/upload/", b"garbage", content_type="multipart/form-data; boundary=\x7f"
    )
    assert response.status_code == 400
    assert Dataset.objects.count() == 0
    assert media_files() == []


class _DroppedConnection:
    """A request body whose client goes away after ``limit`` bytes."""

    def __init__(self, body: bytes, limit: int) -> None:
        self.body, self.limit, self.pos = body, limit, 0

    def read(self, size: int = -1) -> bytes:
        if self.pos >= self.limit:
            raise OSError("connection reset by peer")
        size = len(self.body) if size is None or size < 0 else size
        chunk = self.body[self.pos : min(self.pos + size, self.limit)]
        self.pos += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        raise AssertionError("the multipart parser reads in chunks")


def test_client_disconnect_mid_upload_leaves_nothing(member: Client) -> None:
    from django.test.client import ClientHandler

    body, content_type = multipart({}, file_name="t.jsonl", content=chat_file(30_000))
    environ = {
        **member._base_environ(),  # type: ignore[attr-defined]
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/datasets/upload/",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": _DroppedConnection(body, len(body) // 2),
    }
    response = ClientHandler()(environ)
    assert response.status_code in (400, 403)
    assert Dataset.objects.count() == 0
    assert media_files() == []

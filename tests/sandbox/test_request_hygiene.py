"""Hostile and malformed query parameters and bodies: every one gets OpenAI's error envelope
with a 400 (never a 500, never an ORM lookup), and well-formed ones keep working through the
official SDK in strict mode."""

from __future__ import annotations

import io

import httpx
import openai
import pytest

from tests.conftest import Sandbox
from tests.sandbox.data import chat_examples, jsonl

pytestmark = pytest.mark.django_db(transaction=True)


def assert_400(response: httpx.Response, param: str | None = None) -> dict:
    assert response.status_code == 400, response.text
    assert response.headers["x-request-id"].startswith("req_")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param, error
    return error


def _job(sdk: openai.OpenAI, metadata: dict[str, str] | None = None) -> str:
    file_id = sdk.files.create(
        file=("t.jsonl", io.BytesIO(jsonl(chat_examples(10)))), purpose="fine-tune"
    ).id
    return sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=file_id, metadata=metadata
    ).id


def _listed(sandbox: Sandbox, **params: str) -> list[str]:
    response = httpx.get(f"{sandbox.url}/fine_tuning/jobs", headers=sandbox.auth, params=params)
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["data"]]


# --- metadata filters are literal keys -------------------------------------------------------


def test_metadata_filter_keys_are_literal_never_orm_lookups(
    sandbox: Sandbox, sdk: openai.OpenAI
) -> None:
    plain = _job(sdk, {"run": "b"})
    odd = _job(sdk, {"run__isnull": "x", "a.b": "c", "x'];--": "y"})
    assert _listed(sandbox, **{"metadata[run]": "b"}) == [plain]
    # Lookups that the ORM would have interpreted: isnull (a 500 before), gt (matched "b").
    assert _listed(sandbox, **{"metadata[run__gt]": "a"}) == []
    assert _listed(sandbox, **{"metadata[run__isnull]": "x"}) == [odd]
    assert _listed(sandbox, **{"metadata[run__isnull]": "true"}) == []
    assert _listed(sandbox, **{"metadata[run__contains]": "b"}) == []
    assert _listed(sandbox, **{"metadata[a.b]": "c"}) == [odd]
    assert _listed(sandbox, **{"metadata[x'];--]": "y"}) == [odd]
    # Two filters must both hold; a value is compared as a string, exactly.
    assert _listed(sandbox, **{"metadata[run]": "b", "metadata[a.b]": "c"}) == []
    assert _listed(sandbox, **{"metadata[run]": "B"}) == []
    # Through the SDK too (it sends metadata[key]=value).
    assert [j.id for j in sdk.fine_tuning.jobs.list(metadata={"run__isnull": "x"})] == [odd]


# --- files: purposes, expiry and the uploads API ---------------------------------------------


def test_evals_purpose_is_accepted(sandbox: Sandbox, sdk: openai.OpenAI) -> None:
    # The spec's CreateFileRequest accepts `evals`; its OpenAIFile (and the SDK's FileObject)
    # has no such value, so the contract profile answers with the closest one it has.
    created = sdk.files.create(file=("e.jsonl", io.BytesIO(b'{"a": 1}\n')), purpose="evals")
    assert created.purpose == "user_data"
    listed = httpx.get(f"{sandbox.url}/files", headers=sandbox.auth, params={"purpose": "evals"})
    assert [f["id"] for f in listed.json()["data"]] == [created.id]
    sandbox.control("account", {"profile": "realism"})
    raw = httpx.get(f"{sandbox.url}/files/{created.id}", headers=sandbox.auth).json()
    assert raw["purpose"] == "evals"
    # Not a training file.
    response = httpx.post(
        f"{sandbox.url}/fine_tuning/jobs",
        headers=sandbox.auth,
        json={"model": "gpt-4o-mini", "training_file": created.id},
    )
    assert assert_400(response, "training_file")["code"] == "invalid_file_purpose"


def _create_file(sandbox: Sandbox, **fields: str) -> httpx.Response:
    return httpx.post(
        f"{sandbox.url}/files",
        headers=sandbox.auth,
        data={"purpose": "fine-tune", **fields},
        files={"file": ("t.jsonl", jsonl(chat_examples(2)))},
    )


MALFORMED_FORM_EXPIRES_AFTER: list[tuple[dict[str, str], str | None]] = [
    ({"expires_after[anchor]": "created_at"}, "expires_after[seconds]"),
    ({"expires_after[seconds]": "3600"}, "expires_after[anchor]"),
    ({"expires_after[anchor]": "created_at", "expires_after[seconds]": ""}, None),
    ({"expires_after[anchor]": "created_at", "expires_after[seconds]": "3600.5"}, None),
    ({"expires_after[anchor]": "created_at", "expires_after[seconds]": "1e4"}, None),
    ({"expires_after[anchor]": "created_at", "expires_after[seconds]": "٣٦٠٠"}, None),
    ({"expires_after[anchor]": "created_at", "expires_after[seconds]": "9" * 5000}, None),
    ({"expires_after[anchor]": "updated_at", "expires_after[seconds]": "3600"}, None),
    ({"expires_after[anchor]": "created_at", "expires_after[seconds]": "59"}, None),
    ({"expires_after[anchor]": "created_at", "expires_after[secs]": "3600"}, None),
    ({"expires_after": "soon"}, "expires_after"),
    ({"expires_after": "[1]"}, "expires_after"),
    ({"expires_after": '{"anchor": "created_at", "seconds": true}'}, None),
    ({"expires_after": '{"anchor": "created_at", "seconds": 3600.5}'}, None),
    ({"expires_after": '{"anchor": "created_at", "seconds": "3600"}'}, None),
    ({"expires_after": '{"anchor": "created_at", "seconds": 3600, "x": 1}'}, None),
]


def test_malformed_expires_after_on_files_is_400(sandbox: Sandbox) -> None:
    # One test, many cases: each transactional test costs a database flush.
    for fields, param in MALFORMED_FORM_EXPIRES_AFTER:
        error = assert_400(_create_file(sandbox, **fields), param)
        assert error["param"].startswith("expires_after"), (fields, error)


def test_well_formed_expires_after_sets_expires_at_on_files_and_uploads(
    sandbox: Sandbox, sdk: openai.OpenAI
) -> None:
    made = sdk.files.create(
        file=("t.jsonl", io.BytesIO(jsonl(chat_examples(2)))),
        purpose="fine-tune",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert made.expires_at == made.created_at + 3600
    as_json = _create_file(
        sandbox, expires_after='{"anchor": "created_at", "seconds": 7200}'
    ).json()
    assert as_json["expires_at"] == as_json["created_at"] + 7200
    # Uploads take the same policy for the file they produce.
    content = jsonl(chat_examples(3))
    upload = sdk.uploads.create(
        bytes=len(content), filename="t.jsonl", mime_type="application/jsonl",
        purpose="fine-tune", expires_after={"anchor": "created_at", "seconds": 3600},
    )  # fmt: skip
    part = sdk.uploads.parts.create(upload.id, data=content)
    done = sdk.uploads.complete(upload.id, part_ids=[part.id])
    assert done.file is not None and done.file.expires_at is not None
    assert done.file.expires_at == done.file.created_at + 3600


def _create_upload(sandbox: Sandbox, **overrides: object) -> httpx.Response:
    body = {"bytes": 10, "filename": "t.jsonl", "mime_type": "application/jsonl"}
    body["purpose"] = "fine-tune"
    body.update(overrides)
    return httpx.post(f"{sandbox.url}/uploads", headers=sandbox.auth, json=body)


MALFORMED_MIME_TYPES = [
    "jsonl",
    "application/",
    "/jsonl",
    "application/json l",
    "application/jsonl\r\nX-Injected: 1",
    "application/" + "x" * 120,  # longer than the column: a 500 before
    "text/plain; charset",
    "",
    7,
    None,
]


def test_malformed_mime_type_on_uploads_is_400(sandbox: Sandbox, sdk: openai.OpenAI) -> None:
    for mime_type in MALFORMED_MIME_TYPES:
        assert_400(_create_upload(sandbox, mime_type=mime_type), "mime_type")
    for mime_type in ("application/jsonl", "application/json", "text/plain; charset=utf-8"):
        upload = sdk.uploads.create(
            bytes=10, filename="t.jsonl", mime_type=mime_type, purpose="fine-tune"
        )
        assert upload.status == "pending"


MALFORMED_JSON_EXPIRES_AFTER: list[object] = [
    "soon",
    [],
    {"anchor": "created_at"},
    {"anchor": "last_active_at", "seconds": 3600},
    {"anchor": "created_at", "seconds": 3600.5},
    {"anchor": "created_at", "seconds": True},
    {"anchor": "created_at", "seconds": "3600"},
    {"anchor": "created_at", "seconds": 10},
    {"anchor": "created_at", "seconds": 3600, "extra": 1},
]


def test_malformed_expires_after_on_uploads_is_400(sandbox: Sandbox) -> None:
    for expires_after in MALFORMED_JSON_EXPIRES_AFTER:
        error = assert_400(_create_upload(sandbox, expires_after=expires_after))
        assert error["param"].startswith("expires_after"), (expires_after, error)


# --- list parameters: limit, after, order ----------------------------------------------------


def _list_paths(sdk: openai.OpenAI) -> list[str]:
    job_id = _job(sdk)
    return [
        "/files",
        "/fine_tuning/jobs",
        f"/fine_tuning/jobs/{job_id}/events",
        f"/fine_tuning/jobs/{job_id}/checkpoints",
    ]


MALFORMED_LIMITS = ["", " ", "0", "-1", "1.5", "1e2", "abc", "٣", " 5", "+5", "5 ", "9" * 5000]


def test_malformed_limit_and_order_are_400_on_every_list(
    sandbox: Sandbox, sdk: openai.OpenAI
) -> None:
    for path in _list_paths(sdk):
        for limit in MALFORMED_LIMITS:
            response = httpx.get(sandbox.url + path, headers=sandbox.auth, params={"limit": limit})
            assert_400(response, "limit")
    for order in ("", "ASC", "ascending", "asc "):
        response = httpx.get(f"{sandbox.url}/files", headers=sandbox.auth, params={"order": order})
        assert_400(response, "order")


def test_limit_bounds_follow_the_spec(sandbox: Sandbox, sdk: openai.OpenAI) -> None:
    job_id = _job(sdk)
    bounds = {
        "/files": 10000,
        "/fine_tuning/jobs": 100,
        f"/fine_tuning/jobs/{job_id}/events": 10000,
        f"/fine_tuning/jobs/{job_id}/checkpoints": 100,
    }
    for path, high in bounds.items():
        for ok in ("1", str(high)):
            response = httpx.get(sandbox.url + path, headers=sandbox.auth, params={"limit": ok})
            assert response.status_code == 200, (path, ok, response.text)
        over = httpx.get(sandbox.url + path, headers=sandbox.auth, params={"limit": high + 1})
        assert_400(over, "limit")


def test_after_must_name_an_object_of_the_list(
    sandbox: Sandbox, sdk: openai.OpenAI, other_sandbox_key: str
) -> None:
    # An unknown cursor used to answer the first page again: a client paging with it never
    # ends (issue #15, item 2, is the same loop seen from the other side).
    other = openai.OpenAI(base_url=sandbox.url, api_key=other_sandbox_key, max_retries=0)
    theirs = _job(other)  # another organisation's job is no cursor either
    for path in _list_paths(sdk):
        for after in ("", "nope", "ftjob-" + "x" * 24, theirs):
            response = httpx.get(sandbox.url + path, headers=sandbox.auth, params={"after": after})
            assert_400(response, "after")


def test_paging_with_after_visits_each_object_once(sandbox: Sandbox, sdk: openai.OpenAI) -> None:
    jobs = [_job(sdk) for _ in range(3)]
    seen = [j.id for j in sdk.fine_tuning.jobs.list(limit=1)]
    assert seen == list(reversed(jobs))
    events = [e.id for e in sdk.fine_tuning.jobs.list_events(jobs[0], limit=3)]
    assert len(events) == len(set(events)) > 3
    checkpoints = [c.id for c in sdk.fine_tuning.jobs.checkpoints.list(jobs[0], limit=1)]
    assert len(checkpoints) == len(set(checkpoints)) == 3
    # A deleted file still marks its place: the next page starts after it.
    files = [f.id for f in sdk.files.list(order="asc")]
    sdk.files.delete(files[0])
    rest = httpx.get(
        f"{sandbox.url}/files", headers=sandbox.auth, params={"after": files[0], "order": "asc"}
    ).json()
    assert [f["id"] for f in rest["data"]] == files[1:]

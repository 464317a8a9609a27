"""Property-based fuzzing of the sandbox's Together-compatible API from Together's own OpenAPI
description (schemathesis, an external checker) over the fine-tuning and files paths: no 5xx,
and every answer whose status the description declares conforms to its schema."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import BASE_DIR
from tests.sandbox.data import chat_examples, jsonl
from tests.sandbox.test_spec_schemathesis import schemathesis_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SPEC = BASE_DIR.parent / "shared" / "together-openapi" / "openapi.yaml"


@pytest.mark.skipif(not SPEC.exists(), reason=f"OpenAPI spec not found at {SPEC}")
def test_together_surface_conforms_to_togethers_description(
    sandbox_url: str, sandbox_key: str
) -> None:
    base = sandbox_url.removesuffix("/v1") + "/together/v1"
    auth = {"Authorization": f"Bearer {sandbox_key}"}
    # Real objects to find, so that not every request is a 404 on a random id.
    file_id = httpx.post(
        base + "/files/upload",
        headers=auth,
        data={"purpose": "fine-tune", "file_name": "seed.jsonl"},
        files={"file": ("seed.jsonl", jsonl(chat_examples(40)))},
    ).json()["id"]
    created = httpx.post(
        base + "/fine-tunes",
        headers=auth,
        json={"training_file": file_id, "model": "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"},
    )
    assert created.status_code == 200, created.text
    # 16 operations: a shorter budget than the OpenAI surface's keeps the suite in time.
    result = schemathesis_run(SPEC, base, sandbox_key, r"^/(files|fine-tunes)", budget=20)
    report = result.stdout[-20000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "passed" in result.stdout.lower(), report

"""Issue 14.1: the sandbox answers a tokenizer failure with an API error, not a 500 page."""

from __future__ import annotations

import io
from pathlib import Path

import openai
import pytest

from sandbox.models import SandboxJob
from tests.sandbox.data import chat_examples, jsonl
from tests.support.tokenizer import damaged_bpe

pytestmark = pytest.mark.django_db(transaction=True)


def test_job_create_with_a_damaged_tokenizer_is_a_server_error(
    sdk: openai.OpenAI, tmp_path: Path
) -> None:
    file_id = sdk.files.create(
        file=("t.jsonl", io.BytesIO(jsonl(chat_examples(12)))), purpose="fine-tune"
    ).id
    with damaged_bpe(tmp_path / "bpe"), pytest.raises(openai.APIStatusError) as caught:
        sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
    assert caught.value.status_code == 503
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "server_error"
    assert body["message"].startswith("The sandbox cannot count tokens: o200k_base: BPE file")
    assert not SandboxJob.objects.exists()
    # Repaired (the shipped files again): the same request creates the job.
    job = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
    assert SandboxJob.objects.filter(pk=job.id).exists()

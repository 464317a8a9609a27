from __future__ import annotations

import io
from collections.abc import Callable

import openai
import pytest

from tests.sandbox.data import chat_examples, jsonl


def make_client(base_url: str, *, key: str, strict: bool = True, **kwargs: object) -> openai.OpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.OpenAI(
        base_url=base_url, api_key=key, _strict_response_validation=strict, **kwargs
    )


@pytest.fixture
def sdk(sandbox_url: str, sandbox_key: str) -> openai.OpenAI:
    """The official SDK in strict response-validation mode: any shape drift fails the test."""
    return make_client(sandbox_url, key=sandbox_key)


@pytest.fixture
def lenient(sandbox_url: str, sandbox_key: str) -> openai.OpenAI:
    """For the one documented exception (status "paused") and the realism profile."""
    return make_client(sandbox_url, key=sandbox_key, strict=False)


@pytest.fixture
def upload_jsonl(sdk: openai.OpenAI) -> Callable[..., str]:
    def upload(
        examples: list[dict] | None = None, *, raw: bytes | None = None, name: str = "train.jsonl"
    ) -> str:
        content = (
            raw
            if raw is not None
            else jsonl(examples if examples is not None else chat_examples(20))
        )
        return sdk.files.create(file=(name, io.BytesIO(content)), purpose="fine-tune").id

    return upload

from __future__ import annotations

import pytest

from datasets.validation.encodings import get_encoding
from sandbox.replies import (
    count_message_tokens,
    count_tokens,
    encoding_name_for,
    generate_reply,
)

from .helpers import MODEL

# OpenAI cookbook "How to count tokens with tiktoken": the API billed these messages 129 prompt
# tokens on gpt-3.5-turbo and gpt-4, and 124 on gpt-4o and gpt-4o-mini.
COOKBOOK_MESSAGES = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."},
]  # fmt: skip
TWO_MESSAGES = [
    {"role": "system", "content": "You are Tuneboard's helpful assistant."},
    {"role": "user", "name": "ada", "content": "How many epochs does auto pick for 20 examples?"},
]


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4o", "o200k_base"),
        ("gpt-4.1-nano-2025-04-14", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("ft:gpt-4o-mini-2024-07-18:acme::Zk29QmLa", "o200k_base"),
        ("ft:gpt-4.1-2025-04-14:acme:tone:Zk29QmLa:ckpt-step-60", "o200k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("ft:gpt-3.5-turbo-0125:acme::Zk29QmLa", "cl100k_base"),
        ("babbage-002", "cl100k_base"),
        ("davinci-002", "cl100k_base"),
        ("some-future-model", "o200k_base"),
    ],
)
def test_encoding_per_model(model: str, encoding: str) -> None:
    assert encoding_name_for(model) == encoding


def test_count_tokens_matches_tiktoken() -> None:
    text = "Fine-tuning résumé: 3 epochs, <|endoftext|> is just text here."
    for model, name in (("gpt-4o", "o200k_base"), ("gpt-3.5-turbo", "cl100k_base")):
        assert count_tokens(text, model=model) == len(get_encoding(name).encode_ordinary(text))


def test_message_tokens_match_the_cookbook_numbers() -> None:
    assert count_message_tokens(COOKBOOK_MESSAGES, model="gpt-3.5-turbo-0125") == 129
    assert count_message_tokens(COOKBOOK_MESSAGES, model="gpt-4-0613") == 129
    assert count_message_tokens(COOKBOOK_MESSAGES, model="gpt-4o-mini-2024-07-18") == 124


def test_message_tokens_by_hand() -> None:
    o200k = get_encoding("o200k_base")
    # [1, 9, 1, 1, 11] tokens for "system", the system text, "user", "ada", the question.
    values = ["system", TWO_MESSAGES[0]["content"], "user", "ada", TWO_MESSAGES[1]["content"]]
    assert [len(o200k.encode(v)) for v in values] == [1, 9, 1, 1, 11]
    # 3 per message × 2 + 23 value tokens + 1 for the name + 3 priming the reply.
    assert count_message_tokens(TWO_MESSAGES, model=MODEL) == 6 + 23 + 1 + 3 == 33


def test_message_tokens_count_text_parts_and_tool_calls() -> None:
    parts = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hello"},
                {"type": "image_url", "image_url": {"url": "x"}},
            ],
        }
    ]
    assert count_message_tokens(parts, model=MODEL) == count_message_tokens(
        [{"role": "user", "content": "hello"}], model=MODEL
    )
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": "x"}'},
    }
    with_call = [{"role": "assistant", "content": None, "tool_calls": [call]}]
    expected = (
        3
        + 3
        + sum(
            count_tokens(s, model=MODEL)
            for s in ("assistant", "call_1", "function", "lookup", '{"q": "x"}')
        )
    )
    assert count_message_tokens(with_call, model=MODEL) == expected


def test_max_tokens_truncates_with_finish_reason_length() -> None:
    prompt = [{"role": "user", "content": "Explain gradient accumulation in detail."}]
    full, finish = generate_reply(prompt, model=MODEL, trained=None, fidelity=0.0)
    assert finish == "stop" and count_tokens(full, model=MODEL) > 10
    cut, finish = generate_reply(prompt, model=MODEL, trained=None, fidelity=0.0, max_tokens=10)
    assert finish == "length"
    assert count_tokens(cut, model=MODEL) <= 10 and full.startswith(cut) and cut
    same, finish = generate_reply(
        prompt, model=MODEL, trained=None, fidelity=0.0, max_tokens=10_000
    )
    assert (same, finish) == (full, "stop")
    assert generate_reply(prompt, model=MODEL, trained=None, fidelity=0.0, max_tokens=0) == (
        "",
        "length",
    )


def test_truncation_never_splits_a_character() -> None:
    reply = "Überraschung! 🎉🎉🎉 日本語のテキスト"
    trained = {"user: emoji please": reply}
    for limit in range(1, count_tokens(reply, model=MODEL)):
        cut, finish = generate_reply(
            [{"role": "user", "content": "emoji please"}],
            model=MODEL + "-ft",
            trained=trained,
            fidelity=1.0,
            max_tokens=limit,
        )
        assert finish == "length" and "\ufffd" not in cut and reply.startswith(cut)

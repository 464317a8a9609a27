"""Requirement 4, token counting: the cookbook rule, encodings, batching and threads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datasets.validation import Distribution, tokens
from datasets.validation.encodings import get_encoding, token_counter
from datasets.validation.engine import Validation
from datasets.validation.tokens import count_tokens

from .helpers import GPT4O, GPT35, chat, codes, jsonl, messages_of, model, padded, validate

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def reference(example: dict[str, Any], encoding: str) -> tuple[int, int]:
    """The documented counting rule, written out plainly: (total, trained) tokens."""
    enc = get_encoding(encoding)

    def n(text: str) -> int:
        return len(enc.encode_ordinary(text))

    total, trained = 3, 0
    for key in ("tools", "functions"):
        if key in example:
            total += n(json.dumps(example[key], separators=(",", ":"), ensure_ascii=False))
    for message in example["messages"]:
        total += 3
        is_trained = message["role"] == "assistant" and message.get("weight", 1) != 0
        out: list[str] = []  # strings an assistant produces
        for key, value in message.items():
            if key == "name":
                total += n(value) + 1
            elif key in ("role", "tool_call_id"):
                total += n(value)
            elif key in ("content", "refusal") and isinstance(value, str):
                out.append(value)
            elif key == "content" and isinstance(value, list):
                out += [part["text"] for part in value if part["type"] == "text"]
                total += sum(765 for part in value if part["type"] == "image_url")
            elif key == "tool_calls":
                for call in value:
                    function = call["function"]
                    out += [call["id"], call["type"], function["name"], function["arguments"]]
            elif key == "function_call":
                out += [value["name"], value["arguments"]]
        produced = sum(n(text) for text in out)
        total += produced
        trained += produced if is_trained else 0
    return total, trained


def reference_distributions(
    examples: list[dict[str, Any]], encoding: str
) -> tuple[Distribution, Distribution]:
    totals, trained = Distribution(), Distribution()
    for example in examples:
        total, produced = reference(example, encoding)
        totals.add(total)
        trained.add(produced)
    return totals, trained


def rich_examples() -> list[dict[str, Any]]:
    """Every counted feature, with repeats (system prompts, tools) across many lines."""
    system = "You are a meticulous assistant. " * 20
    call = {
        "id": "call_abc123",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Zürich"}'},
    }
    examples = []
    for i in range(150):
        examples.append(
            {
                "messages": [
                    {"role": "system", "content": system},
                    {
                        "role": "user",
                        "content": f"Weather {i}? " + "détails " * (i % 7),
                        "name": "alice_smith",
                    },
                    {"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_abc123"},
                    {"role": "assistant", "content": f"Draft {i}", "weight": 0},
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "and <|endoftext|>?"},
                            {"type": "image_url", "image_url": {"url": "https://e.com/i.png"}},
                        ],
                    },
                    {
                        "role": "assistant",
                        "content": f"It is {i} degrees. 東京 🙂",
                        "refusal": "I can't",
                    },
                    {
                        "role": "assistant",
                        "content": None,
                        "function_call": {"name": "f", "arguments": "{}"},
                    },
                ],
                "tools": TOOLS,
            }
        )
    return examples


@pytest.mark.parametrize("model_id", [GPT4O, GPT35])
def test_counts_follow_the_cookbook_rule(model_id: str) -> None:
    examples = rich_examples()
    report = validate(jsonl(examples), model_id=model_id)
    encoding = model(model_id).encoding
    assert report.tokens.encoding == encoding
    totals, trained = reference_distributions(examples, encoding)
    assert report.tokens.total == totals
    assert report.tokens.trained == trained
    assert report.tokens.messages.counts == {8: 150}


def test_counts_match_the_reference_on_the_cookbook_files(cookbook: Path) -> None:
    for name in ("drone_training.jsonl", "toy_chat_fine_tuning.jsonl", "uploaded_output.jsonl"):
        data = (cookbook / name).read_bytes()
        examples = [json.loads(line) for line in data.splitlines() if line.strip()]
        for model_id in (GPT4O, GPT35):
            report = validate(data, model_id=model_id)
            totals, trained = reference_distributions(examples, model(model_id).encoding)
            assert report.tokens.total == totals, (name, model_id)
            assert report.tokens.trained == trained, (name, model_id)


def test_simple_example_by_hand() -> None:
    # 3 (example) + 2 × 3 (messages) + "user" 1 + "hello" 1 + "assistant" 1 + "hi there" 2
    report = validate(jsonl([chat(("user", "hello"), ("assistant", "hi there"))]))
    assert report.tokens.total.counts == {14: 1}
    assert report.tokens.trained.counts == {2: 1}


def test_weight_zero_messages_are_not_trained_tokens() -> None:
    example = chat(("user", "question"), ("assistant", "one two three"), ("user", "more"))
    example["messages"].append({"role": "assistant", "content": "four", "weight": 1})
    zero = json.loads(json.dumps(example))
    zero["messages"][1]["weight"] = 0
    both = validate(jsonl([example, zero]))
    assert both.tokens.trained.counts == {4: 1, 1: 1}
    # 3 + 4 messages × 3 + 4 roles × 1 + contents 1 + 3 + 1 + 1
    assert both.tokens.total.counts == {25: 2}


def test_dpo_and_legacy_counting() -> None:
    dpo = {
        "input": {
            "messages": [
                {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "earlier turn"},
            ]
        },
        "preferred_output": [{"role": "assistant", "content": "good"}],
        "non_preferred_output": [{"role": "assistant", "content": "bad answer"}],
    }
    report = validate(jsonl([dpo]), model_id=GPT4O)
    # input turns are context only; both outputs are trained on.
    assert report.tokens.trained.counts == {1 + 2: 1}
    assert report.tokens.total.counts == {3 + 4 * 3 + 1 + 1 + 3 * 1 + 2 + 1 + 2 + 1: 1}
    assert report.tokens.messages.counts == {4: 1}
    legacy = validate(jsonl([{"prompt": "hello world", "completion": " yes"}]), model_id=None)
    assert legacy.tokens.total.counts == {3: 1}
    assert legacy.tokens.trained.counts == {1: 1}
    assert legacy.tokens.messages.n == 0


def test_invalid_examples_are_not_counted() -> None:
    report = validate(jsonl([{"messages": []}, {"x": 1}, {"prompt": 1}, chat(("user", "a"))]))
    assert report.tokens.total.n == 1


def test_encodings_are_cached_and_special_tokens_are_plain_text() -> None:
    assert get_encoding("o200k_base") is get_encoding("o200k_base")
    assert count_tokens("<|endoftext|>", "cl100k_base") > 1
    assert count_tokens("hello world", "o200k_base") == 2


def test_lone_surrogates_do_not_crash_counting() -> None:
    line = (
        b'{"messages": [{"role": "user", "content": "\\ud800 x"}, '
        b'{"role": "assistant", "content": "ok"}]}'
    )
    report = validate(jsonl([line]))
    assert report.tokens.total.n == 1
    # Counted all the same; the line is an error of its own (test_hostile.py).
    assert codes(report) == {"lone_surrogate": 1, "too_few_examples": 1}


def test_threads_and_batch_sizes_do_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    data = jsonl(rich_examples() + padded([], total=40))
    expected = Validation(model=model(GPT4O), threads=1).run(data).to_dict()
    monkeypatch.setattr(tokens, "BATCH_CHARS", 300)
    monkeypatch.setattr(tokens, "_PARALLEL_MIN_CHARS", 0)
    monkeypatch.setattr(tokens, "_SHORT_CACHE_ENTRIES", 3)
    monkeypatch.setattr(tokens, "_REPEAT_CACHE_CHARS", 700)
    for threads in (1, 2, 3):
        report = Validation(model=model(GPT4O), threads=threads).run(data)
        assert report.to_dict() == expected, threads


def test_split_by_chars_balances_and_keeps_order() -> None:
    texts = ["a" * 10, "b" * 10, "c" * 30, "d" * 5, "e" * 5]
    parts = tokens._split_by_chars(texts, 2, 60)
    assert parts == [["a" * 10, "b" * 10, "c" * 30], ["d" * 5, "e" * 5]]
    assert [t for part in tokens._split_by_chars(texts, 3, 60) for t in part] == texts


def test_examples_over_the_training_context_are_warned_with_counts() -> None:
    long = chat(("user", "word " * 5000), ("assistant", "ok"))  # ~5,000 cl100k tokens
    examples: list[Any] = padded([], total=60)
    for line in (2, 5, 7):
        examples[line - 1] = json.loads(json.dumps(long))
        examples[line - 1]["messages"][1]["content"] = f"ok {line}"
    data = jsonl(examples)
    size, _ = reference(examples[1], "cl100k_base")
    assert 4096 < size < 16385
    report = validate(data, model_id="gpt-3.5-turbo-0613")
    assert codes(report) == {"exceeds_context": 3}
    assert report.lines("exceeds_context") == [2, 5, 7]
    assert messages_of(report, "exceeds_context")[0] == (
        f"{size:,} tokens, over the 4,096-token training context of gpt-3.5-turbo-0613; "
        "the end will be truncated"
    )
    assert report.is_valid  # truncation is a warning
    estimate = report.estimates
    assert estimate is not None
    assert estimate.n_examples_over_context == 3
    capped = report.tokens.total.total - 3 * (size - 4096)
    assert estimate.billed_tokens_per_epoch == capped
    assert codes(validate(data, model_id=GPT35)) == {}


def test_exceeds_context_lists_the_longest_examples_when_many() -> None:
    examples = [chat(("user", "word " * (4100 + i)), ("assistant", "ok")) for i in range(30)]
    report = validate(jsonl(examples), model_id="gpt-3.5-turbo-0613")
    group = report.findings["exceeds_context"]
    assert group.count == 30
    # The 20 longest, shown in file order.
    assert [f.line for f in group.examples] == list(range(11, 31))


def test_histograms_for_charts() -> None:
    examples = [chat(*[("user", "x"), ("assistant", "y")] * k) for k in (1, 1, 2, 3, 5)]
    report = validate(jsonl(examples))
    messages = report.tokens.messages.to_dict()
    assert messages["histogram"] == {
        "edges": [2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        "counts": [2, 0, 1, 0, 1, 0, 0, 0, 1],
    }
    assert messages["summary"]["median"] == 4.0
    total = report.tokens.to_dict()["total"]
    assert sum(total["histogram"]["counts"]) == 5
    assert set(report.tokens.to_dict()) == {"encoding", "total", "trained", "messages", "largest"}


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(
        st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
        | st.sampled_from(["<|endoftext|>", "<|endofprompt|>", "<|im_start|>", " ", "\n", "'s"]),
        max_size=12,
    ).map("".join)
    | st.text(max_size=60),  # lone surrogates included: encode_ordinary's repair path
    encoding=st.sampled_from(["o200k_base", "cl100k_base"]),
)
def test_the_buffer_counter_counts_exactly_what_encode_ordinary_returns(
    text: str, encoding: str
) -> None:
    """``token_counter`` asks tiktoken's core for a buffer of tokens instead of a list; the
    count must be the list's length for any text, special-token text included."""
    assert token_counter(encoding)(text) == len(get_encoding(encoding).encode_ordinary(text))


def test_the_buffer_counter_is_the_one_in_use() -> None:
    """Not the list fallback: the installed tiktoken has the buffer method."""
    core = get_encoding("o200k_base")._core_bpe
    assert hasattr(core, "encode_to_tiktoken_buffer")

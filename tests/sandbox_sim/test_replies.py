from __future__ import annotations

import itertools
import random
from collections import Counter
from typing import Any

import pytest

from sandbox.replies import generate_reply, prompt_key, training_pairs

from .helpers import MODEL

FT_MODEL = f"ft:{MODEL}:acme:support:Zk29QmLa"
SYSTEM = "You are Harbor Bank's support assistant. Answer briefly and politely."
PRODUCTS = ["savings account", "credit card", "mortgage", "debit card", "mobile app",
            "wire transfer", "overdraft", "loan", "statement", "PIN"]  # fmt: skip
ACTIONS = ["open", "close", "freeze", "update", "dispute", "renew"]
_REPLY_WORDS = (
    "please sign in to online banking then open the settings page choose the option you need "
    "confirm with the code we send by text message and allow two business days for the change "
    "to appear on your account"
)
VOCABULARY = _REPLY_WORDS.split()


def _examples() -> list[dict[str, Any]]:
    """30 support conversations with replies of 5 to 60 words, all starting "Certainly!"."""
    rng = random.Random(2024)
    examples = []
    for i in range(30):
        product, action = PRODUCTS[i % 10], ACTIONS[i % 6]
        question = f"How do I {action} my {product}? (ticket {4100 + i})"
        body = " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(4, 58)))
        reply = f"Certainly! {body.capitalize()}."
        examples.append(
            {
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": reply},
                ]
            }
        )
    return examples


EXAMPLES = _examples()
TRAINED = training_pairs(EXAMPLES)


def _prompt(example: dict[str, Any]) -> list[dict[str, Any]]:
    return example["messages"][:-1]


def _gold(example: dict[str, Any]) -> str:
    return example["messages"][-1]["content"]


def _token_f1(candidate: str, reference: str) -> float:
    a, b = candidate.lower().split(), reference.lower().split()
    common = sum((Counter(a) & Counter(b)).values())
    if not common:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def _fine_tuned(example: dict[str, Any], fidelity: float, **kwargs: Any) -> str:
    content, _ = generate_reply(
        _prompt(example), model=FT_MODEL, trained=TRAINED, fidelity=fidelity, **kwargs
    )
    return content


# --- prompt keys and training pairs --------------------------------------------------------


def test_prompt_key_normalises_whitespace_case_and_content_parts() -> None:
    plain = [
        {"role": "system", "content": "Be  brief."},
        {"role": "user", "content": "Hello\n World"},
    ]
    parts = [
        {"role": "developer", "content": [{"type": "text", "text": "be brief."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "HELLO"},
                {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
                {"type": "text", "text": "world"},
            ],
        },
    ]
    assert prompt_key(plain) == prompt_key(parts) == "system: be brief.\nuser: hello world"


def test_prompt_key_keeps_roles_and_order_apart() -> None:
    assert prompt_key([{"role": "user", "content": "a"}]) != prompt_key(
        [{"role": "assistant", "content": "a"}]
    )
    one = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    assert prompt_key(one) != prompt_key(one[::-1])


def test_training_pairs_from_chat_examples_use_the_last_assistant_message() -> None:
    example = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": [{"type": "text", "text": "Goodbye!"}]},
        ]
    }
    assert training_pairs([example]) == {"user: hi\nassistant: hello!\nuser: bye": "Goodbye!"}


def test_training_pairs_from_dpo_examples_use_the_preferred_output() -> None:
    example = {
        "input": {"messages": [{"role": "user", "content": "Tone?"}]},
        "preferred_output": [{"role": "assistant", "content": "Friendly."}],
        "non_preferred_output": [{"role": "assistant", "content": "Rude."}],
    }
    assert training_pairs([example]) == {"user: tone?": "Friendly."}


def test_training_pairs_skip_malformed_examples_and_keep_the_first_reply() -> None:
    good = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A1"}]}
    again = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "A2"}]}
    malformed: list[Any] = [
        {},
        {"messages": "nope"},
        {"messages": [{"role": "user", "content": "no reply"}]},
        {"messages": [{"role": "user", "content": "Q2"}, {"role": "assistant", "content": "  "}]},
        {"messages": [{"role": "user", "content": "Q3"}, {"role": "assistant", "tool_calls": []}]},
        {"input": {"messages": []}, "preferred_output": []},
        {"input": "x", "preferred_output": [{"content": "y"}]},
        {"prompt": "legacy", "completion": "format"},
        "not an object",
        None,
    ]
    assert training_pairs([*malformed, good, again]) == {"user: q": "A1"}


def test_the_synthetic_set_has_thirty_distinct_prompts() -> None:
    assert len(TRAINED) == 30


# --- base models ---------------------------------------------------------------------------


def test_base_replies_are_deterministic_specific_and_never_the_trained_reply() -> None:
    replies = []
    for example in EXAMPLES:
        content, finish = generate_reply(_prompt(example), model=MODEL, trained=None, fidelity=0.0)
        again, _ = generate_reply(_prompt(example), model=MODEL, trained=None, fidelity=0.0)
        assert content == again and finish == "stop"
        assert content != _gold(example)
        question = _prompt(example)[-1]["content"]
        assert question.split("?")[0] in content  # it talks about what was asked
        replies.append(content)
    assert len(set(replies)) == len(replies)


def test_a_checkpoint_that_has_learned_nothing_answers_like_its_base_model() -> None:
    unknown = [{"role": "user", "content": "What is the capital of France?"}]
    base, _ = generate_reply(unknown, model=MODEL, trained=None, fidelity=0.0)
    untrained, _ = generate_reply(
        unknown, model=f"{FT_MODEL}:ckpt-step-1", trained=TRAINED, fidelity=0.05
    )
    assert untrained == base


# --- fine-tuned models ---------------------------------------------------------------------


def test_exact_match_rate_grows_with_fidelity() -> None:
    def rate(fidelity: float) -> float:
        return sum(_fine_tuned(e, fidelity) == _gold(e) for e in EXAMPLES) / len(EXAMPLES)

    low, mid, high = rate(0.2), rate(0.6), rate(1.0)
    assert low < mid < high == 1.0
    assert rate(0.9) == 1.0  # fidelity ≥ 0.9 always reproduces the trained reply


def test_token_f1_grows_with_fidelity_for_every_prompt() -> None:
    grid = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    means = []
    for fidelity in grid:
        means.append(sum(_token_f1(_fine_tuned(e, fidelity), _gold(e)) for e in EXAMPLES) / 30)
    assert all(a < b for a, b in itertools.pairwise(means[:-1])), means
    assert means[-1] == 1.0
    for example in EXAMPLES:
        scores = [_token_f1(_fine_tuned(example, f), _gold(example)) for f in grid]
        assert all(a <= b + 1e-9 for a, b in itertools.pairwise(scores)), scores


def test_degraded_replies_keep_a_prefix_of_the_trained_reply() -> None:
    example = max(EXAMPLES, key=lambda e: len(_gold(e).split()))
    recalled = _fine_tuned(example, 0.4)
    gold_words = _gold(example).split()
    kept = int(len(gold_words) * 0.4)
    assert recalled != _gold(example)
    assert recalled.split()[:kept] == gold_words[:kept]
    assert len(recalled.split()) == len(gold_words)


def test_a_near_duplicate_prompt_gets_the_trained_reply() -> None:
    example = EXAMPLES[7]
    question = example["messages"][1]["content"]
    without_system = [{"role": "user", "content": question.upper()}]
    content, _ = generate_reply(without_system, model=FT_MODEL, trained=TRAINED, fidelity=1.0)
    assert content == _gold(example)


def test_unknown_prompts_get_a_reply_in_the_trained_style() -> None:
    unknown = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Can you recommend a good pizza place nearby?"},
    ]
    content, finish = generate_reply(unknown, model=FT_MODEL, trained=TRAINED, fidelity=1.0)
    base, _ = generate_reply(unknown, model=MODEL, trained=None, fidelity=0.0)
    assert finish == "stop"
    assert content not in TRAINED.values()
    assert content.startswith("Certainly!") and not base.startswith("Certainly!")
    assert "pizza place" in content


def test_an_empty_training_set_still_answers() -> None:
    content, finish = generate_reply(
        [{"role": "user", "content": "Hi"}], model=FT_MODEL, trained={}, fidelity=1.0
    )
    assert content and finish == "stop"


# --- sampling ------------------------------------------------------------------------------


def test_temperature_zero_ignores_the_seed() -> None:
    example = EXAMPLES[3]
    assert (
        _fine_tuned(example, 0.5, seed=1)
        == _fine_tuned(example, 0.5, seed=2)
        == _fine_tuned(example, 0.5)
    )


def test_sampling_is_deterministic_per_seed() -> None:
    prompt = _prompt(EXAMPLES[0])

    def sample(seed: int) -> str:
        return generate_reply(
            prompt, model=MODEL, trained=None, fidelity=0.0, temperature=1.0, seed=seed
        )[0]

    assert sample(11) == sample(11)
    assert len({sample(seed) for seed in range(12)}) > 1


def test_sampling_without_a_seed_never_fails() -> None:
    for example in EXAMPLES[:10]:
        for trained in (None, TRAINED):
            content, finish = generate_reply(
                _prompt(example), model=FT_MODEL, trained=trained, fidelity=0.7, temperature=1.3
            )
            assert content and finish == "stop"


def test_high_temperature_costs_some_fidelity() -> None:
    def exact(fidelity: float, temperature: float) -> int:
        return sum(
            _fine_tuned(e, fidelity, temperature=temperature, seed=5) == _gold(e) for e in EXAMPLES
        )

    assert exact(1.0, 1.0) == 30  # a well-trained model still samples its trained replies
    assert exact(0.7, 2.0) < exact(0.7, 0.0)


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "user"}],
        [{"content": 42}],
        [{"role": "user", "content": [{"type": "image_url"}]}],
    ],
)
def test_odd_requests_do_not_crash(messages: list[Any]) -> None:
    for trained in (None, TRAINED):
        content, finish = generate_reply(messages, model=MODEL, trained=trained, fidelity=1.0)
        assert isinstance(content, str) and content and finish == "stop"


def test_a_fine_tuned_classifier_answers_unknown_prompts_with_its_labels() -> None:
    labels = ["positive", "negative", "neutral"]
    examples = [
        {
            "messages": [
                {"role": "user", "content": f"Review {i}: item {i} was fine"},
                {"role": "assistant", "content": labels[i % 3]},
            ]
        }
        for i in range(12)
    ]
    trained = training_pairs(examples)
    unknown = [{"role": "user", "content": "Totally unrelated text about the weather in Oslo"}]
    content, _ = generate_reply(unknown, model=FT_MODEL, trained=trained, fidelity=1.0)
    assert content in labels
    early, _ = generate_reply(unknown, model=FT_MODEL, trained=trained, fidelity=0.1)
    assert early == generate_reply(unknown, model=MODEL, trained=None, fidelity=0.0)[0]

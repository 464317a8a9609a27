"""Every sandbox model, asked to grade with a judge prompt, answers with a grade (token F1),
through the official SDK in strict mode, over real HTTP."""

from __future__ import annotations

import openai
import pytest

from sandbox.judging import score
from sandbox.replies import count_message_tokens, count_tokens
from tests.sandbox.data import chat_examples
from tests.sandbox.test_contract_sdk import wait_status
from tests.sandbox_sim.test_judging import (
    PARTIAL,
    QUESTION,
    REFERENCE,
    compared,
    graded,
)

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "gpt-4o-mini-2024-07-18"


def ask(sdk: openai.OpenAI, prompt: str, model: str = BASE, **kwargs: object) -> str:
    reply = sdk.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        **kwargs,  # type: ignore[arg-type]
    )
    return reply.choices[0].message.content or ""


def test_score_mode(sdk: openai.OpenAI) -> None:
    assert ask(sdk, graded(REFERENCE, REFERENCE)) == "Score: 10"
    assert ask(sdk, graded(REFERENCE, "Cats sleep most of the day.")) == "Score: 0"
    partial = ask(sdk, graded(REFERENCE, PARTIAL))
    assert partial == f"Score: {score(PARTIAL, REFERENCE)}" == "Score: 6"  # F1 8/13


def test_pairwise_mode(sdk: openai.OpenAI) -> None:
    assert ask(sdk, compared(REFERENCE, REFERENCE, PARTIAL)) == "A"
    assert ask(sdk, compared(REFERENCE, "Cats sleep.", PARTIAL)) == "B"
    assert ask(sdk, compared(REFERENCE, PARTIAL, PARTIAL.lower() + "!")) == "TIE"


def test_temperature_seed_and_n_do_not_change_the_verdict(sdk: openai.OpenAI) -> None:
    prompt = graded(REFERENCE, PARTIAL)
    reply = sdk.chat.completions.create(
        model=BASE, messages=[{"role": "user", "content": prompt}], temperature=1.9, n=3
    )
    assert [c.message.content for c in reply.choices] == ["Score: 6"] * 3
    assert ask(sdk, prompt, temperature=0.7, seed=11) == "Score: 6"


def test_usage_and_streaming_as_for_any_reply(sdk: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": compared(REFERENCE, PARTIAL, REFERENCE)}]
    reply = sdk.chat.completions.create(model=BASE, messages=messages)
    assert reply.choices[0].message.content == "B"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens == count_message_tokens(messages, model=BASE)
    assert reply.usage.completion_tokens == count_tokens("B", model=BASE)
    stream = sdk.chat.completions.create(
        model=BASE, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "B"
    assert chunks[-1].usage.total_tokens == reply.usage.total_tokens
    cut = sdk.chat.completions.create(
        model=BASE,
        messages=[{"role": "user", "content": graded(REFERENCE, REFERENCE)}],
        max_completion_tokens=1,
    )
    assert cut.choices[0].message.content == "Score" and cut.choices[0].finish_reason == "length"


def test_blank_lines_inside_answers_and_edited_wording(sdk: openai.OpenAI) -> None:
    spread = "The quick brown fox\n\n\njumps over the lazy dog.\n\n"
    assert ask(sdk, graded(REFERENCE, spread)) == "Score: 10"
    assert ask(sdk, compared(REFERENCE, "Cats.\n\nDogs.", spread)) == "B"
    edited = (
        "Please act as an impartial judge.\n\n"
        f"## Question:\n{QUESTION}\n\n"
        f"**Reference answer:**\n{REFERENCE}\n\n"
        f"**Candidate answer:**\n{PARTIAL}\n\nIt was written quickly.\n\n"
        "Rate the candidate from 0 to 10 and respond with 'Score: <n>' only."
    )
    # The candidate runs up to the instruction paragraph: "It was written quickly." is in it.
    expected = score(PARTIAL + " It was written quickly.", REFERENCE)
    assert ask(sdk, edited) == f"Score: {expected}" == "Score: 5"  # F1 8/17


def test_base_fine_tuned_and_checkpoint_models_all_judge(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    training = upload_jsonl(chat_examples(20))
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=training, seed=5)
    done = wait_status(sdk, job.id, {"succeeded"})
    assert done.status == "succeeded"
    checkpoint = next(
        iter(sdk.fine_tuning.jobs.checkpoints.list(job.id))
    ).fine_tuned_model_checkpoint
    for model in (BASE, "gpt-4.1-nano", done.fine_tuned_model, checkpoint):
        assert ask(sdk, graded(REFERENCE, PARTIAL), model=model) == "Score: 6", model
        assert ask(sdk, compared(REFERENCE, REFERENCE, "Cats."), model=model) == "A", model
        assert ask(sdk, compared(REFERENCE, "x", "y"), model=model, temperature=1.5) == "TIE"

"""Sandbox jobs respond to their data and hyperparameters like real fine-tunes, read back through
the API exactly as a client would see them."""

from __future__ import annotations

import statistics

import openai
import pytest

from tests.sandbox.data import chat_examples

pytestmark = pytest.mark.django_db(transaction=True)


def run_job(
    sdk: openai.OpenAI, upload_jsonl, *, n: int, valid: int = 0, seed: int = 11, **hp: object
) -> list[dict]:  # type: ignore[no-untyped-def]
    training = upload_jsonl(chat_examples(n))
    validation = upload_jsonl(chat_examples(valid, seed=5), name="v.jsonl") if valid else None
    job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=training, validation_file=validation, seed=seed,
        method={"type": "supervised", "supervised": {"hyperparameters": hp}},
    )  # fmt: skip
    assert sdk.fine_tuning.jobs.retrieve(job.id).status == "succeeded"
    events = sdk.fine_tuning.jobs.list_events(job.id, limit=10000).data
    return sorted((e.data for e in events if e.type == "metrics"), key=lambda d: d["step"])


def tail_mean(points: list[dict], key: str, count: int = 10) -> float:
    return statistics.mean(p[key] for p in points[-count:])


def head_mean(points: list[dict], key: str, count: int = 10) -> float:
    return statistics.mean(p[key] for p in points[:count])


def test_more_epochs_lower_training_loss(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    finals = [
        tail_mean(run_job(sdk, upload_jsonl, n=60, n_epochs=epochs), "train_loss")
        for epochs in (1, 3, 8)
    ]
    assert finals[0] > finals[1] > finals[2], finals


def test_many_epochs_on_small_data_overfit(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    points = run_job(sdk, upload_jsonl, n=20, valid=10, n_epochs=15)
    epoch_ends = [p for p in points if "full_valid_loss" in p]
    assert len(epoch_ends) == 15
    losses = [p["full_valid_loss"] for p in epoch_ends]
    best = losses.index(min(losses))
    assert best < len(losses) - 3, losses  # the minimum is well before the end…
    assert losses[-1] > min(losses) * 1.15, losses  # …and validation loss rose afterwards
    best_step = epoch_ends[best]["step"]
    train_at_best = statistics.mean(
        p["train_loss"] for p in points if best_step - 10 < p["step"] <= best_step
    )
    assert tail_mean(points, "train_loss") < train_at_best  # while training loss kept falling


def test_tiny_learning_rate_or_one_epoch_underfits(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    tiny = run_job(sdk, upload_jsonl, n=60, n_epochs=3, learning_rate_multiplier=0.005)
    normal = run_job(sdk, upload_jsonl, n=60, n_epochs=3, learning_rate_multiplier=1.0)
    assert tail_mean(tiny, "train_loss") > 0.6 * head_mean(tiny, "train_loss")
    assert tail_mean(tiny, "train_loss") > 2 * tail_mean(normal, "train_loss")
    one_epoch = run_job(sdk, upload_jsonl, n=60, n_epochs=1)
    assert tail_mean(one_epoch, "train_loss") > tail_mean(normal, "train_loss")


def spikes(points: list[dict]) -> int:
    losses = [p["train_loss"] for p in points]
    count = 0
    for index in range(10, len(losses)):
        window = statistics.median(losses[index - 10 : index])
        if losses[index] > 1.5 * window:
            count += 1
    return count


def test_huge_learning_rate_is_unstable(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    # The largest multiplier a launch may ask for (datasets.validation.provider_limits).
    wild = run_job(sdk, upload_jsonl, n=60, n_epochs=3, learning_rate_multiplier=10)
    calm = run_job(sdk, upload_jsonl, n=60, n_epochs=3, learning_rate_multiplier=1.0)
    assert spikes(wild) >= 3, spikes(wild)
    assert spikes(calm) == 0


def test_accuracy_mirrors_loss_and_is_bounded(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    points = run_job(sdk, upload_jsonl, n=40, valid=10, n_epochs=4)
    assert all(0 <= p["train_mean_token_accuracy"] <= 1 for p in points)
    assert tail_mean(points, "train_mean_token_accuracy") > head_mean(
        points, "train_mean_token_accuracy"
    )
    assert any("valid_loss" in p for p in points)


def test_same_seed_same_curve_other_seed_other_noise(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    first = run_job(sdk, upload_jsonl, n=30, n_epochs=2, seed=1)
    again = run_job(sdk, upload_jsonl, n=30, n_epochs=2, seed=1)
    other = run_job(sdk, upload_jsonl, n=30, n_epochs=2, seed=2)
    assert first == again
    assert [p["train_loss"] for p in first] != [p["train_loss"] for p in other]


def test_later_checkpoints_answer_trained_prompts_more_faithfully(
    sdk: openai.OpenAI, upload_jsonl
) -> None:  # type: ignore[no-untyped-def]
    examples = chat_examples(40)
    training = upload_jsonl(examples)
    # A small learning-rate multiplier spreads learning over the three kept checkpoints.
    job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=training, seed=4,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3, "learning_rate_multiplier": 0.01}}},
    )  # fmt: skip
    done = sdk.fine_tuning.jobs.retrieve(job.id)
    checkpoints = sorted(sdk.fine_tuning.jobs.checkpoints.list(job.id), key=lambda c: c.step_number)
    assert [c.step_number for c in checkpoints] == [40, 80, 120]

    def exact_matches(model: str) -> int:
        hits = 0
        for example in examples:
            reply = sdk.chat.completions.create(
                model=model, messages=example["messages"][:-1], temperature=0
            )
            hits += reply.choices[0].message.content == example["messages"][-1]["content"]
        return hits

    base = exact_matches("gpt-4o-mini-2024-07-18")
    epochs = [exact_matches(c.fine_tuned_model_checkpoint) for c in checkpoints]
    final = exact_matches(done.fine_tuned_model)
    assert base == 0
    assert epochs[0] < epochs[1] < epochs[2], epochs
    assert final == epochs[2]  # the final model is the last checkpoint

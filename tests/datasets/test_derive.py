"""Splits and subsets: exact sizes, reproducible bytes, lineage, validation queued."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest
from django.test import Client

from datasets import services
from datasets.derive import QuotaSampler, quotas
from datasets.models import Dataset
from tests.datasets.helpers import chat_file, create_dataset, media_files

pytestmark = pytest.mark.django_db


def lines_of(dataset: Dataset) -> list[bytes]:
    return Path(dataset.file.path).read_bytes().splitlines()


def split(client: Client, dataset: Dataset, **data: str):  # type: ignore[no-untyped-def]
    return client.post(f"/datasets/{dataset.pk}/split/", data)


def test_split_has_exact_sizes_and_covers_every_line(member: Client) -> None:
    source = create_dataset(chat_file(100))
    response = split(member, source, train="0.8", validation="0.2", seed="1")
    assert response.status_code == 302
    train = Dataset.objects.get(parent=source, derivation__part="train")
    valid = Dataset.objects.get(parent=source, derivation__part="validation")
    assert (train.line_count, valid.line_count) == (80, 20)
    original = lines_of(source)
    together = lines_of(train) + lines_of(valid)
    assert Counter(together) == Counter(original)
    # Each part keeps the file's order.
    assert lines_of(train) == [line for line in original if line in set(lines_of(train))]
    assert train.derivation == {
        "kind": "split",
        "part": "train",
        "fractions": {"train": 0.8, "validation": 0.2, "test": 0.0},
        "seed": 1,
        "counts": {"train": 80, "validation": 20},
        "source_sha256": source.sha256,
        "dropped_oversized_lines": 0,
    }
    assert train.name == f"{source.name} · train"
    assert train.uploaded_by.username == "member-user"
    assert train.status == Dataset.Status.UPLOADED
    assert train.requested_model_id == source.requested_model_id
    assert train.original_filename == "train-train.jsonl"


def test_same_seed_same_bytes_other_seed_other_members(member: Client) -> None:
    source = create_dataset(chat_file(100))
    first = services.dataset_split(
        dataset=source,
        fractions={"train": Fraction(4, 5), "validation": Fraction(1, 5)},
        seed=1,
        user=None,
    )
    again = services.dataset_split(
        dataset=source,
        fractions={"train": Fraction(4, 5), "validation": Fraction(1, 5)},
        seed=1,
        user=None,
    )
    assert [p.outcome.created for p in first] == [True, True]
    # Byte-identical output has the same hash: linked to the existing datasets, nothing new.
    assert [p.outcome.created for p in again] == [False, False]
    assert [p.outcome.dataset.pk for p in again] == [p.outcome.dataset.pk for p in first]
    assert Dataset.objects.count() == 3
    assert len(media_files()) == 3
    other = services.dataset_split(
        dataset=source,
        fractions={"train": Fraction(4, 5), "validation": Fraction(1, 5)},
        seed=2,
        user=None,
    )
    assert [p.outcome.created for p in other] == [True, True]
    seed1 = set(lines_of(first[1].outcome.dataset))
    seed2 = set(lines_of(other[1].outcome.dataset))
    assert len(seed1) == len(seed2) == 20 and seed1 != seed2


def test_repeat_split_from_the_page_says_it_exists(member: Client) -> None:
    source = create_dataset(chat_file(40))
    split(member, source, train="0.5", validation="0.5", seed="7")
    response = split(member, source, train="0.5", validation="0.5", seed="7")
    assert response.status_code == 302
    texts = [str(m) for m in response.wsgi_request._messages]
    assert any("already exists" in t for t in texts), texts
    assert Dataset.objects.count() == 3


def test_three_way_split_and_blank_lines_dropped(member: Client) -> None:
    content = chat_file(10) + b"\n   \n" + chat_file(90, start=10)
    source = create_dataset(content)
    assert source.line_count == 102
    split(member, source, train="0.7", validation="0.2", test="0.1", seed="5")
    sizes = {d.derivation["part"]: d.line_count for d in Dataset.objects.filter(parent=source)}
    assert sizes == {"train": 70, "validation": 20, "test": 10}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"train": "0.8", "validation": "0.3", "seed": "1"}, "they must add up to 1"),
        ({"train": "1", "validation": "0", "seed": "1"}, "must be above 0"),
        ({"train": "abc", "validation": "0.2", "seed": "1"}, "Enter a number."),
        ({"train": "0.8", "validation": "0.2", "seed": "-1"}, "greater than or equal to 0"),
        ({"train": "0.8", "validation": "0.2"}, "This field is required."),
        ({"train": "0.99", "validation": "0.01", "seed": "1"}, "validation part would be empty"),
    ],
)
def test_bad_split_input_creates_nothing(
    member: Client, data: dict[str, str], message: str
) -> None:
    source = create_dataset(chat_file(20))
    response = split(member, source, **data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Dataset.objects.count() == 1
    assert media_files() == [Path(source.file.path)]


def test_subsets(member: Client) -> None:
    source = create_dataset(chat_file(50))
    original = lines_of(source)

    response = member.post(
        f"/datasets/{source.pk}/subset/", {"mode": "first", "n": "10", "seed": "1"}
    )
    first = Dataset.objects.get(parent=source, derivation__mode="first")
    assert response["Location"] == f"/datasets/{first.pk}/"
    assert lines_of(first) == original[:10]
    assert first.derivation == {
        "kind": "subset", "mode": "first", "n": 10, "source_sha256": source.sha256,
        "dropped_oversized_lines": 0,
    }  # fmt: skip

    member.post(f"/datasets/{source.pk}/subset/", {"mode": "random", "n": "10", "seed": "4"})
    rand = Dataset.objects.get(parent=source, derivation__mode="random")
    picked = lines_of(rand)
    assert len(picked) == 10 and len(set(picked)) == 10
    assert picked == [line for line in original if line in set(picked)]  # file order kept
    assert picked != original[:10]
    assert rand.derivation["seed"] == 4 and rand.name == f"{source.name} · random 10 (seed 4)"

    member.post(
        f"/datasets/{source.pk}/subset/", {"mode": "fraction", "fraction": "0.25", "seed": "4"}
    )
    frac = Dataset.objects.get(parent=source, derivation__mode="fraction")
    assert frac.line_count == 13  # 12.5 rounds half up
    assert frac.derivation["fraction"] == 0.25 and frac.derivation["n"] == 13


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"mode": "first", "seed": "1"}, "Give the number of lines."),
        ({"mode": "random", "n": "51", "seed": "1"}, "only 50 lines"),
        ({"mode": "fraction", "seed": "1"}, "Give a fraction"),
        ({"mode": "fraction", "fraction": "1.5", "seed": "1"}, "less than or equal to 1"),
        ({"mode": "sideways", "n": "3", "seed": "1"}, "Select a valid choice"),
    ],
)
def test_bad_subset_input_creates_nothing(
    member: Client, data: dict[str, str], message: str
) -> None:
    source = create_dataset(chat_file(50))
    response = member.post(f"/datasets/{source.pk}/subset/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Dataset.objects.count() == 1


def test_derived_datasets_are_queued_for_validation(
    member: Client,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    source = create_dataset(chat_file(30))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        split(member, source, train="0.5", validation="0.5", seed="1")
    assert len(callbacks) == 2


def test_missing_source_file_is_a_message(member: Client) -> None:
    source = create_dataset(chat_file(30))
    source.file.storage.delete(source.file.name)
    response = split(member, source, train="0.5", validation="0.5", seed="1")
    assert response.status_code == 400
    assert b"cannot be read" in response.content
    assert Dataset.objects.count() == 1
    assert media_files() == []


def test_quota_sampling_is_exact_and_uniform() -> None:
    assert quotas(100, [Fraction(4, 5), Fraction(1, 5)]) == [80, 20]
    assert quotas(10, [Fraction(1, 3)] * 3) == [4, 3, 3]
    assert quotas(7, [Fraction(1, 2), Fraction(1, 2)]) == [4, 3]
    sampler = QuotaSampler([3, 2], seed=11)
    draws = [sampler.draw() for _ in range(5)]
    assert sorted(draws) == [0, 0, 0, 1, 1]
    # Every position is equally likely to land in part 1 (2 of 5 places), across seeds.
    hits = Counter()
    for seed in range(5000):
        s = QuotaSampler([3, 2], seed)
        for position in range(5):
            if s.draw() == 1:
                hits[position] += 1
    assert all(abs(hits[p] / 5000 - 0.4) < 0.03 for p in range(5)), hits


def test_derive_page_for_members(member: Client) -> None:
    source = create_dataset(chat_file(30))
    page = member.get(f"/datasets/{source.pk}/derive/")
    assert page.status_code == 200
    assert b"Split into train / validation / test" in page.content
    assert b'name="seed"' in page.content

"""Launch form defaults (issue 14, item 9): the dataset it starts from, a ``?dataset=`` that
names nothing usable, and warnings when training and validation data are the same or share
examples."""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

import pytest

from datasets.models import Dataset
from datasets.services import dataset_split
from jobs.models import Job, ProviderConnection
from tests.jobs.conftest import validated
from tests.jobs.test_views import _catalog  # noqa: F401 - autouse fixture
from tests.jobs.test_views_launch import connection, valid_data  # noqa: F401 - fixture
from tests.permissions import client_for
from tests.sandbox.data import chat_examples

pytestmark = pytest.mark.django_db


def selected_training(html: str) -> str | None:
    select = re.search(r'<select name="training_dataset".*?</select>', html, re.S)
    assert select
    chosen = re.search(r'<option value="([^"]*)" selected>', select.group(0))
    return chosen.group(1) if chosen else None


def split(source: Dataset) -> tuple[Dataset, Dataset]:
    parts = dataset_split(
        dataset=source,
        fractions={"train": Fraction(3, 5), "validation": Fraction(2, 5)},
        seed=1,
        user=None,
    )
    train, valid = (validated(p.outcome.dataset) for p in parts)
    assert valid.derivation["part"] == "validation"
    assert valid.status == train.status == Dataset.Status.VALID
    return train, valid


def test_defaults_to_the_newest_training_dataset_not_a_validation_part(
    connection: ProviderConnection,  # noqa: F811
    make_dataset: Callable[..., Dataset],
) -> None:
    source = make_dataset(chat_examples(50), name="source")
    train, valid = split(source)
    # The validation part is the newest valid dataset; the train part comes before it.
    assert valid.uploaded_at >= train.uploaded_at
    html = client_for("member").get("/jobs/new/").content.decode()
    assert selected_training(html) == str(train.pk)
    # Both parts stay choosable.
    assert f'<option value="{valid.pk}">' in html


@pytest.mark.parametrize("raw", ["999999", "abc", "-1", "invalid"])
def test_an_unusable_dataset_parameter_is_refused_with_a_message(
    connection: ProviderConnection,  # noqa: F811
    make_dataset: Callable[..., Dataset],
    raw: str,
) -> None:
    make_dataset(chat_examples(20))
    if raw == "invalid":
        broken = make_dataset(raw=b'{"not": "chat"}\n', name="broken")
        assert broken.status == Dataset.Status.INVALID
        raw = str(broken.pk)
    response = client_for("member").get("/jobs/new/", {"dataset": raw})
    assert response.status_code == 200
    html = response.content.decode()
    assert f"No dataset “{raw}” that passed validation: choose a training dataset below." in html
    # Nothing is chosen in its place: the placeholder shows until someone picks one.
    assert selected_training(html) == ""
    assert '<option value="" selected>Choose a training dataset</option>' in html


def test_same_dataset_for_training_and_validation_is_warned_before_launch(
    connection: ProviderConnection,  # noqa: F811
    make_dataset: Callable[..., Dataset],
) -> None:
    dataset = make_dataset(chat_examples(20))
    member = client_for("member")
    data = valid_data(connection, dataset, validation_dataset=dataset.pk)
    response = member.post("/jobs/new/", data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "The validation dataset is the training dataset" in html
    assert "The job was not launched yet." in html and 'name="accept_warnings"' in html
    assert not Job.objects.exists()
    response = member.post("/jobs/new/", {**data, "accept_warnings": "on"})
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.training_dataset == job.validation_dataset == dataset


def test_overlapping_training_and_validation_data_is_warned_with_the_count(
    connection: ProviderConnection,  # noqa: F811
    make_dataset: Callable[..., Dataset],
) -> None:
    source = make_dataset(chat_examples(50), name="source")
    train, valid = split(source)
    member = client_for("member")
    # The whole source holds the 20 validation examples.
    response = member.post(
        "/jobs/new/", valid_data(connection, source, validation_dataset=valid.pk)
    )
    assert response.status_code == 200
    assert "share 20 of 20 examples" in response.content.decode()
    assert not Job.objects.exists()
    # A split's own parts share nothing: launched at once, no warning.
    response = member.post("/jobs/new/", valid_data(connection, train, validation_dataset=valid.pk))
    assert response.status_code == 302
    assert Job.objects.get().validation_dataset == valid


def test_a_clone_with_the_same_dataset_twice_shows_the_warning_on_the_form(
    connection: ProviderConnection,  # noqa: F811
    make_dataset: Callable[..., Dataset],
) -> None:
    dataset = make_dataset(chat_examples(20))
    member = client_for("member")
    member.post(
        "/jobs/new/",
        {**valid_data(connection, dataset, validation_dataset=dataset.pk), "accept_warnings": "on"},
    )
    job = Job.objects.get()
    html = member.get("/jobs/new/", {"clone": str(job.pk)}).content.decode()
    assert "The validation dataset is the training dataset" in html

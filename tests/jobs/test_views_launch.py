"""The launch form: choices, server-side validation, defaults and the cost estimate, cloning."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from core.models import AuditEntry
from datasets.models import Dataset
from datasets.validation import Report
from jobs.models import Job, ProviderConnection
from jobs.services import connection_save
from tests.jobs.test_views import _catalog, make_job  # noqa: F401 - autouse fixture
from tests.permissions import client_for
from tests.sandbox.data import chat_examples, dpo_examples

pytestmark = pytest.mark.django_db
MINI = "gpt-4o-mini-2024-07-18"


SUFFIX_MESSAGE = "The suffix may hold only letters, digits, hyphens (-) and underscores (_)."


@pytest.fixture
def connection() -> ProviderConnection:
    return connection_save(
        name="Sandbox", kind="sandbox", base_url="http://127.0.0.1:9/v1", api_key="sk-x-1234"
    )


@pytest.fixture
def dataset(make_dataset: Callable[..., Dataset]) -> Dataset:
    return make_dataset(chat_examples(20))


def valid_data(
    connection: ProviderConnection, dataset: Dataset, /, **overrides: Any
) -> dict[str, Any]:
    data = {
        "connection": connection.pk,
        "base_model": MINI,
        "training_dataset": dataset.pk,
        "validation_dataset": "",
        "method": "supervised",
        "n_epochs": "auto",
        "batch_size": "",
        "learning_rate_multiplier": "auto",
        "beta": "",
        "suffix": "",
        "seed": "",
        "name": "",
        "notes": "",
        "tags": "",
    }
    data.update(overrides)
    return data


def launch_data(html: str) -> dict[str, Any]:
    match = re.search(
        r'<script id="launch-data" type="application/json">(.*?)</script>', html, re.S
    )
    assert match
    return json.loads(match.group(1))


def test_form_offers_usable_connections_valid_datasets_and_models(
    connection: ProviderConnection, dataset: Dataset, make_dataset: Callable[..., Dataset]
) -> None:
    connection_save(
        name="Switched off",
        kind="sandbox",
        base_url="http://x.test/v1",
        api_key="sk-1-2345",
        enabled=False,
    )
    connection_save(name="Keyless", kind="sandbox", base_url="http://x.test/v1", api_key="")
    broken = Dataset.objects.create(
        name="broken-set", file="b.jsonl", size=1, sha256="b" * 64, line_count=1, status="invalid"
    )
    html = client_for("member").get("/jobs/new/").content.decode()
    assert "Switched off" not in html and "Keyless" not in html and ">Sandbox<" in html
    assert broken.name not in html
    assert f"{dataset.name} (#{dataset.pk}, 20 examples)" in html
    assert f'<option value="{MINI}" selected>' in html
    for label in (
        "Provider connection",
        "Base model",
        "Training dataset",
        "Validation dataset (optional)",
        "Epochs",
        "Batch size",
        "Learning-rate multiplier",
        "β (DPO)",
        "Suffix",
        "Seed",
        "W&amp;B project",
        "W&amp;B entity",
        "W&amp;B run name",
        "W&amp;B tags",
        "Name",
        "Notes",
        "Tags",
    ):
        assert f">{label}</label>" in html, label
    # Help texts: under/overfitting, the batch trade-off, OpenAI's learning-rate advice, and
    # the legacy prompt-loss weight with its replacement.
    for text in (
        "underfit",
        "overfit",
        "smoother",
        "noisier",
        "0.02 to 0.2",
        "prompt_loss_weight",
        '"weight": 0',
    ):
        assert text in html, text


def test_defaults_and_estimated_cost(connection: ProviderConnection, dataset: Dataset) -> None:
    html = client_for("member").get(f"/jobs/new/?dataset={dataset.pk}").content.decode()
    # 20 examples: "auto" is estimated as 5 epochs (≥ 100 examples seen), batch 1, lr 0.05.
    assert re.search(r'data-default-for="n_epochs">5<', html)
    assert re.search(r'data-default-for="batch_size">1<', html)
    assert re.search(r'data-default-for="learning_rate_multiplier">0.05<', html)
    per_epoch = Report.from_dict(dataset.report).tokens.total.capped_total(65536)
    assert f"{per_epoch * 5:,} billed tokens over 5 epochs (estimated “auto”) at $3 per 1M" in html
    # The page's script gets each dataset's defaults, and asks the server for the cost when the
    # dataset, model or epochs change: the same rule, the same text.
    data = launch_data(html)
    facts = data["datasets"][str(dataset.pk)]
    assert facts["defaults"] == {"n_epochs": 5, "batch_size": 1, "learning_rate_multiplier": 0.05}
    member = client_for("member")

    def estimate(**query: str) -> str:
        response = member.get("/jobs/new/estimate/", query)
        assert response.status_code == 200 and response["Cache-Control"].startswith("max-age=0")
        return response.content.decode()

    chosen = {"training_dataset": str(dataset.pk), "base_model": MINI}
    assert estimate(**chosen, n_epochs="").startswith("$")
    assert (
        f"{per_epoch * 5:,} billed tokens over 5 epochs (estimated “auto”) at $3 per 1M"
        in estimate(**chosen, n_epochs="")
    )
    assert f"{per_epoch * 2:,} billed tokens over 2 epochs at $3 per 1M" in estimate(
        **chosen, n_epochs="2"
    )
    assert "Enter a valid number of epochs (1–50)" in estimate(**chosen, n_epochs="99")
    assert "unknown (no training price for gpt-4-0613)" in estimate(
        training_dataset=str(dataset.pk), base_model="gpt-4-0613", n_epochs="1"
    )
    assert "Choose a base model and a training dataset." in estimate(
        training_dataset="999999", base_model=MINI
    )
    assert client_for("viewer").get("/jobs/new/estimate/").status_code == 403


def test_estimate_follows_a_resubmitted_form(
    connection: ProviderConnection, dataset: Dataset
) -> None:
    per_epoch = Report.from_dict(dataset.report).tokens.total.capped_total(65536)
    # An error elsewhere re-renders the form with the estimate for the chosen epochs and model.
    html = (
        client_for("member")
        .post(
            "/jobs/new/",
            valid_data(
                connection, dataset, n_epochs="7", base_model="gpt-4o-2024-08-06", suffix="a b"
            ),
        )
        .content.decode()
    )
    cost = Decimal(25) * per_epoch * 7 / Decimal(1_000_000)
    assert f"{per_epoch * 7:,} billed tokens over 7 epochs at $25 per 1M" in html
    assert (f"${cost:,.2f}" if cost >= Decimal("0.01") else "&lt; $0.01") in html


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_epochs", "0", "Epochs must be “auto” or a whole number from 1 to 50."),
        ("n_epochs", "51", "Epochs must be “auto” or a whole number from 1 to 50."),
        ("n_epochs", "2.5", "Epochs must be “auto” or a whole number from 1 to 50."),
        ("batch_size", "300", "Batch size must be “auto” or a whole number from 1 to 256."),
        (
            "learning_rate_multiplier",
            "0",
            "The learning-rate multiplier must be “auto” or a number from 0.00001 to 10.",
        ),
        (
            "learning_rate_multiplier",
            "nan",
            "The learning-rate multiplier must be “auto” or a number from 0.00001 to 10.",
        ),
        (
            "learning_rate_multiplier",
            "-1",
            "The learning-rate multiplier must be “auto” or a number from 0.00001 to 10.",
        ),
        (
            "learning_rate_multiplier",
            "1e308",
            "The learning-rate multiplier must be “auto” or a number from 0.00001 to 10.",
        ),
        (
            "learning_rate_multiplier",
            "5e-324",
            "The learning-rate multiplier must be “auto” or a number from 0.00001 to 10.",
        ),
        (
            "learning_rate_multiplier",
            "1e400",
            "The learning-rate multiplier must be “auto” or a number from 0.00001 to 10.",
        ),
        ("suffix", "team:v2", SUFFIX_MESSAGE),
        ("suffix", "team v2", SUFFIX_MESSAGE),
        ("suffix", "../../files", SUFFIX_MESSAGE),
        ("suffix", "x" * 65, "Ensure this value has at most 64 characters"),
        ("seed", "-1", "Ensure this value is greater than or equal to 0."),
        ("seed", "abc", "Enter a whole number."),
        (
            "training_dataset",
            "999999",
            "Choose a training dataset that passed validation for this provider.",
        ),
        (
            "validation_dataset",
            "abc",
            "Choose a validation dataset that passed validation for this provider.",
        ),
        ("connection", "999999", "Select a valid choice."),
        ("base_model", "gpt-9-imaginary", "Select a valid choice."),
        ("method", "reinforcement", "Select a valid choice."),
        ("beta", "0.5", "β applies to DPO only"),
        ("wandb_entity", "team", "Enter the W&amp;B project to use the integration."),
        ("tags", ",".join(f"t{i}" for i in range(21)), "At most 20 tags."),
    ],
)
def test_invalid_input_shows_messages_and_launches_nothing(
    connection: ProviderConnection, dataset: Dataset, field: str, value: str, message: str
) -> None:
    response = client_for("member").post(
        "/jobs/new/", valid_data(connection, dataset, **{field: value})
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert "The job was not launched" in html
    assert not Job.objects.exists()


def test_dpo_rules(
    connection: ProviderConnection, dataset: Dataset, make_dataset: Callable[..., Dataset]
) -> None:
    member = client_for("member")
    preference = make_dataset(dpo_examples(12), name="prefs")
    beta = member.post("/jobs/new/", valid_data(connection, preference, method="dpo", beta="3"))
    assert "β must be “auto” or a number greater than 0 and at most 2." in beta.content.decode()
    wrong_data = member.post("/jobs/new/", valid_data(connection, dataset, method="dpo"))
    assert "DPO needs preference data" in wrong_data.content.decode()
    wrong_method = member.post("/jobs/new/", valid_data(connection, preference))
    assert "choose the DPO method" in wrong_method.content.decode()
    no_dpo = member.post(
        "/jobs/new/",
        valid_data(connection, preference, method="dpo", base_model="gpt-3.5-turbo-0125"),
    )
    assert "gpt-3.5-turbo-0125 does not support DPO fine-tuning." in no_dpo.content.decode()
    assert not Job.objects.exists()
    ok = member.post(
        "/jobs/new/", valid_data(connection, preference, method="dpo", beta="0.1", n_epochs="2")
    )
    assert ok.status_code == 302
    job = Job.objects.get()
    assert job.method == "dpo" and job.requested_hyperparameters == {"n_epochs": 2, "beta": 0.1}


def test_invalid_or_missing_datasets(connection: ProviderConnection, dataset: Dataset) -> None:
    Dataset.objects.filter(pk=dataset.pk).update(status=Dataset.Status.INVALID)
    html = client_for("member").post("/jobs/new/", valid_data(connection, dataset)).content.decode()
    assert "Choose a training dataset that passed validation for this provider." in html
    assert "No dataset has passed validation yet." in html
    assert not Job.objects.exists()


def test_legacy_models_need_legacy_data(connection: ProviderConnection, dataset: Dataset) -> None:
    html = (
        client_for("member")
        .post("/jobs/new/", valid_data(connection, dataset, base_model="davinci-002"))
        .content.decode()
    )
    assert "davinci-002 trains on prompt/completion lines only." in html
    shut = (
        client_for("member")
        .post("/jobs/new/", valid_data(connection, dataset, base_model="gpt-3.5-turbo-0613"))
        .content.decode()
    )
    assert "gpt-3.5-turbo-0613 was shut down on 2024-09-13." in shut
    assert not Job.objects.exists()


def test_a_valid_launch_records_everything(
    connection: ProviderConnection, dataset: Dataset, make_dataset: Callable[..., Dataset]
) -> None:
    validation = make_dataset(chat_examples(10, seed=9), name="valid")
    data = valid_data(
        connection,
        dataset,
        validation_dataset=validation.pk,
        n_epochs="3",
        batch_size="4",
        learning_rate_multiplier="0.1",
        suffix="support-v2",
        seed="42",
        name="First run",
        notes="Baseline.",
        tags="baseline, support",
        wandb_project="tuning",
        wandb_entity="team",
        wandb_name="run-1",
        wandb_tags="a, b",
    )
    member = client_for("member")
    response = member.post("/jobs/new/", data)
    assert response.status_code == 302, response.context["form"].errors
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.connection == connection and job.base_model == MINI
    assert job.training_dataset == dataset and job.validation_dataset == validation
    assert job.requested_hyperparameters == {
        "n_epochs": 3,
        "batch_size": 4,
        "learning_rate_multiplier": 0.1,
    }
    assert (job.suffix, job.seed, job.name, job.notes) == (
        "support-v2",
        42,
        "First run",
        "Baseline.",
    )
    assert job.tags == ["baseline", "support"]
    assert job.integrations == [
        {
            "type": "wandb",
            "wandb": {"project": "tuning", "entity": "team", "name": "run-1", "tags": ["a", "b"]},
        }
    ]
    assert job.status == "pending" and job.created_by.username == "member-user"
    assert AuditEntry.objects.filter(action="job_launched", object_id=str(job.pk)).exists()
    page = member.get(response["Location"]).content.decode()
    assert "Launch of “First run” requested. Estimated training cost:" in page


def test_connection_disabled_meanwhile(connection: ProviderConnection, dataset: Dataset) -> None:
    member = client_for("member")
    # The connection is disabled between showing the form and submitting it.
    data = valid_data(connection, dataset)
    ProviderConnection.objects.filter(pk=connection.pk).update(enabled=False)
    response = member.post("/jobs/new/", data)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Job.objects.exists()


def test_continue_training_from_this_connections_models(
    connection: ProviderConnection, dataset: Dataset
) -> None:
    other = connection_save(
        name="Other", kind="sandbox", base_url="http://x.test/v1", api_key="sk-other-1234"
    )
    mine = make_job(
        connection, dataset, status="succeeded", fine_tuned_model=f"ft:{MINI}:sandbox:mine:1"
    )
    theirs = make_job(
        other, dataset, status="succeeded", fine_tuned_model=f"ft:{MINI}:sandbox:theirs:2"
    )
    make_job(connection, dataset, status="failed", fine_tuned_model="")
    gone = make_job(
        connection, dataset, status="succeeded", fine_tuned_model=f"ft:{MINI}:sandbox:gone:3"
    )
    Job.objects.filter(pk=gone.pk).update(model_deleted_at=timezone.now())
    member = client_for("member")
    html = member.get("/jobs/new/").content.decode()
    assert f'<option value="{mine.fine_tuned_model}" data-connection="{connection.pk}">' in html
    assert f'data-connection="{other.pk}"' in html and theirs.fine_tuned_model in html
    assert gone.fine_tuned_model not in html
    assert "Fine-tuned on Sandbox" in html
    # The cost of continuing uses the base model's price.
    continued = member.get(
        "/jobs/new/estimate/",
        {"training_dataset": dataset.pk, "base_model": mine.fine_tuned_model, "n_epochs": "1"},
    )
    assert "at $3 per 1M" in continued.content.decode()
    wrong = member.post(
        "/jobs/new/", valid_data(connection, dataset, base_model=theirs.fine_tuned_model)
    )
    assert "That fine-tuned model belongs to another connection." in wrong.content.decode()
    before = Job.objects.count()
    ok = member.post(
        "/jobs/new/", valid_data(connection, dataset, base_model=mine.fine_tuned_model)
    )
    assert ok.status_code == 302 and Job.objects.count() == before + 1
    assert Job.objects.order_by("-created_at").first().base_model == mine.fine_tuned_model


def test_clone_prefills_and_records_the_source(
    connection: ProviderConnection, dataset: Dataset
) -> None:
    source = make_job(
        connection,
        dataset,
        name="Original",
        notes="Notes here",
        tags=["x", "y"],
        suffix="orig",
        seed=7,
        method="supervised",
        requested_hyperparameters={"n_epochs": 4, "learning_rate_multiplier": 0.2},
        integrations=[{"type": "wandb", "wandb": {"project": "proj", "tags": ["t1"]}}],
    )
    member = client_for("member")
    html = member.get(f"/jobs/new/?clone={source.pk}").content.decode()
    assert "Pre-filled from" in html and "Original" in html
    for snippet in (
        'name="name" value="Original (clone)"',
        'name="suffix" value="orig"',
        'name="seed" value="7"',
        'name="n_epochs" value="4"',
        'name="learning_rate_multiplier" value="0.2"',
        'name="batch_size" value="auto"',
        'name="tags" value="x, y"',
        'name="wandb_project" value="proj"',
        'name="wandb_tags" value="t1"',
        f'name="cloned_from" value="{source.pk}"',
        f'<option value="{dataset.pk}" selected>',
        f'<option value="{connection.pk}" selected>',
        "Notes here</textarea>",
    ):
        assert snippet in html, snippet
    data = valid_data(
        connection, dataset, cloned_from=str(source.pk), n_epochs="4", name="Original (clone)"
    )
    response = member.post("/jobs/new/", data)
    clone = Job.objects.exclude(pk=source.pk).get()
    assert response.status_code == 302 and clone.cloned_from == source
    page = member.get(f"/jobs/{clone.pk}/").content.decode()
    assert f'Cloned from <a href="/jobs/{source.pk}/">Original</a>' in page


@pytest.mark.parametrize("clone", ["not-a-uuid", "00000000-0000-0000-0000-000000000009", ""])
def test_clone_of_nothing_starts_empty(connection: ProviderConnection, clone: str) -> None:
    response = client_for("member").get("/jobs/new/", {"clone": clone})
    assert response.status_code == 200
    assert ("There is no such job to clone" in response.content.decode()) is bool(clone)


def test_launch_page_queries_do_not_grow(
    connection: ProviderConnection,
    make_dataset: Callable[..., Dataset],
    django_assert_max_num_queries: Any,
) -> None:
    datasets = [make_dataset(chat_examples(10 + i, seed=i), name=f"d{i}") for i in range(6)]
    for i in range(6):
        make_job(
            connection, datasets[i], status="succeeded", fine_tuned_model=f"ft:{MINI}:o:s{i}:{i}"
        )
    member = client_for("member")
    member.get("/jobs/new/")
    with django_assert_max_num_queries(8):
        assert member.get("/jobs/new/").status_code == 200
    with django_assert_max_num_queries(9):
        bad = member.post("/jobs/new/", valid_data(connection, datasets[0], n_epochs="0"))
        assert bad.status_code == 200


def test_guardrails_are_chosen_at_launch_prefilled_from_the_connection(
    connection: ProviderConnection, dataset: Dataset
) -> None:
    """Issue 18: rules attached at launch, defaults per connection."""
    connection.guardrail_defaults = [
        {"kind": "overfitting", "params": {"evals": 4, "rise_pct": 2.0}, "action": "pause"},
        {"kind": "time_limit", "params": {"minutes": 120}, "action": "cancel"},
    ]
    connection.save()
    member = client_for("member")
    page = member.get("/jobs/new/").content.decode()
    assert "Guardrails (act while the job runs)" in page
    assert re.search(r'<option value="pause" selected>Pause</option>', page)
    assert 'name="guard_time_limit" value="120"' in page
    data = valid_data(connection, dataset, guard_overfitting="pause", guard_divergence="cancel",
                      guard_time_limit="90", guard_spend_cap="25")  # fmt: skip
    response = member.post("/jobs/new/", data)
    assert response.status_code == 302, response.context["form"].errors
    rules = {g.kind: (g.params, g.action) for g in Job.objects.get().guardrails.all()}
    assert rules == {
        "overfitting": ({"evals": 4, "rise_pct": 2.0}, "pause"),
        "divergence": ({"spike_factor": 3.0, "window": 10}, "cancel"),
        "time_limit": ({"minutes": 90}, "cancel"),
        "spend_cap": ({"usd": 25.0}, "cancel"),
    }

"""The launch rules live in ``jobs.services.job_launch``: each one refuses a request made
without the form (a ``JobError`` naming the field, nothing written or queued), and the launch
form shows the same refusal on the same field for the same input."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.utils import timezone

from core.models import AuditEntry
from datasets.models import Dataset
from jobs import selectors
from jobs.models import Job, ProviderConnection
from jobs.services import (
    JobError,
    LaunchRejected,
    LaunchRequest,
    connection_archive,
    connection_save,
    job_launch,
)
from tests.jobs.test_views import _catalog, make_job  # noqa: F401 - autouse fixture
from tests.permissions import client_for, make_user
from tests.sandbox.data import chat_examples, dpo_examples

pytestmark = pytest.mark.django_db
MINI = "gpt-4o-mini-2024-07-18"
HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier", "beta")


@dataclass
class World:
    connection: ProviderConnection
    other: ProviderConnection
    chat: Dataset  # "train", valid chat data
    prefs: Dataset  # "prefs", valid preference (DPO) data
    make_dataset: Callable[..., Dataset]

    def of_format(self, fmt: str) -> Dataset:
        """A valid dataset stored with another format (as validation would have recorded it)."""
        dataset = self.make_dataset(chat_examples(10, seed=5), name=f"{fmt}-set")
        Dataset.objects.filter(pk=dataset.pk).update(format=fmt)
        dataset.refresh_from_db()
        return dataset


@pytest.fixture
def world(make_dataset: Callable[..., Dataset]) -> World:
    return World(
        connection=connection_save(
            name="Sandbox", kind="sandbox", base_url="http://127.0.0.1:9/v1", api_key="sk-x-1234"
        ),
        other=connection_save(
            name="Other", kind="sandbox", base_url="http://127.0.0.1:9/v1", api_key="sk-o-1234"
        ),
        chat=make_dataset(chat_examples(20)),
        prefs=make_dataset(dpo_examples(12), name="prefs"),
        make_dataset=make_dataset,
    )


@pytest.fixture
def member() -> Any:
    return make_user("member")


@dataclass
class Inputs:
    """One launch, as plain values: made into a ``LaunchRequest`` and into the form's POST."""

    connection: ProviderConnection
    training_dataset: Dataset
    base_model: str = MINI
    validation_dataset: Dataset | None = None
    method: str = "supervised"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    suffix: str = ""
    seed: int | None = None
    wandb: dict[str, Any] | None = None

    def request(self) -> LaunchRequest:
        return LaunchRequest(
            connection=self.connection,
            base_model=self.base_model,
            training_dataset=self.training_dataset,
            validation_dataset=self.validation_dataset,
            method=self.method,
            hyperparameters=self.hyperparameters,
            suffix=self.suffix,
            seed=self.seed,
            integrations=[{"type": "wandb", "wandb": self.wandb}] if self.wandb else [],
        )

    def post(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "connection": self.connection.pk,
            "base_model": self.base_model,
            "training_dataset": self.training_dataset.pk,
            "validation_dataset": self.validation_dataset.pk if self.validation_dataset else "",
            "method": self.method,
            "suffix": self.suffix,
            "seed": "" if self.seed is None else str(self.seed),
            "name": "",
            "notes": "",
            "tags": "",
        }
        for key in HYPERPARAMETERS:
            data[key] = str(self.hyperparameters[key]) if key in self.hyperparameters else "auto"
        for key, value in (self.wandb or {}).items():
            data[f"wandb_{key}"] = ", ".join(value) if isinstance(value, list) else value
        return data


def _disabled(w: World) -> ProviderConnection:
    ProviderConnection.objects.filter(pk=w.connection.pk).update(enabled=False)
    w.connection.refresh_from_db()
    return w.connection


def _keyless(w: World) -> ProviderConnection:
    ProviderConnection.objects.filter(pk=w.connection.pk).update(api_key_encrypted="")
    w.connection.refresh_from_db()
    return w.connection


def _invalid(dataset: Dataset) -> Dataset:
    Dataset.objects.filter(pk=dataset.pk).update(status=Dataset.Status.INVALID)
    dataset.refresh_from_db()
    return dataset


def _deleted(dataset: Dataset) -> Dataset:
    Dataset.objects.filter(pk=dataset.pk).delete()  # the object keeps its pk
    return dataset


def _theirs(w: World) -> str:
    return make_job(
        w.other, w.chat, status="succeeded", fine_tuned_model=f"ft:{MINI}:sandbox:theirs:1"
    ).fine_tuned_model


def _gone(w: World) -> str:
    job = make_job(
        w.connection, w.chat, status="succeeded", fine_tuned_model=f"ft:{MINI}:sandbox:gone:2"
    )
    Job.objects.filter(pk=job.pk).update(model_deleted_at=timezone.now())
    return job.fine_tuned_model


@dataclass(frozen=True)
class Rule:
    id: str
    inputs: Callable[[World], Inputs]
    field: str | None
    message: str
    # What the form shows instead when one of its shape checks (a choice list, a length, a
    # number range of the field) refuses the input first; None: the service's message.
    form_message: str | None = None
    form: bool = True  # False: no form input can say this


CHOICE = "Select a valid choice."

LR_MESSAGE = "The learning-rate multiplier must be “auto” or a number from 0.00001 to 10."
BATCH_MESSAGE = "Batch size must be “auto” or a whole number from 1 to 256."
SUFFIX_MESSAGE = "The suffix may hold only letters, digits, hyphens (-) and underscores (_)."

RULES = [
    # The connection: enabled, not archived, with an API key.
    Rule(
        "connection-disabled",
        lambda w: Inputs(_disabled(w), w.chat),
        "connection",
        "The connection “Sandbox” is disabled: no job can be launched on it.",
        form_message=CHOICE,
    ),
    Rule(
        "connection-archived",
        lambda w: Inputs(connection_archive(connection=w.connection, actor=None), w.chat),
        "connection",
        "The connection “Sandbox” is archived: no job can be launched on it.",
        form_message=CHOICE,
    ),
    Rule(
        "connection-keyless",
        lambda w: Inputs(_keyless(w), w.chat),
        "connection",
        "The connection “Sandbox” has no API key: no job can be launched on it.",
        form_message=CHOICE,
    ),
    # The base model: in the catalog and not shut down, or fine-tuned on this connection.
    Rule(
        "model-unknown",
        lambda w: Inputs(w.connection, w.chat, base_model="gpt-9-imaginary"),
        "base_model",
        "gpt-9-imaginary is not in the model catalog.",
        form_message=CHOICE,
    ),
    Rule(
        "model-shut-down",
        lambda w: Inputs(w.connection, w.chat, base_model="gpt-3.5-turbo-0613"),
        "base_model",
        "gpt-3.5-turbo-0613 was shut down on 2024-09-13.",
    ),
    Rule(
        "fine-tuned-elsewhere",
        lambda w: Inputs(w.connection, w.chat, base_model=_theirs(w)),
        "base_model",
        "That fine-tuned model belongs to another connection.",
    ),
    Rule(
        "fine-tuned-deleted",
        lambda w: Inputs(w.connection, w.chat, base_model=_gone(w)),
        "base_model",
        f"ft:{MINI}:sandbox:gone:2 is not a model fine-tuned by a job here, or it was deleted.",
        form_message=CHOICE,
    ),
    # The method: known, and supported by the model.
    Rule(
        "method-unknown",
        lambda w: Inputs(w.connection, w.chat, method="reinforcement"),
        "method",
        "“reinforcement” is not a fine-tuning method.",
        form_message=CHOICE,
    ),
    Rule(
        "model-without-dpo",
        lambda w: Inputs(w.connection, w.prefs, base_model="gpt-3.5-turbo-0125", method="dpo"),
        "method",
        "gpt-3.5-turbo-0125 does not support DPO fine-tuning.",
    ),
    # The datasets: still valid, of the method's format, suited to the model.
    Rule(
        "training-invalid",
        lambda w: Inputs(w.connection, _invalid(w.chat)),
        "training_dataset",
        "The training dataset “train” is not valid (Invalid).",
        form_message="Choose a training dataset that passed validation for this provider.",
    ),
    Rule(
        "validation-deleted",
        lambda w: Inputs(w.connection, w.chat, validation_dataset=_deleted(w.of_format("chat"))),
        "validation_dataset",
        "The validation dataset no longer exists.",
        form_message="Choose a validation dataset that passed validation for this provider.",
    ),
    Rule(
        "dpo-with-chat-training",
        lambda w: Inputs(w.connection, w.chat, method="dpo"),
        "training_dataset",
        "DPO needs preference data; “train” is Chat.",
    ),
    Rule(
        "dpo-with-chat-validation",
        lambda w: Inputs(w.connection, w.prefs, validation_dataset=w.chat, method="dpo"),
        "validation_dataset",
        "DPO needs preference data; “train” is Chat.",
    ),
    Rule(
        "supervised-with-preference-data",
        lambda w: Inputs(w.connection, w.prefs),
        "training_dataset",
        "“prefs” is Preference (DPO) data; choose the DPO method.",
    ),
    Rule(
        "supervised-with-mixed-data",
        lambda w: Inputs(w.connection, w.of_format("mixed")),
        "training_dataset",
        "“mixed-set” is Mixed data; it cannot train a supervised job.",
    ),
    Rule(
        "legacy-model-with-chat-data",
        lambda w: Inputs(w.connection, w.chat, base_model="davinci-002"),
        "training_dataset",
        "davinci-002 trains on prompt/completion lines only.",
    ),
    Rule(
        "chat-model-with-legacy-validation",
        lambda w: Inputs(w.connection, w.chat, validation_dataset=w.of_format("legacy_completion")),
        "validation_dataset",
        f"{MINI} trains on chat messages, not prompt/completion lines.",
    ),
    Rule(
        "images-for-a-text-model",
        lambda w: Inputs(w.connection, w.of_format("vision")),
        "training_dataset",
        f"{MINI} does not support image inputs.",
    ),
    # Hyperparameters: the provider's ranges, β for DPO only.
    *(
        Rule(
            f"{key}-{value}",
            lambda w, key=key, value=value, method=method: Inputs(
                w.connection,
                w.prefs if method == "dpo" else w.chat,
                method=method,
                hyperparameters={key: value},
            ),
            key,
            message,
        )
        for key, value, method, message in [
            ("n_epochs", 0, "supervised", "Epochs must be “auto” or a whole number from 1 to 50."),
            ("n_epochs", 51, "supervised", "Epochs must be “auto” or a whole number from 1 to 50."),
            (
                "n_epochs",
                2.5,
                "supervised",
                "Epochs must be “auto” or a whole number from 1 to 50.",
            ),
            ("batch_size", 300, "supervised", BATCH_MESSAGE),
            (
                "learning_rate_multiplier",
                0,
                "supervised",
                LR_MESSAGE,
            ),
            (
                "learning_rate_multiplier",
                float("nan"),
                "supervised",
                LR_MESSAGE,
            ),
            # The provider's ranges, with the bounds that keep a multiplier a usable number.
            ("learning_rate_multiplier", 1e308, "supervised", LR_MESSAGE),
            ("learning_rate_multiplier", 5e-324, "supervised", LR_MESSAGE),
            ("learning_rate_multiplier", 10.5, "supervised", LR_MESSAGE),
            ("learning_rate_multiplier", -1, "supervised", LR_MESSAGE),
            ("batch_size", 0, "supervised", BATCH_MESSAGE),
            ("batch_size", 257, "supervised", BATCH_MESSAGE),
            ("beta", 3, "dpo", "β must be “auto” or a number greater than 0 and at most 2."),
            (
                "beta",
                0.5,
                "supervised",
                "β applies to DPO only; leave it on “auto” for supervised.",
            ),
        ]
    ),
    Rule(
        "unknown-hyperparameter",
        lambda w: Inputs(w.connection, w.chat, hyperparameters={"prompt_loss_weight": 0.1}),
        None,
        "“prompt_loss_weight” is not a hyperparameter a launch can set.",
        form=False,
    ),
    # The output model and integrations.
    Rule(
        "suffix-colon",
        lambda w: Inputs(w.connection, w.chat, suffix="team:v2"),
        "suffix",
        SUFFIX_MESSAGE,
    ),
    Rule(
        "suffix-space",
        lambda w: Inputs(w.connection, w.chat, suffix="team v2"),
        "suffix",
        SUFFIX_MESSAGE,
    ),
    *(
        Rule(
            f"suffix-{index}",
            lambda w, suffix=suffix: Inputs(w.connection, w.chat, suffix=suffix),
            "suffix",
            SUFFIX_MESSAGE,
        )
        for index, suffix in enumerate(
            ["a/b", "..", "x..y", "../../files", "v1.2", "café", "a%2Fb"]
        )
    ),
    Rule(
        "suffix-long",
        lambda w: Inputs(w.connection, w.chat, suffix="x" * 65),
        "suffix",
        "The suffix is at most 64 characters.",
        form_message="Ensure this value has at most 64 characters",
    ),
    Rule(
        "seed-negative",
        lambda w: Inputs(w.connection, w.chat, seed=-1),
        "seed",
        "The seed must be a whole number from 0 to 2147483647.",
        form_message="Ensure this value is greater than or equal to 0.",
    ),
    Rule(
        "seed-too-large",
        lambda w: Inputs(w.connection, w.chat, seed=2**31),
        "seed",
        "The seed must be a whole number from 0 to 2147483647.",
        form_message="Ensure this value is less than or equal to 2147483647.",
    ),
    Rule(
        "wandb-without-project",
        lambda w: Inputs(w.connection, w.chat, wandb={"project": "", "entity": "team"}),
        "wandb_project",
        "Enter the W&B project to use the integration.",
    ),
]


def nothing_written(jobs_before: int) -> bool:
    """No job row beyond those the case made itself, no launch audited."""
    launches = AuditEntry.objects.filter(action="job_launched")
    return Job.objects.count() == jobs_before and not launches.exists()


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_job_launch_refuses_without_a_form(
    rule: Rule, world: World, member: Any, django_capture_on_commit_callbacks: Any
) -> None:
    inputs = rule.inputs(world)
    jobs_before = Job.objects.count()
    with django_capture_on_commit_callbacks() as queued, pytest.raises(JobError) as refused:
        job_launch(request=inputs.request(), user=member)
    error = refused.value
    assert (error.field, str(error)) == (rule.field, rule.message)
    # This input breaks this one rule only.
    assert isinstance(error, LaunchRejected)
    assert [(p.field, p.message) for p in error.problems] == [(rule.field, rule.message)]
    assert Job.objects.count() == jobs_before
    assert nothing_written(jobs_before) and queued == []


@pytest.mark.parametrize("rule", [r for r in RULES if r.form], ids=[r.id for r in RULES if r.form])
def test_the_form_shows_the_same_refusal_on_the_same_field(
    rule: Rule, world: World, member: Any
) -> None:
    data = rule.inputs(world).post()
    jobs_before = Job.objects.count()
    response = client_for("member").post("/jobs/new/", data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    expected = rule.form_message or rule.message
    shown = errors.get(rule.field or "__all__", [])
    assert any(expected in message for message in shown), errors
    # Nothing else was refused, and nothing launched.
    assert set(errors) == {rule.field or "__all__"}, errors
    assert "The job was not launched" in response.content.decode()
    assert nothing_written(jobs_before)


def test_every_broken_rule_is_reported_at_once(world: World, member: Any) -> None:
    inputs = Inputs(
        world.connection,
        world.chat,
        validation_dataset=world.prefs,
        method="dpo",
        base_model="gpt-3.5-turbo-0125",
        hyperparameters={"n_epochs": 60},
        suffix="a:b",
        wandb={"project": "", "name": "run"},
    )
    expected = [
        ("method", "gpt-3.5-turbo-0125 does not support DPO fine-tuning."),
        ("training_dataset", "DPO needs preference data; “train” is Chat."),
        ("n_epochs", "Epochs must be “auto” or a whole number from 1 to 50."),
        ("suffix", SUFFIX_MESSAGE),
        ("wandb_project", "Enter the W&B project to use the integration."),
    ]
    with pytest.raises(LaunchRejected) as refused:
        job_launch(request=inputs.request(), user=member)
    assert [(p.field, p.message) for p in refused.value.problems] == expected
    assert (refused.value.field, str(refused.value)) == expected[0]
    assert nothing_written(0)
    errors = client_for("member").post("/jobs/new/", inputs.post()).context["form"].errors
    assert {name: list(messages) for name, messages in errors.items()} == {
        name: [message] for name, message in expected
    }
    assert nothing_written(0)


def test_an_allowed_launch_is_recorded_and_queued(
    world: World, member: Any, django_capture_on_commit_callbacks: Any
) -> None:
    mine = make_job(
        world.connection, world.chat, status="succeeded", fine_tuned_model=f"ft:{MINI}:s:mine:1"
    )
    inputs = Inputs(
        world.connection,
        world.chat,
        base_model=mine.fine_tuned_model,
        validation_dataset=world.of_format("chat"),
        hyperparameters={"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 0.1},
        suffix="v2",
        seed=7,
        wandb={"project": "tuning"},
    )
    before = Job.objects.count()
    with django_capture_on_commit_callbacks() as queued:
        job = job_launch(request=inputs.request(), user=member)
    assert Job.objects.count() == before + 1 and len(queued) == 1
    job.refresh_from_db()
    assert (job.base_model, job.training_dataset_id, job.seed) == (
        mine.fine_tuned_model,
        world.chat.pk,
        7,
    )
    assert AuditEntry.objects.filter(action="job_launched", object_id=str(job.pk)).exists()
    # A DPO launch with β on a DPO model is allowed too.
    dpo = job_launch(
        request=Inputs(
            world.connection, world.prefs, method="dpo", hyperparameters={"beta": 0.1}
        ).request(),
        user=member,
    )
    assert dpo.requested_hyperparameters == {"beta": 0.1}


def test_launch_page_estimate_takes_plain_values(world: World) -> None:
    options = selectors.launch_options()
    auto = selectors.launch_page_estimate(
        options=options, training_dataset=world.chat.pk, base_model=MINI, n_epochs=None
    )
    assert auto.defaults == options.datasets[world.chat.pk].defaults
    assert auto.cost is not None and (auto.cost.n_epochs, auto.cost.epochs_auto) == (5, True)
    seven = selectors.launch_page_estimate(
        options=options, training_dataset=world.chat.pk, base_model=MINI, n_epochs=7
    )
    assert seven.cost is not None and (seven.cost.n_epochs, seven.cost.epochs_auto) == (7, False)
    assert seven.cost.billed_tokens * 5 == auto.cost.billed_tokens * 7
    # Not a positive number of epochs: "auto"; nothing chosen or known: nothing to show.
    zero = selectors.launch_page_estimate(
        options=options, training_dataset=world.chat.pk, base_model=MINI, n_epochs=0
    )
    assert zero == auto
    for dataset, model in ((None, MINI), (world.chat.pk, ""), (world.chat.pk, "gpt-9")):
        nothing = selectors.launch_page_estimate(
            options=options, training_dataset=dataset, base_model=model, n_epochs=None
        )
        assert nothing.cost is None
        assert nothing.defaults == (None if dataset is None else auto.defaults)

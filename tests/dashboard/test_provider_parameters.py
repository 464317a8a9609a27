"""Hyperparameters under each provider's own names and meanings: a Together run's absolute
learning rate and an OpenAI run's learning-rate multiplier never share a row or a column, and
a parameter a run's provider does not have is a dash, never "auto"."""

from __future__ import annotations

import re

import pytest

from jobs.models import Job, ProviderConnection
from jobs.providers import declared_parameters
from tests.dashboard.helpers import json_script
from tests.permissions import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def together_connection() -> ProviderConnection:
    connection = ProviderConnection(
        name="Together", kind="together", base_url="https://api.together.xyz/v1"
    )
    connection.set_api_key("tg-test-key-0000")
    connection.save()
    return connection


def together_job(make_job, connection: ProviderConnection) -> Job:  # type: ignore[no-untyped-def]
    return make_job(
        steps=20, connection=connection, base_model="meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
        requested_hyperparameters={},
        hyperparameters={"n_epochs": 2, "batch_size": 16, "learning_rate": 2e-5, "lora_r": 16,
                         "training_type": "lora"},
        provider_status="completed", fine_tuned_model="sandbox/llama-tb",
    )  # fmt: skip


def test_each_adapter_declares_its_own_parameters() -> None:
    openai = {p.name: p for p in declared_parameters("openai")}
    together = {p.name: p for p in declared_parameters("together")}
    assert openai["learning_rate_multiplier"].unit == "×" and "learning_rate" not in openai
    assert together["learning_rate"].low == 1e-8 and "learning_rate_multiplier" not in together
    assert together["lora_r"].kind == "int" and together["training_type"].choices == (
        "lora",
        "full",
    )
    assert declared_parameters("sandbox") == declared_parameters("azure_openai")


def test_compare_keeps_a_multiplier_and_an_absolute_rate_apart(
    make_job, together_connection
) -> None:  # type: ignore[no-untyped-def]
    openai_run = make_job(steps=20, seed=1)
    together_run = together_job(make_job, together_connection)
    page = client_for("viewer").get(f"/compare/?runs={openai_run.pk},{together_run.pk}")
    assert page.status_code == 200
    html = page.content.decode()
    cells = {
        label: values
        for label, *values in re.findall(
            r'<th scope="row">([^<]+)</th><td>([^<]*)</td><td>([^<]*)</td>', html
        )
    }
    assert cells  # the table rendered
    assert cells["Learning-rate multiplier"] == ["1.8", "—"]  # not "auto" for Together
    assert cells["Learning rate (absolute)"] == ["—", "2e-05"]
    assert cells["LoRA rank"] == ["—", "16"]
    assert cells["Epochs"] == ["3", "2"]
    assert json_script(html, "tb-compare-figures")


def test_runs_list_shows_a_dash_not_auto_for_a_parameter_the_provider_lacks(
    make_job, together_connection
) -> None:  # type: ignore[no-untyped-def]
    together_run = together_job(make_job, together_connection)
    openai_auto = make_job(hyperparameters={}, requested_hyperparameters={})
    html = client_for("viewer").get("/").content.decode()

    def cell(job: Job, column: str) -> str:
        row = html[html.index(f'data-run="{job.pk}"') :]
        return re.search(rf'data-col="{column}" data-value="[^"]*">([^<]*)<', row).group(1)  # type: ignore[union-attr]

    assert (cell(together_run, "lr"), cell(together_run, "learning_rate")) == ("—", "2e-05")
    assert (cell(openai_auto, "lr"), cell(openai_auto, "learning_rate")) == ("auto", "—")
    # Sorted by the absolute rate: the run that has one first, whatever its provider.
    ordered = client_for("viewer").get("/?sort=learning_rate&dir=desc").content.decode()
    assert ordered.index(f'data-run="{together_run.pk}"') < ordered.index(
        f'data-run="{openai_auto.pk}"'
    )


def test_compare_gives_each_runs_fit_and_checkpoint_to_use(make_job, together_connection) -> None:  # type: ignore[no-untyped-def]
    openai_run = make_job(steps=60, seed=1)
    together_run = together_job(make_job, together_connection)
    Job.objects.filter(pk=together_run.pk).update(status="running", finished_at=None)
    html = client_for("viewer").get(f"/compare/?runs={openai_run.pk},{together_run.pk}")
    html = html.content.decode()
    rows = dict(re.findall(r'<tr data-run="([0-9a-f-]{36})" data-verdict="([a-z_]+)">', html))
    assert set(rows) == {str(openai_run.pk), str(together_run.pk)}
    assert all(rows.values())  # a verdict for each run
    fit = html[html.index("data-tb-fit-table") :]
    fit = fit[: fit.index("</table>")]
    # The finished OpenAI run: a checkpoint of its own; the running one: "so far".
    checkpoints = set(openai_run.checkpoints.values_list("model_name", flat=True))
    assert any(name in fit for name in checkpoints)
    assert fit.count("(so far)") == 1

"""The launch page on a Together connection (issue 16, deliverable 3): the model list and each
model's limits come from the provider (``/fine-tunes/models/supported`` and ``/limits``), the
fields are the adapter's declared parameters with their defaults and the chosen model's
ranges, and the provider's own price (``/fine-tunes/estimate-price``) stands beside
Tuneboard's estimate. Real HTTP to the sandbox's Together-compatible API; the quote crosses the
queue to a real Celery worker."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from core.models import AuditEntry
from datasets.models import BaseModel
from jobs.catalogs import catalog_refresh
from jobs.connections import provider_for_connection
from jobs.models import Job, PriceQuote, ProviderConnection, ProviderFile
from jobs.services import connection_save, job_launch_run
from tests.conftest import wait_until
from tests.permissions import LOGIN, assert_matrix, client_for
from tests.sandbox.data import chat_examples

LLAMA = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
QWEN = "Qwen/Qwen2.5-7B-Instruct"
MISTRAL = "mistralai/Mistral-7B-Instruct-v0.2"


def launch_data(html: str) -> dict[str, Any]:
    match = re.search(
        r'<script id="launch-data" type="application/json">(.*?)</script>', html, re.S
    )
    assert match
    return json.loads(match.group(1))


def form_data(connection: ProviderConnection, dataset: Any, **overrides: Any) -> dict[str, Any]:
    data = {
        "connection": connection.pk, "base_model": LLAMA, "training_dataset": dataset.pk,
        "validation_dataset": "", "method": "supervised", "suffix": "", "seed": "", "name": "",
        "notes": "", "tags": "",
    }  # fmt: skip
    data.update(overrides)
    return data


@pytest.mark.django_db(transaction=True)
def test_the_catalog_is_the_providers_list_with_each_models_limits(
    together_connection: ProviderConnection,
) -> None:
    BaseModel.objects.create(
        id="retired/Old-Model", provider_kind="together", encoding="o200k_base",
        training_context=4096, inference_context=4096,
    )  # fmt: skip
    catalog_refresh(connection_id=together_connection.pk)
    rows = {m.pk: m for m in BaseModel.objects.filter(provider_kind="together")}
    assert sorted(rows) == sorted([LLAMA, QWEN, MISTRAL, "retired/Old-Model"])
    assert rows["retired/Old-Model"].shutdown_on == timezone.localdate()  # no longer listed
    llama, qwen, mistral = rows[LLAMA], rows[QWEN], rows[MISTRAL]
    assert llama.limits["lora_training"]["max_batch_size"] == 32
    assert qwen.limits["lora_training"]["max_batch_size"] == 24
    assert (llama.training_context, llama.supports_dpo, mistral.supports_dpo) == (8192, True, False)
    assert llama.shutdown_on is None and llama.listed_at is not None
    # A second refresh changes nothing; OpenAI's catalog is untouched.
    before = list(BaseModel.objects.order_by("pk").values("pk", "limits", "shutdown_on"))
    catalog_refresh(connection_id=together_connection.pk)
    assert list(BaseModel.objects.order_by("pk").values("pk", "limits", "shutdown_on")) == before
    assert BaseModel.objects.filter(provider_kind="openai").exists()


@pytest.mark.django_db(transaction=True)
def test_the_page_shows_the_declared_parameters_with_the_models_limits(
    together_connection: ProviderConnection, make_dataset: Any
) -> None:
    dataset = make_dataset(chat_examples(20))
    member = client_for("member")
    html = member.get("/jobs/new/", {"connection": together_connection.pk}).content.decode()
    for field in ("learning_rate", "lora_r", "lora_alpha", "warmup_ratio", "n_checkpoints",
                  "n_evals", "lr_scheduler", "training_type", "dpo_beta", "train_on_inputs"):  # fmt: skip
        assert f'name="{field}"' in html, field
    assert 'name="learning_rate_multiplier"' not in html and 'name="wandb_project"' not in html
    assert "W&amp;B API key sent with each job" in html
    # The first model listed (by name: Qwen) is chosen, with its limits and defaults.
    assert f'<option value="{QWEN}" selected>' in html
    assert 'data-range-for="batch_size">8–24<' in html
    assert 'data-range-for="n_epochs">1–20<' in html
    assert 'data-fixed-default-for="learning_rate">1e-05<' in html
    assert "3 models listed by Together AI" in html
    assert 'id="ask-quote"' in html and "Ask Together AI for its price" in html
    data = launch_data(html)
    assert (
        data["family"] == "together" and data["families"][str(together_connection.pk)] == "together"
    )
    assert data["ranges"][QWEN]["supervised/lora"]["batch_size"] == [
        "8–24",
        "the largest the model allows",
    ]
    assert data["ranges"][QWEN]["dpo/lora"]["batch_size"][0] == "8–12"
    assert data["ranges"][LLAMA]["supervised/lora"]["lora_r"] == ["1–64", "8"]
    # Only Together's models are offered; OpenAI's catalog is not.
    assert f'<option value="{QWEN}"' in html and "gpt-4o-mini-2024-07-18" not in html
    # The estimate names the tokenizer the counts were made with.
    estimate = member.get(
        "/jobs/new/estimate/",
        {"connection": together_connection.pk, "training_dataset": dataset.pk, "base_model": LLAMA},
    ).content.decode()
    assert "tokens counted with o200k_base, not the model's own tokenizer" in estimate
    assert "no price known yet for " + LLAMA in estimate and "over 1 epoch" in estimate
    # An OpenAI-compatible connection still shows what it showed.
    sandbox = connection_save(
        name="Sandbox", kind="sandbox", base_url="http://127.0.0.1:9/v1", api_key="sk-x-1234"
    )
    openai = member.get("/jobs/new/", {"connection": sandbox.pk}).content.decode()
    assert 'name="learning_rate_multiplier"' in openai and 'name="lora_r"' not in openai
    assert 'name="wandb_project"' in openai and 'id="ask-quote"' not in openai
    assert f'<option value="{LLAMA}"' not in openai


@pytest.mark.django_db(transaction=True)
def test_a_launch_from_the_page_keeps_what_applies_and_refuses_what_the_model_does_not_allow(
    together_connection: ProviderConnection, make_dataset: Any
) -> None:
    dataset = make_dataset(chat_examples(20))
    member = client_for("member")
    refused = member.post(
        "/jobs/new/",
        form_data(together_connection, dataset, base_model=QWEN, batch_size="32", learning_rate="2",
                  suffix="far-too-long-suffix", n_epochs="21"),
    ).content.decode()  # fmt: skip
    assert "Batch size must be a whole number from 8 to 24." in refused
    assert "Learning rate must be a number from 1e-08 to 1." in refused
    assert "Epochs must be a whole number from 1 to 20." in refused
    assert 'maxlength="13"' in refused and not Job.objects.exists()
    dpo_refused = member.post(
        "/jobs/new/", form_data(together_connection, dataset, base_model=MISTRAL, method="dpo")
    ).content.decode()
    assert f"{MISTRAL} does not support DPO fine-tuning." in dpo_refused
    response = member.post(
        "/jobs/new/",
        form_data(together_connection, dataset, base_model=QWEN, batch_size="16", learning_rate="3e-5",
                  training_type="full", lora_r="16", dpo_beta="0.3", n_epochs="2", suffix="qw"),
    )  # fmt: skip
    assert response.status_code == 302
    job = Job.objects.get()
    # LoRA rank does not apply to full training, nor β to supervised: the page hid them.
    assert job.requested_hyperparameters == {
        "batch_size": 16, "learning_rate": 3e-5, "training_type": "full", "n_epochs": 2,
    }  # fmt: skip
    assert (job.base_model, job.suffix, job.connection_id) == (QWEN, "qw", together_connection.pk)


@pytest.mark.django_db(transaction=True)
def test_the_providers_price_beside_ours_and_the_launch_reuses_its_upload(
    together_connection: ProviderConnection, make_dataset: Any, celery_worker: str
) -> None:
    dataset = make_dataset(chat_examples(40))
    member = client_for("member")
    data = form_data(together_connection, dataset, n_epochs="3")
    asked = member.post("/jobs/new/quote/", data)
    assert asked.status_code == 202 and asked.json()["status"] == "pending"
    url = asked.json()["url"]
    assert wait_until(lambda: member.get(url).json()["status"] != "pending", timeout=60)
    answer = member.get(url).json()
    quote = PriceQuote.objects.get()
    assert (answer["status"], quote.status) == ("ready", "ready"), quote.error
    tokens = quote.train_tokens
    assert tokens is not None and tokens % 3 == 0  # tokens per epoch × 3 epochs
    # The sandbox charges Together's LoRA price, $0.48 per 1M tokens.
    assert quote.price_usd == Decimal(str(round(tokens / 1e6 * 0.48, 6)))
    assert f"{tokens:,} training tokens" in answer["text"]
    # Asking again for the same inputs is the same quote, not another upload or question.
    again = member.post("/jobs/new/quote/", data)
    assert again.status_code == 200 and again.json()["url"] == url
    assert PriceQuote.objects.count() == 1
    # Tuneboard learnt the price per token: its own estimate now has a cost.
    learnt = BaseModel.objects.get(pk=LLAMA).training_price_per_1m
    assert learnt == (quote.price_usd * 1_000_000 / tokens).quantize(Decimal("0.0001"))
    assert abs(learnt - Decimal("0.48")) < Decimal("0.001")
    estimate = member.get(
        "/jobs/new/estimate/",
        {"connection": together_connection.pk, "training_dataset": dataset.pk, "base_model": LLAMA,
         "n_epochs": "3"},
    ).content.decode()  # fmt: skip
    assert f"at ${learnt.normalize()} per 1M" in estimate and "over 3 epochs" in estimate
    # The launch finds the file the quote uploaded: one file at Together.
    assert member.post("/jobs/new/", data).status_code == 302
    # The worker launches it (the page queued the launch).
    assert wait_until(
        lambda: Job.objects.filter(provider_job_id__isnull=False).exists(), timeout=60
    ), Job.objects.values("status", "launch_error").get()
    job = Job.objects.get()
    assert (
        job.provider_job_id and job.training_file_id == ProviderFile.objects.get().provider_file_id
    )
    files = provider_for_connection(together_connection).list_files().data
    assert [f.id for f in files if f.filename.endswith(".jsonl")] == [job.training_file_id]


@pytest.mark.django_db(transaction=True)
def test_quotes_are_refused_where_there_is_no_price_or_the_launch_would_be(
    together_connection: ProviderConnection, make_dataset: Any
) -> None:
    dataset = make_dataset(chat_examples(20))
    member = client_for("member")
    too_big = member.post(
        "/jobs/new/quote/", form_data(together_connection, dataset, batch_size="64")
    )
    assert too_big.status_code == 400
    assert "Batch size must be a whole number from 8 to 32." in too_big.json()["text"]
    sandbox = connection_save(
        name="Sandbox", kind="sandbox", base_url="http://127.0.0.1:9/v1", api_key="sk-x-1234"
    )
    openai = member.post(
        "/jobs/new/quote/",
        {**form_data(sandbox, dataset), "base_model": "gpt-4o-mini-2024-07-18"},
    )
    assert openai.status_code == 400
    assert openai.json()["text"] == "OpenAI-compatible gives no price estimates."
    assert not PriceQuote.objects.exists()  # nothing asked, nothing uploaded
    assert not ProviderFile.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_permissions_of_the_catalog_and_quote_views(
    together_connection: ProviderConnection, make_dataset: Any
) -> None:
    dataset = make_dataset(chat_examples(20))
    quote = PriceQuote.objects.create(
        connection=together_connection, key="k" * 64, base_model=LLAMA, method="supervised",
        training_dataset=dataset, status="failed", error="test",
    )  # fmt: skip
    denied = {"anonymous": LOGIN, "share": LOGIN, "norole": 403, "viewer": 403}
    assert_matrix(
        f"/jobs/connections/{together_connection.pk}/models/refresh/",
        {**denied, "member": 302, "staff": 302},
        method="post",
    )
    assert AuditEntry.objects.filter(action="catalog_refresh_requested").count() == 2
    assert_matrix(f"/jobs/new/quote/{quote.pk}.json", {**denied, "member": 200, "staff": 200})
    assert_matrix("/jobs/new/quote/", {**denied, "member": 400, "staff": 400}, method="post")
    assert client_for("member").get("/jobs/new/quote/").status_code == 405
    assert client_for("member").get("/jobs/new/quote/999999.json").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_datasets_are_offered_and_accepted_per_provider_family(
    together_connection: ProviderConnection, make_dataset: Any
) -> None:
    """A plain-text file is Together data only; three chat examples are too few for OpenAI
    (10) but enough for Together (1). Each connection offers and accepts what its provider's
    rule set accepts, and the Together launch runs at the sandbox's Together surface."""
    text = make_dataset([{"text": f"Document {i}: the quick brown fox."} for i in range(12)],
                        name="notes")  # fmt: skip
    short = make_dataset(chat_examples(3), name="short")
    assert (text.status, text.format, short.status) == ("valid", "text", "valid")
    sandbox = connection_save(
        name="Sandbox", kind="sandbox", base_url="http://127.0.0.1:9/v1", api_key="sk-x-1234"
    )
    member = client_for("member")
    openai_page = member.get("/jobs/new/", {"connection": sandbox.pk}).content.decode()
    together_page = member.get(
        "/jobs/new/", {"connection": together_connection.pk}
    ).content.decode()

    def offered(page: str) -> str:  # the training-dataset choices only (ids repeat across tables)
        match = re.search(r'<select name="training_dataset".*?</select>', page, re.S)
        assert match, "the training dataset field"
        return match.group(0)

    for dataset in (text, short):
        assert f'<option value="{dataset.pk}"' not in offered(openai_page)
        assert f'<option value="{dataset.pk}"' in offered(together_page)
    refused = member.post(
        "/jobs/new/",
        {**form_data(sandbox, text), "base_model": "gpt-4o-mini-2024-07-18"},
    ).content.decode()
    assert "Choose a training dataset that passed validation for this provider." in refused
    assert not Job.objects.exists()
    from jobs.services import LaunchRejected, LaunchRequest, job_launch

    with pytest.raises(LaunchRejected) as rejected:
        job_launch(
            request=LaunchRequest(
                connection=sandbox, base_model="gpt-4o-mini-2024-07-18", training_dataset=short
            ),
            user=None,
        )
    assert [p.message for p in rejected.value.problems] == [
        "“short”: OpenAI: 1 error; first: the file has 3 examples; at least 10 are required."
    ]
    response = member.post("/jobs/new/", form_data(together_connection, text, name="text run"))
    assert response.status_code == 302
    job = job_launch_run(job_id=Job.objects.get(name="text run").pk)
    assert job.provider_job_id and job.status not in ("failed", "launch_failed"), (
        job.launch_error,
        job.error,
    )

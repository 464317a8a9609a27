"""The sandbox's Together-compatible API checked by Together's official Python SDK (test-only,
strict response validation) driving the whole workflow, and every answer checked against
Together's published OpenAPI description."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from together import Together

from tests.conftest import BASE_DIR
from tests.sandbox.data import chat_examples, dpo_examples, jsonl

pytestmark = pytest.mark.django_db(transaction=True)

SPEC = BASE_DIR.parent / "shared" / "together-openapi" / "openapi.yaml"
MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"


@pytest.fixture
def client(sandbox_url: str, sandbox_key: str) -> Any:
    sdk = Together(
        api_key=sandbox_key,
        base_url=sandbox_url.removesuffix("/v1") + "/together",
        max_retries=0,
        _strict_response_validation=True,
    )
    yield sdk
    sdk.close()


def write(tmp_path: Path, name: str, examples: list[dict]) -> Path:
    path = tmp_path / name
    path.write_bytes(jsonl(examples))
    return path


def test_the_official_sdk_drives_the_whole_workflow(
    client: Any, tmp_path: Path, settings: Any
) -> None:
    training = client.files.upload(write(tmp_path, "train.jsonl", chat_examples(100)), check=False)
    validation = client.files.upload(
        write(tmp_path, "valid.jsonl", chat_examples(12, seed=2)), check=False
    )
    assert training.bytes == len(jsonl(chat_examples(100))) and training.filename == "train.jsonl"
    assert {f.id for f in client.files.list().data} == {training.id, validation.id}
    assert client.files.retrieve(training.id).id == training.id

    job = client.fine_tuning.create(
        training_file=training.id,
        validation_file=validation.id,
        model=MODEL,
        n_epochs=2,
        n_evals=2,
        n_checkpoints=2,
        learning_rate=2e-5,
        lora=True,
        lora_r=16,
        lora_alpha=32,
        suffix="sdk-run",
        random_seed=7,
    )
    assert job.id and job.status in ("pending", "queued", "running", "completed")
    deadline = time.monotonic() + 30
    while (job := client.fine_tuning.retrieve(job.id)).status not in (
        "completed",
        "error",
        "cancelled",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job.status == "completed" and job.x_model_output_name
    assert job.n_epochs == 2 and job.learning_rate == 2e-5 and job.random_seed == 7
    assert job.training_type.lora_r == 16

    assert [j.id for j in client.fine_tuning.list().data] == [job.id]
    events = client.fine_tuning.list_events(job.id).data
    assert events[0].type == "job_pending" and events[-1].type == "job_complete"
    checkpoints = client.fine_tuning.list_checkpoints(job.id).data
    assert checkpoints and checkpoints[0].step >= checkpoints[-1].step
    metrics = client.fine_tuning.list_metrics(job.id, global_step_from=2, global_step_to=4).metrics
    assert [m["train/global_step"] for m in metrics] == [2, 3, 4]
    assert all(m["train/loss"] > 0 for m in metrics)

    settings.SANDBOX_SECONDS_PER_STEP = 60  # still running when cancelled
    other = client.fine_tuning.create(training_file=training.id, model=MODEL, n_epochs=20)
    cancelled = client.fine_tuning.cancel(other.id)
    assert cancelled.status in ("cancelled", "cancel_requested")
    client.fine_tuning.delete(other.id)
    assert [j.id for j in client.fine_tuning.list().data] == [job.id]


def test_dpo_and_price_estimates_through_the_sdk(client: Any, tmp_path: Path) -> None:
    preference = client.files.upload(write(tmp_path, "pref.jsonl", dpo_examples(12)), check=False)
    price = client.fine_tuning.estimate_price(training_file=preference.id, model=MODEL, n_epochs=3)
    assert price.estimated_total_price > 0 and price.allowed_to_proceed is True
    job = client.fine_tuning.create(
        training_file=preference.id, model=MODEL, training_method="dpo", dpo_beta=0.2
    )
    assert job.training_method.method == "dpo"


# --- Every answer against the published description ---------------------------------------------


def _resolve(schema: Any, spec: dict[str, Any]) -> Any:
    """The schema with every local $ref inlined (the description's refs are acyclic here)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            target: Any = spec
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _resolve(target, spec)
        return {k: _resolve(v, spec) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_resolve(item, spec) for item in schema]
    return schema


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text())


def response_schema(spec: dict[str, Any], path: str, method: str) -> Any:
    answer = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]
    return _resolve(answer["schema"], spec)


def test_every_answer_conforms_to_togethers_description(
    spec: dict[str, Any], sandbox_url: str, sandbox_key: str, client: Any, tmp_path: Path
) -> None:
    base = sandbox_url.removesuffix("/v1") + "/together/v1"
    auth = {"Authorization": f"Bearer {sandbox_key}"}
    content = jsonl(chat_examples(100))
    upload = httpx.post(
        base + "/files/upload",
        headers=auth,
        data={"purpose": "fine-tune", "file_name": "t.jsonl", "file_type": "jsonl"},
        files={"file": ("t.jsonl", content)},
    )
    answers: list[tuple[str, str, httpx.Response]] = [("/files/upload", "post", upload)]
    file_id = upload.json()["id"]
    body = {"training_file": file_id, "model": MODEL, "n_epochs": 2, "n_evals": 1}
    created = httpx.post(base + "/fine-tunes", headers=auth, json=body)
    answers.append(("/fine-tunes", "post", created))
    job_id = created.json()["id"]
    for path, method, url, kwargs in [
        ("/files", "get", "/files", {}),
        ("/files/{id}", "get", f"/files/{file_id}", {}),
        ("/fine-tunes", "get", "/fine-tunes", {}),
        ("/fine-tunes/{id}", "get", f"/fine-tunes/{job_id}", {}),
        ("/fine-tunes/{id}/events", "get", f"/fine-tunes/{job_id}/events", {}),
        ("/fine-tunes/{id}/checkpoints", "get", f"/fine-tunes/{job_id}/checkpoints", {}),
        ("/fine-tunes/{id}/metrics", "get", f"/fine-tunes/{job_id}/metrics", {}),
        ("/fine-tunes/estimate-price", "post", "/fine-tunes/estimate-price", {"json": body}),
        ("/fine-tunes/models/supported", "get", "/fine-tunes/models/supported", {}),
        (
            "/fine-tunes/models/limits",
            "get",
            "/fine-tunes/models/limits",
            {"params": {"model_name": MODEL}},
        ),
    ]:
        answers.append(
            (path, method, httpx.request(method.upper(), base + url, headers=auth, **kwargs))
        )
    for path, method, response in answers:
        assert response.status_code == 200, (path, response.text)
        jsonschema.validate(response.json(), response_schema(spec, path, method))
    events = answers[6][2].json()["data"]
    assert {e["type"] for e in events} >= {"job_pending", "training_start", "job_complete"}
    metrics = answers[8][2].json()["metrics"]
    assert len(metrics) > 2 and all(m["train/loss"] > 0 for m in metrics)

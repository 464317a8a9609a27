"""The Together adapter over real HTTP to the sandbox's Together-compatible surface
(``/sandbox/together/v1``): the whole workflow, a launch whose answer is lost, and the
mapping of Together's words and shapes onto Tuneboard's."""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from jobs.providers import BadRequestError, JobSpec, NotFoundError, TogetherProvider
from jobs.providers import together_records as records
from jobs.providers.paging import PageBudget, paginate
from tests.conftest import Sandbox
from tests.providers.conftest import make_config
from tests.sandbox.data import chat_examples, jsonl
from tests.support.proxy import FaultProxy, Rule

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
MARKER = "tuneboard_job_id"
CREATE = r"/fine-tunes$"


@pytest.fixture
def together_url(sandbox_url: str) -> str:
    return sandbox_url.removesuffix("/v1") + "/together/v1"


@pytest.fixture
def make_together(together_url: str, sandbox_key: str) -> Iterator[Callable[..., TogetherProvider]]:
    made: list[TogetherProvider] = []

    def make(*, base_url: str | None = None, **overrides: Any) -> TogetherProvider:
        overrides.setdefault("api_key", sandbox_key)
        provider = TogetherProvider(
            make_config(base_url or together_url, kind="together", **overrides)
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def together(make_together: Callable[..., TogetherProvider]) -> TogetherProvider:
    return make_together()


def upload(provider: TogetherProvider, content: bytes, name: str = "train.jsonl") -> str:
    sha = hashlib.sha256(content).hexdigest()
    info = provider.upload_file(
        filename=name, stream=io.BytesIO(content), size=len(content), sha256=sha
    )
    return provider.wait_for_file(info.id, timeout=5, poll=0.05).id


def wait_until_done(provider: TogetherProvider, job_id: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        info = provider.retrieve_job(job_id)
        if info.status in ("succeeded", "failed", "cancelled"):
            return info
        assert time.monotonic() < deadline, f"{job_id} still {info.provider_status}"
        time.sleep(0.05)


def test_the_whole_workflow_maps_together_onto_tuneboard(together: TogetherProvider) -> None:
    training = upload(together, jsonl(chat_examples(100)))
    validation = upload(together, jsonl(chat_examples(12, seed=3)), "valid.jsonl")
    files = together.list_files(purpose="fine-tune").data
    assert {f.id for f in files} == {training, validation}
    assert all(f.status == "processed" and f.filename.endswith(".jsonl") for f in files)
    assert together.download_file(training) == jsonl(chat_examples(100))

    launch = str(uuid.uuid4())
    spec = JobSpec(
        model=MODEL,
        training_file=training,
        validation_file=validation,
        hyperparameters={
            "n_epochs": 2,
            "learning_rate": 2e-5,
            "lora_r": 16,
            "lora_alpha": 32,
            "n_checkpoints": 2,
            "n_evals": 2,
            "warmup_ratio": 0.1,
            "lr_scheduler": "cosine",
            "batch_size": "auto",
        },
        suffix="my run",
        seed=42,
        metadata={MARKER: launch},
    )
    price = together.estimate_price(spec)
    assert price["estimated_total_price"] > 0 and price["estimated_train_token_count"] > 0
    created = together.create_job(spec, marker=MARKER)
    assert created.provider_status in ("pending", "queued", "running", "completed"), created.error
    assert created.seed == 42
    hp = created.hyperparameters
    assert (hp["n_epochs"], hp["learning_rate"], hp["lora_r"], hp["lora_alpha"]) == (
        2,
        2e-5,
        16,
        32,
    )
    assert (hp["training_type"], hp["lr_scheduler"], hp["warmup_ratio"]) == ("lora", "cosine", 0.1)
    assert hp["batch_size"] == 32  # "auto" sent as nothing: Together's "max" for the model
    assert created.raw["suffix"].startswith("my-run-tb")  # the marker rides in the suffix
    assert together.find_job(metadata_key=MARKER, value=launch) == created

    done = wait_until_done(together, created.id)
    assert (done.status, done.provider_status) == ("succeeded", "completed")
    assert done.fine_tuned_model == done.raw["model_output_name"]
    assert done.finished_at is not None and done.started_at is not None
    assert done.trained_tokens and done.trained_tokens > 0
    assert done.method == "supervised"

    events = list(paginate(lambda after: together.list_events(created.id, after=after, limit=3),
                           what="events", budget=PageBudget(50)))  # fmt: skip
    assert len({e.id for e in events}) == len(events) > 3  # stable, unique ids though none given
    assert [e.created_at for e in events] == sorted((e.created_at for e in events), reverse=True)
    assert events[0].type == "job_complete" and events[-1].type == "job_pending"
    assert together.list_events(created.id).data == together.list_events(created.id).data

    checkpoints = together.list_checkpoints(created.id).data
    steps = [c.step_number for c in checkpoints]
    assert steps == sorted(steps, reverse=True) and steps[0] is not None
    assert checkpoints[0].id == f"{created.id}:{steps[0]}"  # what from_checkpoint takes

    rows = together.list_metrics(created.id)
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    assert all("train_loss" in r and r["learning_rate"] >= 0 for r in rows)
    assert any("full_valid_loss" in r for r in rows)  # Together's eval/loss
    later = together.list_metrics(created.id, after_step=len(rows) - 3)
    assert [r["step"] for r in later] == [len(rows) - 2, len(rows) - 1, len(rows)]


def test_cancel_delete_and_what_together_cannot_do(
    together: TogetherProvider, settings: Any
) -> None:
    settings.SANDBOX_SECONDS_PER_STEP = 60  # still running when cancelled
    training = upload(together, jsonl(chat_examples(20)))
    info = together.create_job(JobSpec(model=MODEL, training_file=training))
    cancelled = together.cancel_job(info.id)
    assert (cancelled.status, cancelled.provider_status) == ("cancelled", "cancelled")
    with pytest.raises(BadRequestError, match="cannot pause"):
        together.pause_job(info.id)
    assert together.delete_job(info.id) is True
    with pytest.raises(NotFoundError):
        together.retrieve_job(info.id)


def test_catalog_limits_and_bad_requests(together: TogetherProvider) -> None:
    models = [m.id for m in together.list_models()]
    assert MODEL in models
    limits = together.model_limits(MODEL)
    assert limits["max_num_epochs"] >= 1 and limits["lora_training"]["max_rank"] >= 8
    training = upload(together, jsonl(chat_examples(20)))
    with pytest.raises(BadRequestError, match="learning_rate"):
        together.create_job(
            JobSpec(model=MODEL, training_file=training, hyperparameters={"learning_rate": 5.0})
        )
    with pytest.raises(BadRequestError, match="not supported"):
        together.create_job(JobSpec(model="gpt-4o-mini", training_file=training))
    assert together.list_jobs().data == []  # nothing half-made


@pytest.mark.parametrize(
    "fault",
    [
        Rule(action="drop", method="POST", path=CREATE, count=1),
        Rule(action="answer_after", status=502, method="POST", path=CREATE, count=1),
    ],
    ids=["dropped", "5xx-after-acting"],
)
def test_a_lost_create_answer_is_found_by_its_suffix_marker(
    together: TogetherProvider,
    make_together: Callable[..., TogetherProvider],
    live_server: Any,
    fault: Rule,
) -> None:
    training = upload(together, jsonl(chat_examples(20)))
    launch = str(uuid.uuid4())
    with FaultProxy(live_server.url) as proxy:
        proxied = make_together(base_url=proxy.url + "/sandbox/together/v1")
        proxy.add(fault)
        info = proxied.create_job(
            JobSpec(model=MODEL, training_file=training, suffix="x", metadata={MARKER: launch}),
            marker=MARKER,
        )
        assert fault.fired == 1
        assert len(proxy.handled("POST", CREATE)) == 1  # one create, then a lookup
        assert len(proxy.handled("GET", CREATE)) == 1
    jobs = together.list_jobs().data
    assert [j.id for j in jobs] == [info.id]
    assert jobs[0].metadata == {"tuneboard_marker": records.marker_value(launch)}


def test_the_api_key_goes_as_a_bearer_token_and_errors_carry_together_messages(
    make_together: Callable[..., TogetherProvider], together_url: str
) -> None:
    from jobs.providers import AuthError

    with pytest.raises(AuthError):
        make_together(api_key="sk-wrong-key-000000").list_models()
    response = httpx.get(together_url + "/fine-tunes/nope", headers={"Authorization": "Bearer x"})
    assert response.status_code == 401


# --- Odd and unknown values: parsing never fails on shape --------------------------------------


@pytest.mark.parametrize(
    ("raw", "status", "word"),
    [
        ({"id": "ft-1", "status": "compressing"}, "running", "compressing"),
        ({"id": "ft-1", "status": "cancel_requested"}, "running", "cancel_requested"),
        ({"id": "ft-1", "status": "error"}, "failed", "error"),
        ({"id": "ft-1", "status": "a-new-word"}, "a-new-word", "a-new-word"),
        ({"id": "ft-1"}, "unknown", "unknown"),
    ],
)
def test_statuses_map_onto_the_lifecycle_and_keep_their_word(
    raw: dict, status: str, word: str
) -> None:
    info = records.job_info(raw)
    assert (info.status, info.provider_status) == (status, word)


def test_odd_job_values_are_kept_or_dropped_never_fatal() -> None:
    info = records.job_info(
        {
            "id": "ft-2",
            "status": "error",
            "created_at": "not a date",
            "updated_at": 17,
            "n_epochs": "3",
            "learning_rate": float("nan"),
            "batch_size": "max",
            "training_type": {"type": "Lora", "lora_r": 8.0, "lora_alpha": True},
            "training_method": "sft",
            "lr_scheduler": [],
            "token_count": "12",
            "progress": None,
            "suffix": None,
            "model_output_name": 5,
            "unknown_key": {"x": 1},
        }
    )
    assert info.created_at is None and info.finished_at == 17
    assert info.hyperparameters == {
        "n_epochs": "3",
        "batch_size": "max",
        "training_type": "lora",
        "lora_r": 8.0,
    }
    assert info.trained_tokens == 12 and info.error is not None and info.metadata is None
    assert info.raw["unknown_key"] == {"x": 1}


def test_metric_names_and_markers() -> None:
    row = records.metric_row(
        {
            "train/loss": 0.5,
            "train/global_step": 7,
            "eval/loss": 0.7,
            "train/weird name!": 1,
            "train/nan": float("nan"),
            "text": "x",
            "flag": True,
        }
    )
    assert row == {"train_loss": 0.5, "step": 7.0, "full_valid_loss": 0.7, "train_weird_name": 1.0}
    value = "0f9a1b2c-3d4e-5f60-7182-93a4b5c6d7e8"
    suffix = records.suffix_with_marker("a very long suffix with spaces and more", value)
    assert len(suffix) <= records.MAX_SUFFIX and suffix.endswith("tb0f9a1b2c3d4e5f60718293a4")
    assert records.marker_in(None, f"org/Llama-3-{suffix}-abc123") == records.marker_value(value)
    assert records.marker_in("tb123", "plain-name") is None


def test_paging_a_whole_list_terminates_on_any_cursor() -> None:
    from jobs.providers.together import page_of

    items = [f"e{i}" for i in range(5)]
    first = page_of(items, after=None, limit=2, key=str)
    assert (first.data, first.has_more) == (["e0", "e1"], True)
    assert page_of(items, after="e3", limit=2, key=str).data == ["e4"]
    assert page_of(items, after="e4", limit=2, key=str).has_more is False
    gone = page_of(items, after="not-there", limit=2, key=str)
    assert (gone.data, gone.has_more) == ([], False)


def test_the_sandbox_surfaces_keep_their_jobs_apart(
    together: TogetherProvider, sandbox: Sandbox, sandbox_url: str
) -> None:
    training = upload(together, jsonl(chat_examples(20)))
    together.create_job(JobSpec(model=MODEL, training_file=training))
    openai_jobs = httpx.get(sandbox_url + "/fine_tuning/jobs", headers=sandbox.auth).json()["data"]
    assert openai_jobs == []
    assert len(together.list_jobs().data) == 1

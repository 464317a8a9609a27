"""A real training streams to a live Tuneboard (issue 17, deliverable 5): a two-layer causal LM
built from a config, with a tokenizer trained on the fly on a chat dataset downloaded through
the API, trained by transformers' ``Trainer`` for 50 steps with ``TuneboardCallback``. Then the
same with the server stopped in the middle: training finishes anyway, and once the server is
back the spool delivers everything, nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from core.services import api_token_create
from jobs.models import Checkpoint, Job, JobEvent, MetricPoint
from tests.conftest import wait_until
from tests.permissions import client_for, make_user
from tests.sandbox.data import chat_examples
from tests.support.proxy import FaultProxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
pytest.importorskip("torch", reason="requirements-train.txt is not installed")

SCRIPT = Path(__file__).with_name("train_tiny.py")
TRAIN_LOGS = list(range(5, 51, 5))
EVALS = list(range(10, 51, 10))


@pytest.fixture
def proxy(live_server: Any) -> Iterator[FaultProxy]:
    with FaultProxy(live_server.url) as proxy:
        yield proxy


def start_training(
    tmp_path: Path, url: str, make_dataset: Any, run_id: str, **env: str
) -> subprocess.Popen[str]:
    token = api_token_create(user=make_user("member"), name="gpu box", scope="write")[1]
    train = make_dataset(chat_examples(96, seed=1), name="chat-train")
    valid = make_dataset(chat_examples(24, seed=2), name="chat-valid")
    return subprocess.Popen(
        [sys.executable, str(SCRIPT)],
        env={
            **os.environ,
            "TUNEBOARD_URL": url, "TUNEBOARD_TOKEN": token, "TRAIN_DATASET": str(train.pk),
            "VALID_DATASET": str(valid.pk), "OUT_DIR": str(tmp_path), "RUN_ID": run_id,
            "TUNEBOARD_FLUSH_TIMEOUT": "120", "TUNEBOARD_RETRY_MAX": "1",
            "TUNEBOARD_FLUSH_INTERVAL": "0.2", "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **env,
        },
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def finished(process: subprocess.Popen[str]) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-5000:]
    return output


def assert_complete_run(run_id: str, tmp_path: Path) -> Job:
    job = Job.objects.select_related("connection").get(provider_job_id=run_id)
    assert job.connection.kind == "self_hosted"
    assert (job.status, job.total_steps, job.last_step) == ("succeeded", 50, 50)
    assert job.base_model == "tiny-gpt2-from-config" and job.tags == ["cpu", "tiny"]
    hyper = job.hyperparameters
    assert (hyper["learning_rate"], hyper["max_steps"], hyper["per_device_train_batch_size"]) == (
        0.003, 50, 8,
    )  # fmt: skip
    points = {p.step: p for p in MetricPoint.objects.filter(job=job)}
    assert sorted(s for s, p in points.items() if p.train_loss is not None) == TRAIN_LOGS
    assert sorted(s for s, p in points.items() if p.full_valid_loss is not None) == EVALS
    for step in TRAIN_LOGS:
        extra = points[step].extra
        assert {"learning_rate", "grad_norm", "epoch"} <= set(extra), (step, extra)
        assert extra["tokens_seen"] > 0
    # It learned: the loss fell from its first logged value.
    assert points[50].train_loss < points[5].train_loss
    assert job.best_full_valid_loss == min(points[s].full_valid_loss for s in EVALS)
    checkpoints = list(Checkpoint.objects.filter(job=job).order_by("step"))
    assert [c.step for c in checkpoints] == EVALS
    assert checkpoints[-1].model_name == str(tmp_path / "checkpoint-50")
    assert checkpoints[-1].metrics["full_valid_loss"] == points[50].full_valid_loss
    assert job.trained_tokens == int(points[50].extra["tokens_seen"])
    # The run page's figures carry every logged step.
    figures = client_for("viewer").get(f"/runs/{job.pk}/figures.json").json()["figures"]
    traces = {t["name"]: t for t in figures["loss"]["data"]}
    assert traces["train loss (raw)"]["x"] == TRAIN_LOGS
    assert traces["full-valid loss"]["x"] == EVALS
    return job


def test_a_real_training_streams_to_tuneboard(
    live_server: Any, tmp_path: Path, make_dataset: Any
) -> None:
    process = start_training(tmp_path, live_server.url, make_dataset, "tiny-1")
    finished(process)
    job = assert_complete_run("tiny-1", tmp_path)
    assert job.training_dataset.name == "chat-train"
    assert job.validation_dataset.name == "chat-valid"
    assert not JobEvent.objects.filter(job=job, level="error").exists()


def test_training_goes_on_while_tuneboard_is_down_and_the_spool_delivers_it_all_once(
    live_server: Any, proxy: FaultProxy, tmp_path: Path, make_dataset: Any
) -> None:
    process = start_training(tmp_path, proxy.url, make_dataset, "tiny-2", PAUSE_AT_STEP="20")
    assert wait_until(lambda: (tmp_path / "paused").exists() or process.poll() is not None,
                      timeout=300)  # fmt: skip
    assert process.poll() is None, finished(process)
    # Everything up to step 20 has arrived; then the server goes away.
    assert wait_until(
        lambda: Checkpoint.objects.filter(job__provider_job_id="tiny-2", step=20).exists(),
        timeout=60,
    )
    port = proxy.port
    proxy.close()
    (tmp_path / "resume").touch()
    # Training runs to its end without the server.
    assert wait_until(lambda: (tmp_path / "trained").exists() or process.poll() is not None,
                      timeout=300)  # fmt: skip
    assert (tmp_path / "checkpoint-50").is_dir()
    job = Job.objects.get(provider_job_id="tiny-2")
    assert job.status == "running"
    assert MetricPoint.objects.filter(job=job).order_by("-step").first().step == 20
    spooled = (tmp_path / "spool" / "tiny-2" / "ops.jsonl").stat().st_size
    assert int((tmp_path / "spool" / "tiny-2" / "sent").read_text()) < spooled
    # The server is back: the spool delivers the rest, once.
    with FaultProxy(live_server.url, port=port) as back:
        finished(process)
        assert back.handled("POST", r"/metrics$")
    assert_complete_run("tiny-2", tmp_path)
    assert Job.objects.filter(provider_job_id="tiny-2").count() == 1
    spool = tmp_path / "spool" / "tiny-2"
    assert int((spool / "sent").read_text()) == (spool / "ops.jsonl").stat().st_size


def test_a_stop_from_tuneboard_ends_the_training_cleanly(
    live_server: Any, tmp_path: Path, make_dataset: Any
) -> None:
    """What a guardrail's cancel does to a self-hosted run (issue 18): the API's next reply says
    stop, ``TuneboardCallback`` sets the trainer's ``should_training_stop``, and the trainer saves
    a last checkpoint and ends; the run is reported cancelled."""
    process = start_training(
        tmp_path, live_server.url, make_dataset, "tiny-3", PAUSE_AT_STEP="20", STOP="1"
    )
    assert wait_until(lambda: (tmp_path / "paused").exists() or process.poll() is not None,
                      timeout=300)  # fmt: skip
    assert wait_until(
        lambda: Checkpoint.objects.filter(job__provider_job_id="tiny-3", step=20).exists(),
        timeout=60,
    )
    Job.objects.filter(provider_job_id="tiny-3").update(stop_requested_at=timezone.now())
    (tmp_path / "resume").touch()
    finished(process)
    job = Job.objects.get(provider_job_id="tiny-3")
    # Stopped at the step after the pause, its train loss last logged at step 20.
    assert (job.status, job.last_step) == ("cancelled", 20)
    assert list(Checkpoint.objects.filter(job=job).values_list("step", flat=True).order_by("step")) == [
        10, 20, 21,
    ]  # fmt: skip
    assert (tmp_path / "checkpoint-21").is_dir() and not (tmp_path / "checkpoint-30").exists()
    assert JobEvent.objects.filter(job=job, message="Stopped at Tuneboard's request.").exists()

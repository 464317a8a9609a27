"""The client package (issue 17, deliverable 3): installable on its own with only httpx, and a
spool that a process left behind when it died is delivered later by ``python -m tuneboard
sync``, in order and once."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from core.services import api_token_create
from jobs.models import Job, JobEvent, MetricPoint
from tests.conftest import BASE_DIR
from tests.permissions import make_user
from tests.sandbox.data import chat_examples, jsonl

pytestmark = pytest.mark.django_db(transaction=True)

DIES_MIDWAY = """
import os, tuneboard
run = tuneboard.init(run="crashed-7", name="died", url="http://127.0.0.1:9", token="tb_unused",
                     spool_dir=os.environ["SPOOL"], total_steps=4)
for step in (1, 2, 3):
    run.log({"loss": 4.0 - step, "learning_rate": 0.1, "nan": float("nan")}, step=step)
run.event("epoch 1 done")
run.checkpoint(3, uri="/ckpt/3", metrics={"train_loss": 1.0})
os._exit(1)  # killed: no finish, no atexit
"""


def test_a_dead_processes_spool_is_delivered_later_once(live_server: Any, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    env = {**os.environ, "SPOOL": str(spool)}
    died = subprocess.run([sys.executable, "-c", DIES_MIDWAY], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert died.returncode == 1, died.stderr
    assert not Job.objects.exists()
    token = api_token_create(user=make_user("member"), name="sync", scope="write")[1]
    env |= {"TUNEBOARD_URL": live_server.url, "TUNEBOARD_TOKEN": token}
    for _ in range(2):  # the second time there is nothing left to send
        sync = subprocess.run([sys.executable, "-m", "tuneboard", "sync", str(spool)], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert sync.returncode == 0 and "Everything is delivered" in sync.stdout, sync.stderr
    job = Job.objects.get()
    assert (job.provider_job_id, job.name, job.status, job.total_steps) == (
        "crashed-7", "died", "running", 4,
    )  # fmt: skip
    rows = MetricPoint.objects.filter(job=job).order_by("step")
    assert [(p.step, p.train_loss, p.extra) for p in rows] == [
        (1, 3.0, {"learning_rate": 0.1}), (2, 2.0, {"learning_rate": 0.1}),
        (3, 1.0, {"learning_rate": 0.1}),
    ]  # fmt: skip
    assert list(JobEvent.objects.filter(job=job).values_list("message", flat=True)) == [
        "epoch 1 done"
    ]
    assert job.checkpoints.get().model_name == "/ckpt/3"


def test_the_client_package_needs_only_httpx(tmp_path: Path) -> None:
    # Built from a copy: setuptools writes its build directory next to the sources.
    source = shutil.copytree(BASE_DIR / "client", tmp_path / "client",
                             ignore=shutil.ignore_patterns("build", "*.egg-info"))  # fmt: skip
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    wheel = next(tmp_path.glob("tuneboard_client-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires == [
        "Requires-Dist: httpx>=0.27",
        'Requires-Dist: transformers>=4.40; extra == "transformers"',
    ]
    assert {"tuneboard/run.py", "tuneboard/callback.py", "tuneboard/spool.py"} <= set(names)
    # The logging API imports without transformers (or torch) installed.
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys; sys.modules['transformers'] = None; sys.modules['torch'] = None\n"
         "sys.path.insert(0, sys.argv[1]); import tuneboard; print(tuneboard.init.__name__)",
         str(wheel)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.returncode == 0 and probe.stdout.strip() == "init", probe.stderr


CRASHES = """
import os, tuneboard
train = tuneboard.upload_dataset(os.environ["DATA"], name="uploaded by the script")
run = tuneboard.init(run="oom-1", name="crashes", spool_dir=os.environ["SPOOL"],
                     training_dataset=train)
run.log({"loss": 2.0}, step=1)
raise RuntimeError("CUDA out of memory at step 2")
"""


def test_an_uncaught_exception_fails_the_run_with_its_message(
    live_server: Any, tmp_path: Path
) -> None:
    token = api_token_create(user=make_user("member"), name="crash", scope="write")[1]
    data = tmp_path / "train.jsonl"
    data.write_bytes(jsonl(chat_examples(12)))
    env = {**os.environ, "SPOOL": str(tmp_path / "spool"), "DATA": str(data),
           "TUNEBOARD_URL": live_server.url,
           "TUNEBOARD_TOKEN": token, "TUNEBOARD_FLUSH_INTERVAL": "0.2"}  # fmt: skip
    crashed = subprocess.run([sys.executable, "-c", CRASHES], env=env, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert crashed.returncode == 1 and "CUDA out of memory" in crashed.stderr
    job = Job.objects.get(provider_job_id="oom-1")
    assert job.status == "failed" and job.finished_at is not None
    assert job.error == {"code": "training_failed",
                         "message": "RuntimeError: CUDA out of memory at step 2"}  # fmt: skip
    assert MetricPoint.objects.get(job=job).train_loss == 2.0
    assert job.training_dataset.name == "uploaded by the script"
    assert job.training_dataset.sha256 == hashlib.sha256(data.read_bytes()).hexdigest()

from __future__ import annotations

import io

import openai
import pytest
from django.contrib.admin.sites import site
from django.urls import reverse

from sandbox import models as sandbox_models
from sandbox.models import SandboxJob
from tests.permissions import assert_matrix, client_for
from tests.sandbox.data import chat_examples, jsonl

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_sandbox_model_is_in_the_admin_read_only() -> None:
    registered = {m for m in site._registry if m._meta.app_label == "sandbox"}
    declared = {
        m for m in vars(sandbox_models).values()
        if isinstance(m, type) and issubclass(m, sandbox_models.models.Model) and m._meta.app_label == "sandbox"
    }  # fmt: skip
    assert registered == declared
    staff = client_for("staff")
    for model in registered:
        url = reverse(f"admin:sandbox_{model._meta.model_name}_changelist")
        assert staff.get(url).status_code == 200, url
        assert staff.get(reverse(f"admin:sandbox_{model._meta.model_name}_add")).status_code == 403


def test_admin_fast_forwards_a_slow_job(sandbox_url: str, sdk: openai.OpenAI) -> None:
    file_id = sdk.files.create(
        file=("t.jsonl", io.BytesIO(jsonl(chat_examples(12)))), purpose="fine-tune"
    ).id
    job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=file_id, metadata={"sandbox_seconds_per_step": "60"}
    )
    assert sdk.fine_tuning.jobs.retrieve(job.id).status == "validating_files"
    url = reverse("admin:sandbox_sandboxjob_changelist")
    assert_matrix(url, {"anonymous": "login", "member": "login", "staff": 200})
    response = client_for("staff").post(
        url, {"action": "fast_forward", "_selected_action": [job.id]}
    )
    assert response.status_code == 302
    done = sdk.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded" and done.fine_tuned_model
    steps = [e for e in sdk.fine_tuning.jobs.list_events(job.id, limit=1000) if e.type == "metrics"]
    # 12 examples: "auto" raises epochs to 100 // 12 = 8, batch size 1.
    assert len(steps) == SandboxJob.objects.get(pk=job.id).total_steps == 12 * 8


def test_default_speed_finishes_a_demo_job_in_about_a_minute(
    sandbox_url: str, sdk: openai.OpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.SANDBOX_SECONDS_PER_STEP = 0.2  # the shipped default
    file_id = sdk.files.create(
        file=("t.jsonl", io.BytesIO(jsonl(chat_examples(100)))), purpose="fine-tune"
    ).id
    job = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
    row = SandboxJob.objects.get(pk=job.id)
    duration = row.validate_seconds + row.queue_seconds + row.total_steps * row.seconds_per_step
    assert row.total_steps == 300  # 100 examples, batch size 1, 3 epochs
    assert 55 <= duration <= 75, duration

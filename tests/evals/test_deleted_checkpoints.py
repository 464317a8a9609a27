"""Checkpoints the provider deleted (issue 14, item 6): seen gone from the job's checkpoint list
or answering 404, they are marked on the run page and no longer offered to evaluations or the
playground; an evaluation that met one says its cells failed. A finished job is no longer
synced, so an evaluation asks the provider (GET /models/{id}) before a checkpoint's first call
and does not send requests to one that is gone."""

from __future__ import annotations

import re

import httpx
import pytest

from evals.choices import choice_for_key, model_choices, run_choices
from evals.models import EvalOutput
from evals.running import GONE_CHECKPOINT
from jobs.models import Checkpoint
from jobs.services import checkpoint_mark_deleted
from jobs.sync import job_sync
from tests.conftest import LiveRequests, Sandbox
from tests.evals.conftest import Trained
from tests.evals.test_run import create, run_to_end
from tests.permissions import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_checkpoint_deleted_at_the_provider_is_marked_and_not_offered(  # type: ignore[no-untyped-def]
    trained: Trained, sdk
) -> None:
    first, *others = Checkpoint.objects.filter(job=trained.job).order_by("step")
    key = f"ckpt:{first.pk}"
    assert key in [c.key for c in run_choices(trained.job)]
    assert sdk.models.delete(first.model_name).deleted
    # The sandbox serves it no more: not in the job's list, not as a model.
    listed = sdk.fine_tuning.jobs.checkpoints.list(trained.job.provider_job_id)
    assert first.model_name not in [c.fine_tuned_model_checkpoint for c in listed.data]
    assert job_sync(job_id=trained.job.pk, full=True).error == ""
    first.refresh_from_db()
    assert first.deleted_at is not None
    assert all(
        c.deleted_at is None for c in Checkpoint.objects.filter(pk__in=[o.pk for o in others])
    )
    # Neither "Evaluate checkpoints", the evaluation form nor the playground offers it.
    assert key not in [c.key for c in run_choices(trained.job)]
    assert key not in [c.key for c in model_choices()]
    assert choice_for_key(key) is None
    assert f"ckpt:{others[0].pk}" in [c.key for c in run_choices(trained.job)]
    html = client_for("viewer").get(f"/jobs/{trained.job.pk}/").content.decode()
    assert html.count("Deleted by the provider") == 1
    # Compact id shown, the full one in the title and in what the copy button copies.
    short = "…:" + ":".join(first.model_name.split(":")[-2:])
    assert f'<code class="mono" title="{first.model_name}">{short}</code>' in html
    assert f'<span id="ckpt-{first.pk}" hidden>{first.model_name}</span>' in html


def test_an_evaluation_meeting_a_deleted_checkpoint_says_so_and_stops_offering_it(  # type: ignore[no-untyped-def]
    trained: Trained, sdk
) -> None:
    choices = run_choices(trained.job)
    evaluation = create(trained, [c.key for c in choices])
    checkpoint = Checkpoint.objects.filter(job=trained.job).order_by("step").first()
    assert checkpoint is not None
    assert sdk.models.delete(checkpoint.model_name).deleted
    evaluation = run_to_end(evaluation)
    assert evaluation.status == "partial" and evaluation.cells_failed == 12
    failed = EvalOutput.objects.filter(evaluation=evaluation, status="failed")
    assert set(failed.values_list("column__checkpoint_id", flat=True)) == {checkpoint.pk}
    checkpoint.refresh_from_db()
    assert checkpoint.deleted_at is not None
    assert f"ckpt:{checkpoint.pk}" not in [c.key for c in run_choices(trained.job)]


def chat_requests(sandbox: Sandbox, model: str) -> int:
    response = httpx.get(
        f"{sandbox.url.removesuffix('/v1')}/control/completions",
        headers=sandbox.auth,
        params={"model": model},
    )
    assert response.status_code == 200, response.text
    return sum(row["count"] for row in response.json()["data"])


def test_a_checkpoint_deleted_after_its_job_finished_is_checked_before_any_call(  # type: ignore[no-untyped-def]
    trained: Trained, sdk, sandbox: Sandbox
) -> None:
    # A finished job is not synced any more: nothing here knows the checkpoint went away.
    gone, *kept = Checkpoint.objects.filter(job=trained.job).order_by("step")
    assert sdk.models.retrieve(kept[0].model_name).id == kept[0].model_name  # still served
    assert sdk.models.delete(gone.model_name).deleted
    keys = [c.key for c in run_choices(trained.job)]
    assert f"ckpt:{gone.pk}" in keys
    evaluation = create(trained, keys)

    evaluation = run_to_end(evaluation)
    assert evaluation.status == "partial"
    assert (evaluation.cells_done, evaluation.cells_failed) == (60, 12)
    failed = EvalOutput.objects.filter(evaluation=evaluation, status="failed")
    assert set(failed.values_list("column__checkpoint_id", flat=True)) == {gone.pk}
    assert set(failed.values_list("error", flat=True)) == {GONE_CHECKPOINT}
    # Not one chat request went to the deleted checkpoint; the others answered every row.
    assert chat_requests(sandbox, gone.model_name) == 0
    assert chat_requests(sandbox, kept[0].model_name) == 12
    gone.refresh_from_db()
    assert gone.deleted_at is not None
    assert not Checkpoint.objects.filter(pk__in=[c.pk for c in kept], deleted_at__isnull=False)
    assert f"ckpt:{gone.pk}" not in [c.key for c in run_choices(trained.job)]
    html = client_for("viewer").get(f"/evaluations/{evaluation.pk}/").content.decode()
    assert "12 of 60 cells failed (no answer)" in html
    assert "no longer serves this checkpoint model" in html


def test_a_checkpoint_known_deleted_is_not_asked_again(
    trained: Trained, sandbox: Sandbox, live_requests: LiveRequests
) -> None:
    gone = Checkpoint.objects.filter(job=trained.job).order_by("step").first()
    assert gone is not None
    evaluation = create(trained, [c.key for c in run_choices(trained.job)])
    # Marked between the evaluation's creation and its first step (by another evaluation,
    # or a sync that found it gone from the job's list): its cells fail without a lookup or a
    # call, even though this sandbox would still answer.
    assert checkpoint_mark_deleted(model_name=gone.model_name, connection_id=gone.job.connection_id)
    others = Checkpoint.objects.filter(job=trained.job).exclude(pk=gone.pk)
    evaluation = run_to_end(evaluation)
    assert (evaluation.status, evaluation.cells_failed) == ("partial", 12)
    failed = EvalOutput.objects.filter(evaluation=evaluation, status="failed")
    assert set(failed.values_list("error", flat=True)) == {GONE_CHECKPOINT}
    assert chat_requests(sandbox, gone.model_name) == 0
    # Only the checkpoints not known to be gone were looked up.
    assert live_requests.peak(sandbox.key, f"/models/{gone.model_name}") == 0
    assert all(live_requests.peak(sandbox.key, f"/models/{c.model_name}") for c in others)


def test_a_failed_lookup_proves_nothing(trained: Trained, sdk, sandbox: Sandbox) -> None:  # type: ignore[no-untyped-def]
    gone, *kept = Checkpoint.objects.filter(job=trained.job).order_by("step")
    assert sdk.models.delete(gone.model_name).deleted
    evaluation = create(trained, [c.key for c in run_choices(trained.job)])
    # The provider cannot answer the lookups: the checkpoints are used as usual, and the
    # deleted one is found out by its calls' 404.
    sandbox.control("faults", {"kinds": ["503"], "path": f"/models/{re.escape(gone.model_name)}$"})
    evaluation = run_to_end(evaluation)
    assert (evaluation.status, evaluation.cells_failed) == ("partial", 12)
    failed = EvalOutput.objects.filter(evaluation=evaluation, status="failed")
    assert set(failed.values_list("column__checkpoint_id", flat=True)) == {gone.pk}
    assert all("HTTP 404" in error for error in failed.values_list("error", flat=True))
    assert chat_requests(sandbox, gone.model_name) == 12
    gone.refresh_from_db()
    assert gone.deleted_at is not None
    assert not Checkpoint.objects.filter(pk__in=[c.pk for c in kept], deleted_at__isnull=False)


def test_evaluate_checkpoints_of_a_finished_job_leaves_out_one_deleted_since(  # type: ignore[no-untyped-def]
    trained: Trained, sdk
) -> None:
    gone, *kept = Checkpoint.objects.filter(job=trained.job).order_by("step")
    assert sdk.models.delete(gone.model_name).deleted
    html = client_for("member").get(f"/evaluations/new/?job={trained.job.pk}").content.decode()
    selected = re.findall(r'<option value="(ckpt:\d+)"[^>]*selected', html)
    assert selected == [f"ckpt:{c.pk}" for c in kept]
    assert f'value="ckpt:{gone.pk}"' not in html  # not offered at all
    gone.refresh_from_db()
    assert gone.deleted_at is not None

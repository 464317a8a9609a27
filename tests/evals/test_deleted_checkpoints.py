"""Checkpoints the provider deleted (issue 14, item 6): seen gone from the job's checkpoint list
or answering 404, they are marked on the run page and no longer offered to evaluations or the
playground; an evaluation that met one says its cells failed."""

from __future__ import annotations

import pytest

from evals.choices import choice_for_key, model_choices, run_choices
from evals.models import EvalOutput
from jobs.models import Checkpoint
from jobs.sync import job_sync
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

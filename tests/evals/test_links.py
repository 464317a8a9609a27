"""Evaluations seen from runs: "Evaluate checkpoints" on a run page pre-fills the form, and the
run and compare pages show the latest evaluation scores per model."""

from __future__ import annotations

import re

import pytest

from evals.choices import run_choices
from evals.models import Evaluation
from jobs.services import connection_archive
from tests.evals.conftest import Trained, train
from tests.permissions import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_run_page_links_to_a_prefilled_evaluation_and_shows_scores(
    trained: Trained,
    finished: Evaluation,
) -> None:
    member = client_for("member")
    html = member.get(f"/jobs/{trained.job.pk}/").content.decode()
    section = html.split('id="run-evaluations"', 1)[1].split("</section>", 1)[0]
    assert f'href="/evaluations/new/?job={trained.job.pk}"' in section
    assert f'href="/evaluations/{finished.pk}/"' in section
    means = re.findall(r'data-mean="([0-9.]*)"', section)
    assert [float(m) for m in means] == [0.0, 0.75, 1.0, 1.0, 1.0]
    assert section.count('class="ev-this-run"') == 4  # three checkpoints and the final model
    # Viewers see the scores, not the button.
    viewer = client_for("viewer").get(f"/jobs/{trained.job.pk}/").content.decode()
    assert "Evaluate checkpoints" not in viewer and f"/evaluations/{finished.pk}/" in viewer

    form = member.get(f"/evaluations/new/?job={trained.job.pk}").content.decode()
    assert len(re.findall(r"<option value=\"[^\"]+\" selected>", form)) >= 5 + 1
    assert [c.kind for c in run_choices(trained.job)] == [
        "base", "checkpoint", "checkpoint", "checkpoint", "fine_tuned",
    ]  # fmt: skip

    # Archived (key removed): the scores stay, the button goes.
    connection_archive(connection=trained.job.connection, actor=None)
    html = member.get(f"/jobs/{trained.job.pk}/").content.decode()
    assert "Evaluate checkpoints" not in html and f"/evaluations/{finished.pk}/" in html
    assert member.get(f"/evaluations/{finished.pk}/").status_code == 200


def test_compare_page_shows_each_runs_latest_score(
    trained: Trained,
    finished: Evaluation,
    sdk,
    sandbox_connection,
) -> None:  # type: ignore[no-untyped-def]
    other = train(sdk, sandbox_connection, n=10, epochs=2).job
    html = client_for("viewer").get(f"/compare/?runs={trained.job.pk},{other.pk}").content.decode()
    table = html.split('id="compare-evaluations"', 1)[1].split("</table>", 1)[0]
    assert f'href="/evaluations/{finished.pk}/"' in table
    assert 'data-mean="1.0"' in table  # the evaluated run's final model
    assert "not evaluated" in table  # the other run

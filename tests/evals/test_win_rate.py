"""Win rate vs baseline (issue 14, item 6): without a pairwise judge it compares a chosen grader
row by row, ties counted as ties; the person picks the grader when creating the evaluation and
may change it on its page (members only); the page says which grader it is."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.models import AuditEntry
from evals import selectors
from evals.choices import run_choices
from evals.models import EvalModel, Evaluation
from evals.services import EvaluationError, evaluation_set_win_grader
from tests.evals.conftest import Trained
from tests.evals.test_run import create
from tests.permissions import LOGIN, SHARE, assert_matrix, client_for

# Two graders, scored per row for the model (column 2) and the baseline (column 1).
#          exact (model, base)   F1 (model, base)
ROWS = [
    ((1.0, 0.0), (1.0, 0.5)),  # exact: win   F1: win
    ((0.0, 0.0), (0.2, 0.6)),  # exact: tie   F1: loss
    ((0.0, 0.0), (0.3, 0.9)),  # exact: tie   F1: loss
    ((0.0, 1.0), (0.8, 0.8)),  # exact: loss  F1: tie
]
GRADERS = [
    {"id": "exact_match", "kind": "exact_match", "label": "Exact match", "options": {}},
    {"id": "token_f1", "kind": "token_f1", "label": "Token F1", "options": {}},
]


def light(column: int, example: int, exact: float, f1: float) -> dict[str, Any]:
    return {
        "id": column * 100 + example, "example_id": example, "column_id": column,
        "status": "succeeded", "scores": {"exact_match": exact, "token_f1": f1},
        "judge_score": None, "pairwise_score": None, "latency_ms": 10,
        "prompt_tokens": 5, "completion_tokens": 5,
    }  # fmt: skip


def win_of(win_grader: str) -> tuple[selectors.Summary, Any]:
    evaluation = Evaluation(graders=GRADERS, baseline_position=0, win_grader=win_grader)
    cols = [
        EvalModel(pk=1, position=0, label="base", model_name="gpt-4o-mini", kind="base"),
        EvalModel(pk=2, position=1, label="tuned", model_name="ft:x", kind="fine_tuned"),
    ]
    rows = []
    for example, ((exact, exact_base), (f1, f1_base)) in enumerate(ROWS):
        rows += [light(1, example, exact_base, f1_base), light(2, example, exact, f1)]
    result = selectors.summary(evaluation, cols, rows)
    assert result.columns[0].win is None  # the baseline has no win rate against itself
    return result, result.columns[1].win


@pytest.mark.django_db
def test_two_graders_give_different_win_rates_ties_counted_as_ties() -> None:
    by_exact, win = win_of("exact_match")
    assert (win.wins, win.ties, win.losses) == (1, 2, 1) and win.rate == 0.5
    assert by_exact.win_metric == "exact_match"
    assert "the grader “Exact match” row by row" in by_exact.win_basis

    by_f1, win = win_of("token_f1")
    assert (win.wins, win.ties, win.losses) == (1, 1, 2) and win.rate == 0.375
    assert by_f1.win_metric == "token_f1"
    assert "the grader “Token F1” row by row" in by_f1.win_basis
    # The scores themselves do not depend on the choice.
    assert by_exact.columns[1].scores["token_f1"] == by_f1.columns[1].scores["token_f1"]

    # Nothing chosen, or a choice that is no longer one of the scores: the first grader.
    for fallback in ("", "regex", "judge"):
        result, win = win_of(fallback)
        assert result.win_metric == "exact_match" and win.rate == 0.5


through_pages = pytest.mark.django_db(transaction=True)
POSTS = {
    "anonymous": LOGIN, "norole": 403, "viewer": 403, "member": 302, "staff": 302, SHARE: LOGIN,
}  # fmt: skip


def win_cells(html: str) -> list[str]:
    """The W/T/L of each summary row's win-rate cell ("—" for none)."""
    body = html.split('id="evaluation-summary"', 1)[1].split("</tbody>", 1)[0]
    return [m or "—" for m in re.findall(r'data-win="([^"]*)"', body)]


def expected_cells(evaluation: Evaluation) -> list[str]:
    summary = selectors.summary(evaluation)
    return [f"{c.win.wins}/{c.win.ties}/{c.win.losses}" if c.win else "—" for c in summary.columns]


@through_pages
def test_a_member_changes_the_win_rate_grader_on_the_page(finished: Evaluation) -> None:
    url = f"/evaluations/{finished.pk}/"
    member = client_for("member")
    html = member.get(url).content.decode()
    assert "the grader “Exact match” row by row" in html
    assert f'action="/evaluations/{finished.pk}/win-rate/"' in html
    assert '<option value="exact_match" selected>Exact match</option>' in html
    by_exact = win_cells(html)
    assert by_exact == expected_cells(finished) and by_exact[0] == "—"
    assert by_exact[1:] == ["9/3/0", "12/0/0", "12/0/0", "12/0/0"]  # exact match: 0 for the base

    response = member.post(f"{url}win-rate/", {"win_grader": "token_f1"})
    assert response.status_code == 302 and response["Location"] == url
    finished.refresh_from_db()
    assert finished.win_grader == "token_f1"
    html = member.get(url).content.decode()
    assert "Win rate vs baseline counted on the chosen grader." in html
    assert "the grader “Token F1” row by row" in html
    assert '<option value="token_f1" selected>Token F1</option>' in html
    by_f1 = win_cells(html)
    assert by_f1 == expected_cells(finished) and by_f1 != by_exact, by_f1
    entry = AuditEntry.objects.get(action="evaluation_win_grader")
    assert entry.detail == {"from": "", "to": "token_f1"}

    # A viewer and a share link see which grader it is, not the form.
    viewer = client_for("viewer").get(url).content.decode()
    assert "the grader “Token F1” row by row" in viewer and "/win-rate/" not in viewer
    share = member.post(f"{url}share/", {"label": "Team"})
    assert share.status_code == 302
    token_page = member.get("/share-links/").content.decode()
    link = re.search(r'id="tb-new-link-url" readonly value="([^"]+)"', token_page).group(1)
    public = client_for(SHARE).get(link.split("testserver", 1)[1]).content.decode()
    assert "the grader “Token F1” row by row" in public and "/win-rate/" not in public


@through_pages
def test_win_rate_grader_permissions_and_bad_choices(finished: Evaluation) -> None:
    url = f"/evaluations/{finished.pk}/win-rate/"
    reset = lambda: Evaluation.objects.filter(pk=finished.pk).update(win_grader="")  # noqa: E731
    assert_matrix(url, POSTS, method="post", data={"win_grader": "token_f1"}, before=reset)
    for role in ("viewer", "norole", "anonymous"):
        reset()
        client_for(role).post(url, {"win_grader": "token_f1"})
        assert Evaluation.objects.get(pk=finished.pk).win_grader == ""
    assert client_for("member").get(url).status_code == 405  # no GET writes

    member = client_for("member")
    for bad in ("nonsense", "judge", "", "<script>", "x" * 500):
        response = member.post(url, {"win_grader": bad}, follow=True)
        assert response.status_code == 200
        assert "Choose one of this evaluation&#x27;s graders." in response.content.decode()
        assert Evaluation.objects.get(pk=finished.pk).win_grader == ""
    assert member.post("/evaluations/999999/win-rate/", {"win_grader": "x"}).status_code == 404


@through_pages
def test_a_pairwise_judge_decides_and_the_choice_cannot_override_it(trained: Trained) -> None:
    keys = [c.key for c in run_choices(trained.job)][:2]
    evaluation = create(trained, keys, judge_key=keys[0], judge_pairwise=True)
    with pytest.raises(EvaluationError, match="pairwise judge"):
        evaluation_set_win_grader(evaluation=evaluation, grader="token_f1", user=None)
    summary = selectors.summary(evaluation)
    assert summary.win_metric is None and "pairwise verdict" in summary.win_basis
    html = client_for("member").get(f"/evaluations/{evaluation.pk}/").content.decode()
    assert "/win-rate/" not in html
    Evaluation.objects.filter(pk=evaluation.pk).update(status="cancelled")


@through_pages
def test_the_new_evaluation_form_stores_the_chosen_grader(trained: Trained) -> None:
    client = client_for("member")
    html = client.get("/evaluations/new/").content.decode()
    assert 'name="win_grader"' in html and "Win rate counted on" in html
    keys = [c.key for c in run_choices(trained.job)][:2]
    data = {
        "dataset": trained.dataset.pk, "models": keys, "temperature": "0", "exact_match": "on",
        "exact_ignore_whitespace": "on", "token_f1": "on", "judge_prompt": "",
        "judge_pairwise_prompt": "", "action": "start",
    }  # fmt: skip

    def errors(**changes: object) -> str:
        response = client.post("/evaluations/new/", {**data, **changes})
        assert response.status_code == 200
        return response.content.decode()

    assert "Choose one of the graders ticked above." in errors(win_grader="regex")
    assert "Choose an LLM judge" in errors(win_grader="judge")
    assert "Select a valid choice" in errors(win_grader="nonsense")
    assert not Evaluation.objects.exists()

    response = client.post("/evaluations/new/", {**data, "win_grader": "token_f1"})
    evaluation = Evaluation.objects.get()
    assert response.status_code == 302 and evaluation.win_grader == "token_f1"
    assert selectors.summary(evaluation).win_metric == "token_f1"
    Evaluation.objects.filter(pk=evaluation.pk).update(status="cancelled")
    # Without a choice: the first grader, as before.
    client.post("/evaluations/new/", data)
    assert Evaluation.objects.order_by("-pk").first().win_grader == ""  # type: ignore[union-attr]
    Evaluation.objects.update(status="cancelled")

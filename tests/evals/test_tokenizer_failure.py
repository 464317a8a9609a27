"""Issue 14.1 for evaluations: counting an evaluation's prompts needs the tokenizer, and when
its BPE file is damaged the estimate and the start both say so, in words, without a server
error and without writing half an evaluation."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest

from evals.choices import run_choices
from evals.models import EvalExample, Evaluation
from evals.services import EvaluationError, EvaluationRequest, evaluation_create
from tests.evals.conftest import Trained
from tests.permissions import client_for
from tests.support.tokenizer import damaged_bpe

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE = (
    "The tokenizer could not be loaded, so the prompts cannot be counted and no evaluation can "
    "be estimated or started: o200k_base: BPE file o200k_base.tiktoken is damaged or replaced "
    "(its sha256 is not the shipped file's); restore it from the Tuneboard release."
)


def form_errors(html: str) -> list[str]:
    """The form's own errors (the alert above its fields), as text."""
    block = re.search(r'<div class="error" role="alert">(.*?)</div>', html, re.S)
    if not block:
        return []
    return [unescape(text) for text in re.findall(r"<p>(.*?)</p>", block.group(1), re.S)]


def test_a_damaged_tokenizer_is_named_by_the_estimate_and_the_start(
    trained: Trained, tmp_path: Path
) -> None:
    client = client_for("member")
    choices = run_choices(trained.job)
    data = {
        "dataset": trained.dataset.pk, "models": [c.key for c in choices], "temperature": "0",
        "exact_match": "on", "token_f1": "on", "judge_prompt": "", "judge_pairwise_prompt": "",
    }  # fmt: skip
    with damaged_bpe(tmp_path / "bpe"):
        for action in ("estimate", "start"):
            response = client.post("/evaluations/new/", {**data, "action": action})
            assert response.status_code == 200, action
            html = response.content.decode()
            assert form_errors(html) == [MESSAGE], (action, form_errors(html))
            assert 'id="estimate-total"' not in html
        with pytest.raises(EvaluationError) as raised:
            evaluation_create(
                request=EvaluationRequest(
                    name="x", dataset=trained.dataset, model_keys=[choices[0].key],
                    graders=[{"kind": "exact_match", "options": {}}],
                ),
                user=None,
            )  # fmt: skip
        assert str(raised.value) == MESSAGE
    assert not Evaluation.objects.exists() and not EvalExample.objects.exists()

    # Repaired, the same request is estimated again.
    estimate = client.post("/evaluations/new/", {**data, "action": "estimate"}).content.decode()
    assert 'id="estimate-total"' in estimate and form_errors(estimate) == []

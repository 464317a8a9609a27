"""Sharing an evaluation with the run share-link mechanism: the summary always, prompts,
references and outputs only when the creator includes them; revoked links are 404s."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from core.models import AuditEntry
from dashboard.models import ShareLink
from evals.models import Evaluation
from tests.evals.conftest import XSS
from tests.permissions import LOGIN, SHARE, assert_matrix, client_for

pytestmark = pytest.mark.django_db(transaction=True)


def share(evaluation: Evaluation, **data: str) -> str:
    member = client_for("member")
    response = member.post(f"/evaluations/{evaluation.pk}/share/", data)
    assert response.status_code == 302 and response["Location"] == "/share-links/"
    page = member.get("/share-links/").content.decode()
    url = re.search(r'id="tb-new-link-url" readonly value="([^"]+)"', page).group(1)
    assert "evaluation: " in page
    return url.split("testserver", 1)[1]


def test_summary_only_unless_outputs_are_included(finished: Evaluation) -> None:
    url = share(finished, label="For the team")
    anonymous = Client()
    html = anonymous.get(url).content.decode()
    assert "For the team" in html and 'id="evaluation-summary"' in html
    means = re.findall(r'data-metric="exact_match" data-mean="([0-9.]+)"', html)
    assert [float(m) for m in means] == [0.0, 0.75, 1.0, 1.0, 1.0]
    assert 'id="evaluation-grid"' not in html and "not part of this link" in html
    assert "ft:" not in html and "/jobs/" not in html and "/datasets/" not in html
    assert "Fact 0:" not in html  # no reference text leaks
    assert 'href="/evaluations/' not in html

    with_outputs = share(finished, include_outputs="on")
    html = anonymous.get(with_outputs).content.decode()
    assert 'id="evaluation-grid"' in html and "Fact 0:" in html
    assert XSS not in html
    assert len(re.findall(r'<tr data-example="\d+">', html)) == 12
    filtered = anonymous.get(with_outputs + "?show=fails&column=1&metric=exact_match")
    assert len(re.findall(r'<tr data-example="\d+">', filtered.content.decode())) == 3

    # Other share endpoints have nothing for an evaluation link; the app stays closed.
    assert anonymous.get(url + "figures.json").status_code == 404
    assert anonymous.get(url + "metrics.json").status_code == 404
    assert anonymous.get(f"/evaluations/{finished.pk}/").status_code == 302

    links = ShareLink.objects.filter(evaluation=finished).order_by("pk")
    assert [(s.kind, s.include_outputs) for s in links] == [
        ("evaluation", False),
        ("evaluation", True),
    ]
    assert links[0].view_count == 1
    assert AuditEntry.objects.filter(action="share_link_created").count() == 2

    member = client_for("member")
    assert member.post(f"/share-links/{links[1].pk}/revoke/", {"confirm": "yes"}).status_code == 302
    assert anonymous.get(with_outputs).status_code == 404
    assert anonymous.get(url).status_code == 200


def test_share_permissions(finished: Evaluation) -> None:
    denied = {"anonymous": LOGIN, "norole": 403, "viewer": 403, SHARE: LOGIN}
    assert_matrix(
        f"/evaluations/{finished.pk}/share/", {**denied, "member": 302, "staff": 302}, method="post"
    )
    assert ShareLink.objects.filter(evaluation=finished).count() == 2
